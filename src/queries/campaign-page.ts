// What the console's campaign page adds to the report (src/queries/report.ts): a per-minute
// chart of SES events, and the failed and in-doubt recipients a page at a time. Both read only
// an index range, whatever the campaign's size: the chart the events of its last minutes
// (email_events_op_campaign_time_idx), the lists the recipients an operator acts on
// (campaign_recipients_attention_idx, migrations/current/6-console-pages.sql).
import type { Db } from '../db/pool.ts';

export const CHART_EVENTS = ['send', 'delivery', 'bounce', 'complaint'] as const;
export type ChartEvent = (typeof CHART_EVENTS)[number];

export interface ChartMinute {
  minute: Date;
  counts: Record<ChartEvent, number>;
}

/**
 * Events per minute over the `minutes` before the campaign's latest such event (a finished
 * campaign's chart shows its end, a sending one's the present). Empty when it has none.
 */
export async function campaignChart(
  db: Db,
  campaignId: string,
  minutes: number,
): Promise<ChartMinute[]> {
  // First the newest event (one backward index probe per type), then each type's range from a
  // bound the planner sees: with the bound computed inside one statement it cannot tell the
  // range is short, and reads every event of the campaign instead (a second at 2,000,000).
  const newest = await db.query<{ t: Date | null }>(
    `select max(l.event_time) as t
       from unnest($2::text[]) as types(event_type)
       cross join lateral (select e.event_time from public.email_events_op e
                            where e.campaign_id = $1 and e.event_type = types.event_type
                            order by e.event_time desc limit 1) l`,
    [campaignId, CHART_EVENTS],
  );
  const newestAt = newest.rows[0]?.t;
  if (!newestAt) return [];
  const from = new Date(Math.floor(newestAt.getTime() / 60_000) * 60_000 - (minutes - 1) * 60_000);
  const { rows } = await db.query<{ minute: Date; event_type: ChartEvent; n: number }>(
    `select date_trunc('minute', e.event_time) as minute, types.event_type, count(*)::int as n
       from unnest($2::text[]) as types(event_type)
       join public.email_events_op e
         on e.campaign_id = $1 and e.event_type = types.event_type and e.event_time >= $3
      group by 1, 2
      order by 1`,
    [campaignId, CHART_EVENTS, from],
  );
  if (rows.length === 0) return [];
  const byMinute = new Map<number, ChartMinute>();
  const first = (rows[0] as { minute: Date }).minute.getTime();
  const last = (rows[rows.length - 1] as { minute: Date }).minute.getTime();
  // Every minute of the range, the quiet ones too: an outage is a gap, not a shorter chart.
  for (let t = first; t <= last; t += 60_000) {
    byMinute.set(t, {
      minute: new Date(t),
      counts: { send: 0, delivery: 0, bounce: 0, complaint: 0 },
    });
  }
  for (const row of rows) {
    const slot = byMinute.get(row.minute.getTime());
    if (slot) slot.counts[row.event_type] = row.n;
  }
  return [...byMinute.values()];
}

export interface AttentionRecipient {
  customer_id: string;
  email: string;
  recipient_status: string;
  last_error: string | null;
  attempt_count: number;
  last_attempt_at: Date | null;
}

export interface Keyset {
  email: string;
  customer_id: string;
}

/**
 * One page of a campaign's failed or in-doubt recipients (campaign_report_recipients, the
 * report's own list), by address, after `after`; `next` is the cursor of the following page.
 */
export async function attentionRecipients(
  db: Db,
  campaignId: string,
  status: 'failed' | 'in_doubt',
  after: Keyset | undefined,
  limit: number,
): Promise<{ rows: AttentionRecipient[]; next: Keyset | undefined }> {
  const { rows } = await db.query<AttentionRecipient>(
    `select customer_id, email, recipient_status, last_error, attempt_count, last_attempt_at
       from public.campaign_report_recipients($1)
      where recipient_status = $2
        and ($3::text is null or (email, customer_id) > ($3, $4::uuid))
      order by email, customer_id
      limit $5`,
    [campaignId, status, after?.email ?? null, after?.customer_id ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  const tail = page[page.length - 1];
  return {
    rows: page,
    next: more && tail ? { email: tail.email, customer_id: tail.customer_id } : undefined,
  };
}

/** How many SES events name each of these recipients: what `doubt list` shows as evidence. */
export async function eventCounts(
  db: Db,
  campaignId: string,
  customerIds: string[],
): Promise<Map<string, number>> {
  const { rows } = await db.query<{ customer_id: string; events: number }>(
    `select customer_id, events::int from public.in_doubt_recipients()
      where campaign_id = $1 and customer_id = any($2::uuid[])`,
    [campaignId, customerIds],
  );
  return new Map(rows.map((r) => [r.customer_id, r.events]));
}
