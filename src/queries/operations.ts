// Typed callers of the operator functions (migrations/schema.sql): campaign
// control and progress, and the suppression list. One round trip each.
import type { Db } from '../db/pool.ts';

export type CampaignAction = 'queue' | 'pause' | 'resume';

const CAMPAIGN_FUNCTIONS: Record<CampaignAction, string> = {
  queue: 'queue_campaign',
  pause: 'pause_campaign',
  resume: 'resume_campaign',
};

// Returns the campaign's status afterwards (queue/resume may end at done: nothing left to send).
export async function setCampaignState(
  db: Db,
  action: CampaignAction,
  campaignId: string,
): Promise<string> {
  const fn = CAMPAIGN_FUNCTIONS[action];
  const { rows } = await db.query<{ status: string }>(`select public.${fn}($1) as status`, [
    campaignId,
  ]);
  return rows[0]?.status ?? 'unknown';
}

export interface CampaignListRow {
  campaign_id: string;
  campaign_name: string;
  week_of_month: number;
  generated_date: string;
  status: string;
  pause_reason: string | null;
  /** A draft's queue time (campaign queue --at); null when not scheduled. */
  scheduled_at: Date | null;
  template_version: number;
  recipients: number;
  pending: number;
  sent: number;
  in_doubt: number;
  failed: number;
  suppressed: number;
  bounced: number;
  complained: number;
  unsubscribed: number;
  created_at: Date;
}

export async function listCampaigns(
  db: Db,
  options: { limit: number; status: string | undefined },
): Promise<CampaignListRow[]> {
  const { rows } = await db.query<CampaignListRow>(
    `select c.campaign_id, c.campaign_name, c.week_of_month, c.generated_date::text, c.status,
            c.pause_reason, c.scheduled_at, t.version as template_version,
            count(r.customer_id)::int as recipients,
            (count(*) filter (where r.recipient_status in ('pending', 'sending')))::int as pending,
            (count(*) filter (where r.recipient_status = 'sent'))::int as sent,
            (count(*) filter (where r.recipient_status = 'in_doubt'))::int as in_doubt,
            (count(*) filter (where r.recipient_status = 'failed'))::int as failed,
            (count(*) filter (where r.recipient_status = 'suppressed'))::int as suppressed,
            (count(*) filter (where r.recipient_status = 'bounced'))::int as bounced,
            (count(*) filter (where r.recipient_status = 'complained'))::int as complained,
            (count(*) filter (where r.recipient_status = 'unsubscribed'))::int as unsubscribed,
            c.created_at
       from (select * from public.campaigns where $2::text is null or status = $2
              order by generated_date desc, created_at desc limit $1) c
       join public.templates t on t.template_id = c.template_id
       left join public.campaign_recipients r on r.campaign_id = c.campaign_id
      group by c.campaign_id, c.campaign_name, c.week_of_month, c.generated_date, c.status,
               c.pause_reason, c.scheduled_at, t.version, c.created_at
      order by c.generated_date desc, c.created_at desc`,
    [options.limit, options.status ?? null],
  );
  return rows;
}

export interface CampaignProgress {
  campaign_id: string;
  campaign_name: string;
  status: string;
  pause_reason: string | null;
  /** A draft's queue time (campaign queue --at); null or absent when not scheduled. */
  scheduled_at?: Date | null;
  recipients: number;
  counts: Record<string, number>;
  accepted: number;
  bounce_rate: number | null;
  complaint_rate: number | null;
  first_attempt_at: Date | null;
  last_attempt_at: Date | null;
  attempts_last_minute: number;
}

/** Every recipient_status, in the order a recipient usually moves through them. */
export const RECIPIENT_STATUSES = [
  'pending',
  'sending',
  'sent',
  'in_doubt',
  'failed',
  'suppressed',
  'bounced',
  'complained',
  'unsubscribed',
] as const;

export type RecipientStatus = (typeof RECIPIENT_STATUSES)[number];

