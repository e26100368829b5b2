// What `templates preview` and `campaign test` render: the template a week's new campaign would
// get, and a customer's template_data as generate_campaign builds it (customer_template_data in
// migrations/current/3-before-campaign.sql), or sample data. A preview or test carries no real
// unsubscribe token (those are made per campaign), so its link names a placeholder token that
// unsubscribes nobody.
import type { Db } from '../db/pool.ts';

export const PLACEHOLDER_TOKEN = '00000000-0000-0000-0000-000000000000';

export interface ActiveTemplate {
  template_id: string;
  provider: 'ses' | 'internal';
  provider_template_name: string;
  version: number;
}

// The version generate_campaign picks: the highest active one of the week.
export async function activeTemplate(db: Db, week: number): Promise<ActiveTemplate | undefined> {
  const { rows } = await db.query<ActiveTemplate>(
    `select template_id, provider, provider_template_name, version from public.templates
      where week_of_month = $1 and is_active order by version desc limit 1`,
    [week],
  );
  return rows[0];
}

export interface PreviewData {
  /** null: sample data. */
  customer_id: string | null;
  data: Record<string, unknown>;
}

export function unsubscribePlaceholder(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/unsubscribe/${PLACEHOLDER_TOKEN}`;
}

export function sampleData(publicUrl: string): PreviewData {
  return {
    customer_id: null,
    data: {
      name: 'Ada Lovelace',
      company: 'Analytical Engines Ltd',
      country: 'GB',
      email: 'ada.lovelace@example.com',
      unsubscribe_url: unsubscribePlaceholder(publicUrl),
    },
  };
}

/** The customer's template_data; undefined when no customer has that address. */
export async function customerData(
  db: Db,
  email: string,
  publicUrl: string,
): Promise<PreviewData | undefined> {
  const { rows } = await db.query<{ customer_id: string; data: Record<string, unknown> }>(
    `select customer_id, public.customer_template_data(customer_id, $2) as data
       from public.customers where email = public.normalize_email($1)`,
    [email, unsubscribePlaceholder(publicUrl)],
  );
  return rows[0];
}

/** Records a test send in operator_actions (record_test_send). */
export async function recordTestSend(
  db: Db,
  send: {
    week: number;
    templateId: string;
    to: string[];
    customerId: string | null;
    messageIds: string[];
  },
): Promise<void> {
  await db.query('select public.record_test_send($1, $2, $3, $4, $5)', [
    send.week,
    send.templateId,
    send.to,
    send.customerId,
    send.messageIds,
  ]);
}
