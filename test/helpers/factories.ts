// Row factories for tests: sensible defaults, override what the test is about.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';

type Db = pg.Pool | pg.PoolClient;

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
    name: string;
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
      overrides.name ?? 'Test Customer',
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
    html: string;
    text: string;
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
        overrides.html ??
          '<p>Hello {{name}} from {{company}}</p><a href="{{unsubscribe_url}}">unsubscribe</a>',
        overrides.text ?? 'Hello {{name}}. Unsubscribe: {{unsubscribe_url}}',
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
    week_of_month?: number;
    generated_date?: string;
    status?: string;
  },
): Promise<CampaignRow> {
  const { rows } = await db.query<CampaignRow>(
    `insert into campaigns (campaign_name, week_of_month, generated_date, template_id, status)
     select 'test campaign', coalesce($2, t.week_of_month), $3, t.template_id, $4
       from templates t where t.template_id = $1 returning *`,
    [
      overrides.template_id,
      overrides.week_of_month ?? null,
      overrides.generated_date ??
        `20${10 + Math.floor(Math.random() * 80)}-0${1 + Math.floor(Math.random() * 9)}-1${Math.floor(Math.random() * 9)}`,
      overrides.status ?? 'draft',
    ],
  );
  return rows[0] as CampaignRow;
}

/** A new customer as a recipient of the campaign, in the given status (attempted once). */
export async function createRecipient(
  db: Db,
  campaignId: string,
  status: string,
  overrides: { email?: string; attemptAt?: string } = {},
): Promise<CustomerRow> {
  const customer = await createCustomer(db, overrides.email ? { email: overrides.email } : {});
  await db.query(
    `insert into campaign_recipients (campaign_id, customer_id, email, recipient_status, last_attempt_at, attempt_count)
     values ($1, $2, $3, $4, coalesce($5::timestamptz, now()), 1)`,
    [campaignId, customer.customer_id, customer.email, status, overrides.attemptAt ?? null],
  );
  return customer;
}
