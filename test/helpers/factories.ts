// Row factories for tests: sensible defaults, override what the test is about. (SES event
// payloads are built by test/events/helpers.ts.)
import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Db } from '../../src/db/pool.ts';
import { type CampaignSummary, generateCampaign } from '../../src/queries/campaigns.ts';

export interface CustomerRow {
  customer_id: string;
  email: string;
  name: string | null;
  is_active: boolean;
  created_at: Date;
  updated_at: Date;
}

export async function createCustomer(
  db: Db,
  overrides: Partial<{
    email: string;
    name: string | null;
    company: string;
    country: string;
    is_active: boolean;
  }> = {},
): Promise<CustomerRow> {
  const { rows } = await db.query<CustomerRow>(
    `insert into customers (email, name, company, country, is_active)
     values ($1, $2, $3, $4, $5) returning *`,
    [
      overrides.email ?? `user-${randomBytes(6).toString('hex')}@example.com`,
      overrides.name === undefined ? 'Test Customer' : overrides.name,
      overrides.company ?? 'Acme',
      overrides.country ?? 'NL',
      overrides.is_active ?? true,
    ],
  );
  return rows[0] as CustomerRow;
}

export interface TemplateRow {
  template_id: string;
  week_of_month: number;
  version: number;
}

export async function createTemplate(
  db: Db,
  overrides: Partial<{
    provider: 'ses' | 'internal';
    provider_template_name: string;
    week_of_month: number;
    version: number;
    subject: string;
    /** null: no HTML part (likewise text). */
    html: string | null;
    text: string | null;
  }> = {},
): Promise<TemplateRow> {
  const provider = overrides.provider ?? 'internal';
  const { rows } = await db.query<TemplateRow>(
    `insert into templates (provider, provider_template_name, week_of_month, version)
     values ($1, $2, $3, $4) returning *`,
    [
      provider,
      overrides.provider_template_name ?? `weekly-${randomBytes(3).toString('hex')}`,
      overrides.week_of_month ?? 1,
      overrides.version ?? 1,
    ],
  );
  const template = rows[0] as TemplateRow;
  if (provider === 'internal') {
    await db.query(
      'insert into template_contents (template_id, subject, html_body, text_body) values ($1, $2, $3, $4)',
      [
        template.template_id,
        overrides.subject ?? 'Hello {{name}}',
        overrides.html === undefined
          ? '<p>Hello {{name}} from {{company}}</p><a href="{{unsubscribe_url}}">unsubscribe</a>'
          : overrides.html,
        overrides.text === undefined
          ? 'Hello {{name}}. Unsubscribe: {{unsubscribe_url}}'
          : overrides.text,
      ],
    );
  }
  return template;
}

export interface CampaignRow {
  campaign_id: string;
  status: string;
}

export async function createCampaign(
  db: Db,
  overrides: {
    template_id: string;
    campaign_id?: string;
    week_of_month?: number;
    generated_date?: string;
    status?: string;
  },
): Promise<CampaignRow> {
  const { rows } = await db.query<CampaignRow>(
    `insert into campaigns (campaign_id, campaign_name, week_of_month, generated_date, template_id,
                            status)
     select coalesce($5::uuid, gen_random_uuid()), 'test campaign', coalesce($2, t.week_of_month),
            $3, t.template_id, $4
       from templates t where t.template_id = $1 returning *`,
    [
      overrides.template_id,
      overrides.week_of_month ?? null,
      overrides.generated_date ??
        `20${10 + Math.floor(Math.random() * 80)}-0${1 + Math.floor(Math.random() * 9)}-1${Math.floor(Math.random() * 9)}`,
      overrides.status ?? 'draft',
      overrides.campaign_id ?? null,
    ],
  );
  return rows[0] as CampaignRow;
}

let campaignCounter = 0;

/** A campaign in `status` (default sending) on a template of its own; returns its id. */
export async function createSendingCampaign(db: Db, status = 'sending'): Promise<string> {
  const template = await createTemplate(db, {
    week_of_month: 1,
    version: 1 + Math.floor(Math.random() * 1_000_000_000),
  });
  campaignCounter++;
  const day = new Date(
    Date.UTC(2000, 0, 1) + (campaignCounter * 997 + Math.floor(Math.random() * 5000)) * 86_400_000,
  );
  const campaign = await createCampaign(db, {
    template_id: template.template_id,
    generated_date: day.toISOString().slice(0, 10),
    status,
  });
  return campaign.campaign_id;
}

