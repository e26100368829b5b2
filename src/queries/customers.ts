// The support view of one address (mailer customers show): who they are, whether they are
// suppressed and by whom, what happened to them in recent campaigns, and their recent SES events.
import type { Db } from '../db/pool.ts';

export interface CustomerRow {
  customer_id: string;
  email: string;
  name: string | null;
  company: string | null;
  country: string | null;
  is_active: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface SuppressionRow {
  email: string;
  reason: string;
  source: string;
  created_at: Date;
  updated_at: Date;
}

export interface OperatorActionRow {
  action: string;
  note: string | null;
  details: Record<string, unknown>;
  /** 'console:<username>' for a console user, else the database login. */
  actor: string;
  db_user: string;
  application_name: string;
  created_at: Date;
}

export interface CampaignLine {
  campaign_id: string;
  campaign_name: string;
  generated_date: string;
  campaign_status: string;
  pause_reason: string | null;
  campaign_created_at: Date;
  recipient_status: string | null;
  attempt_count: number | null;
  last_attempt_at: Date | null;
  ses_message_id: string | null;
  last_error: string | null;
}

export interface EventLine {
  event_time: Date;
  event_type: string;
  campaign_id: string | null;
  ses_message_id: string | null;
  detail: string | null;
}

export interface CustomerReport {
  email: string;
  problem: string | null;
  customer: CustomerRow | undefined;
  suppression: SuppressionRow | undefined;
  actions: OperatorActionRow[];
  campaigns: CampaignLine[];
  events: EventLine[];
}

export async function customerReport(
  db: Db,
  address: string,
  limits: { campaigns: number; events: number },
): Promise<CustomerReport> {
  const normalized = await db.query<{ email: string; problem: string | null }>(
    'select public.normalize_email($1) as email, public.email_problem($1) as problem',
    [address],
  );
  const email = normalized.rows[0]?.email ?? address;
  const customer = (
    await db.query<CustomerRow>('select * from public.customers where email = $1', [email])
  ).rows[0];
  const suppression = (
    await db.query<SuppressionRow>('select * from public.suppression_list where email = $1', [
      email,
    ])
  ).rows[0];
  const actions = (
    await db.query<OperatorActionRow>(
      `select action, note, details, actor, db_user, application_name, created_at
         from public.operator_actions where email = $1 order by created_at desc, action_id desc
        limit 20`,
      [email],
    )
  ).rows;
  // The most recent campaigns whether or not the address was in them: "not a recipient" is often
  // the answer to "why didn't they get it".
  const campaigns = (
    await db.query<CampaignLine>(
      `select c.campaign_id, c.campaign_name, c.generated_date::text as generated_date,
              c.status as campaign_status, c.pause_reason, c.created_at as campaign_created_at,
              r.recipient_status, r.attempt_count, r.last_attempt_at, r.ses_message_id, r.last_error
         from (select * from public.campaigns
                order by generated_date desc, created_at desc limit $3) c
         left join public.campaign_recipients r
           on r.campaign_id = c.campaign_id
          and (r.customer_id = $2 or ($2::uuid is null and r.email = $1))
        order by c.generated_date desc, c.created_at desc`,
      [email, customer?.customer_id ?? null, limits.campaigns],
    )
  ).rows;
  const events = (
    await db.query<EventLine>(
      `select e.event_time, e.event_type, e.campaign_id, e.ses_message_id,
              case e.event_type
                when 'bounce' then concat_ws(' ', e.payload #>> '{bounce,bounceType}',
                  '/' || (e.payload #>> '{bounce,bounceSubType}'),
                  e.payload #>> '{bounce,bouncedRecipients,0,diagnosticCode}')
                when 'complaint' then e.payload #>> '{complaint,complaintFeedbackType}'
                when 'delivery' then e.payload #>> '{delivery,smtpResponse}'
                when 'reject' then e.payload #>> '{reject,reason}'
                when 'delivery_delay' then e.payload #>> '{deliveryDelay,delayType}'
                when 'unsubscribe' then concat_ws(' ', e.payload ->> 'source', e.payload ->> 'method')
              end as detail
         from public.email_events_op e
        where e.email = $1 or ($2::uuid is not null and e.customer_id = $2)
        order by e.event_time desc
        limit $3`,
      [email, customer?.customer_id ?? null, limits.events],
    )
  ).rows;
  return {
    email,
    problem: normalized.rows[0]?.problem ?? null,
    customer,
    suppression,
    actions,
    campaigns,
    events,
  };
}

// One line answering "what happened with this campaign for this address".
export function explainCampaign(line: CampaignLine, customer: CustomerRow | undefined): string {
  const error = line.last_error ? `: ${line.last_error}` : '';
  switch (line.recipient_status) {
    case null:
      if (!customer) return 'not a recipient: no customer with this address';
      if (customer.created_at > line.campaign_created_at) {
        return 'not a recipient: customer was added after the campaign was generated';
      }
      if (!customer.is_active) return 'not a recipient: customer is inactive';
      return 'not a recipient: customer was inactive when the campaign was generated';
    case 'pending':
      return line.campaign_status === 'paused'
        ? `not sent yet: the campaign is paused${line.pause_reason ? ` (${line.pause_reason})` : ''}`
        : `not sent yet (campaign ${line.campaign_status})`;
    case 'sending':
      return 'being sent right now';
    case 'sent':
      return 'sent: SES accepted it';
    case 'in_doubt':
      return `in doubt: SES may or may not have it (see mailer doubt list)${error}`;
    case 'suppressed':
      return `not sent: address suppressed${error}`;
    default:
      return `${line.recipient_status}${error}`;
  }
}