export async function campaignProgress(
  db: Db,
  campaignId: string,
): Promise<CampaignProgress | undefined> {
  const { rows } = await db.query<Record<string, string | Date | null>>(
    `select p.*, c.campaign_name, c.pause_reason, c.scheduled_at
       from public.campaign_progress($1) p
       cross join (select campaign_name, pause_reason, scheduled_at from public.campaigns
                    where campaign_id = $1) c`,
    [campaignId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const num = (key: string) => Number(row[key] ?? 0);
  const rate = (key: string) => (row[key] === null ? null : Number(row[key]));
  return {
    campaign_id: campaignId,
    campaign_name: String(row.campaign_name),
    status: String(row.status),
    pause_reason: row.pause_reason === null ? null : String(row.pause_reason),
    scheduled_at: (row.scheduled_at as Date | null) ?? null,
    recipients: num('recipients'),
    counts: Object.fromEntries(RECIPIENT_STATUSES.map((s) => [s, num(s)])),
    accepted: num('accepted'),
    bounce_rate: rate('bounce_rate'),
    complaint_rate: rate('complaint_rate'),
    first_attempt_at: (row.first_attempt_at as Date | null) ?? null,
    last_attempt_at: (row.last_attempt_at as Date | null) ?? null,
    attempts_last_minute: num('attempts_last_minute'),
  };
}

export async function campaignExists(
  db: Db,
  week: number,
  date: string,
): Promise<string | undefined> {
  const { rows } = await db.query<{ campaign_id: string }>(
    'select campaign_id from public.campaigns where week_of_month = $1 and generated_date = $2',
    [week, date],
  );
  return rows[0]?.campaign_id;
}

// Suppression list ----------------------------------------------------------------------------

export interface SuppressionEntry {
  email: string;
  reason: string;
  source: string;
  created_at: Date;
  updated_at: Date;
}

export async function suppressEmail(
  db: Db,
  email: string,
  reason: string,
  note: string | undefined,
): Promise<boolean> {
  const { rows } = await db.query<{ added: boolean }>(
    'select public.suppress_email($1, $2, $3) as added',
    [email, reason, note ?? null],
  );
  return rows[0]?.added === true;
}

export async function unsuppressEmail(
  db: Db,
  email: string,
  note: string,
  force: boolean,
): Promise<boolean> {
  const { rows } = await db.query<{ removed: boolean }>(
    'select public.unsuppress_email($1, $2, $3) as removed',
    [email, note, force],
  );
  return rows[0]?.removed === true;
}

export async function findSuppression(
  db: Db,
  email: string,
): Promise<SuppressionEntry | undefined> {
  const { rows } = await db.query<SuppressionEntry>(
    'select * from public.suppression_list where email = public.normalize_email($1)',
    [email],
  );
  return rows[0];
}

export async function listSuppressions(
  db: Db,
  filter: { reason?: string; source?: string; since?: string; limit: number },
): Promise<{ total: number; rows: SuppressionEntry[] }> {
  const where = `($1::text is null or reason = $1) and ($2::text is null or source = $2)
                 and ($3::date is null or created_at >= $3::date)`;
  const params = [filter.reason ?? null, filter.source ?? null, filter.since ?? null];
  const total = await db.query<{ n: number }>(
    `select count(*)::int as n from public.suppression_list where ${where}`,
    params,
  );
  const { rows } = await db.query<SuppressionEntry>(
    `select * from public.suppression_list where ${where}
      order by created_at desc, email limit $4`,
    [...params, filter.limit],
  );
  return { total: total.rows[0]?.n ?? 0, rows };
}

// Queues a campaign's failed recipients again (retry_failed_recipients); returns how many.
export async function retryFailedRecipients(
  db: Db,
  campaignId: string,
  reason: string | undefined,
): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'select public.retry_failed_recipients($1, $2) as n',
    [campaignId, reason ?? null],
  );
  return rows[0]?.n ?? 0;
}