/** A recipient as tests name it, and as SES events about it find it (test/events/helpers.ts). */
export interface RecipientTarget {
  campaignId: string;
  customerId: string;
  email: string;
  /** The recorded SES message id or, for a recipient that has none, one SES might have used. */
  messageId: string;
}

export type Recipient = RecipientTarget & { customer_id: string };

/**
 * A recipient of the campaign in `status`: a new customer unless `customer` is given, attempted
 * once just now unless `attempts` and `attemptAt` (null: never) say otherwise.
 */
export async function createRecipient(
  db: Db,
  campaignId: string,
  status: string,
  overrides: {
    customer?: { customer_id: string; email: string };
    email?: string;
    messageId?: string | null;
    attemptAt?: Date | string | null;
    attempts?: number;
    lastError?: string | null;
  } = {},
): Promise<Recipient> {
  const customer =
    overrides.customer ??
    (await createCustomer(db, overrides.email ? { email: overrides.email } : {}));
  const messageId = overrides.messageId ?? null;
  await db.query(
    `insert into campaign_recipients (campaign_id, customer_id, email, recipient_status,
                                      ses_message_id, last_attempt_at, attempt_count, last_error)
     values ($1, $2, $3, $4, $5, case when $6 then now() else $7::timestamptz end, $8, $9)`,
    [
      campaignId,
      customer.customer_id,
      customer.email,
      status,
      messageId,
      overrides.attemptAt === undefined,
      overrides.attemptAt ?? null,
      overrides.attempts ?? 1,
      overrides.lastError ?? null,
    ],
  );
  return {
    customer_id: customer.customer_id,
    campaignId,
    customerId: customer.customer_id,
    email: customer.email,
    messageId: messageId ?? `ses-${randomBytes(8).toString('hex')}`,
  };
}

const HAS_MESSAGE_ID = ['sent', 'bounced', 'complained', 'failed'];

/** A recipient (default sent) with the SES message id its status implies, for event tests. */
export function createSentRecipient(
  db: Db,
  campaignId: string,
  overrides: { status?: string; messageId?: string | null; email?: string } = {},
): Promise<Recipient> {
  const status = overrides.status ?? 'sent';
  const messageId =
    overrides.messageId === undefined
      ? HAS_MESSAGE_ID.includes(status)
        ? `ses-${randomUUID()}`
        : null
      : overrides.messageId;
  return createRecipient(db, campaignId, status, { email: overrides.email, messageId });
}

/**
 * `count` new customers as recipients of the campaign, set-based (tests need thousands): sent
 * ones attempted once with a message id, pending ones never attempted.
 */
export async function createRecipients(
  db: Db,
  campaignId: string,
  count: number,
  status: 'sent' | 'pending',
): Promise<void> {
  await db.query(
    `with c as (
       insert into customers (email)
       select 'bulk-' || $2 || '-' || i || '@example.com' from generate_series(1, $3::int) i
       returning customer_id, email)
     insert into campaign_recipients
       (campaign_id, customer_id, email, recipient_status, ses_message_id, last_attempt_at, attempt_count)
     select $1, c.customer_id, c.email, $4,
            case when $4 = 'sent' then 'ses-' || gen_random_uuid() end,
            case when $4 = 'sent' then now() end, case when $4 = 'sent' then 1 else 0 end
       from c`,
    [campaignId, randomBytes(4).toString('hex'), count, status],
  );
}

/** The recipient's sending state, read back. */
export async function recipientRow(db: Db, target: { campaignId: string; customerId: string }) {
  const { rows } = await db.query<{
    recipient_status: string;
    ses_message_id: string | null;
    last_error: string | null;
  }>(
    `select recipient_status, ses_message_id, last_error from campaign_recipients
      where campaign_id = $1 and customer_id = $2`,
    [target.campaignId, target.customerId],
  );
  return rows[0];
}

/**
 * A week-1 campaign generated, not sent, on the first of month `month` (0-based; 12 and on roll
 * into the next years) of `year`. A week's campaign is generated once a month, so a test that
 * wants several gives each a month of its own.
 */
export function generateMonthCampaign(
  pool: pg.Pool,
  year: number,
  month: number,
  publicUrl: string,
): Promise<CampaignSummary> {
  return generateCampaign(pool, {
    weekOfMonth: 1,
    generatedDate: new Date(Date.UTC(year, month, 1)).toISOString().slice(0, 10),
    send: false,
    tokenTtlDays: 90,
    publicUrl,
  });
}
