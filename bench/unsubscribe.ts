// Figure 9, an unsubscribe click on a big campaign: unsubscribe_by_token, what both the one-click
// POST and the confirmation page's button run, for recipients of a 1,000,000-recipient campaign
// (100,000 with --quick), 40% of them sent. It finds the token's recipient through the customer
// with that address (the primary key), never by a pass over the campaign's recipients.
// Baseline, same database: that pass, the lookup by (campaign_id, email) that no index serves,
// which the function made twice per click before (migration 000006).
import { createBenchDatabase, emit, quick, timed } from './lib.ts';
import { prepareCampaign } from './support/campaign.ts';
import { percentile, round } from './support/sampling.ts';

const recipients = quick ? 100_000 : 1_000_000;
const CLICKS = 20;
const db = await createBenchDatabase('unsubscribe');

const stats = (ms: number[]) => ({
  p50: round(percentile(ms, 50)),
  max: round(percentile(ms, 100)),
});

try {
  const campaignId = await prepareCampaign(db, recipients);
  await db.pool.query(
    `update public.campaign_recipients
        set recipient_status = 'sent', ses_message_id = 'bench-' || customer_id,
            last_attempt_at = now(), attempt_count = 1
      where campaign_id = $1 and random() < 0.4`,
    [campaignId],
  );
  await db.pool.query('vacuum analyze');
  // Clicks from sent recipients spread over the campaign, and as many for the baseline.
  const { rows: picked } = await db.pool.query<{ email: string; token: string }>(
    `select r.email, split_part(r.template_data ->> 'unsubscribe_url', '/unsubscribe/', 2) as token
       from public.campaign_recipients r
      where r.campaign_id = $1 and r.recipient_status = 'sent'
      order by random() limit $2`,
    [campaignId, CLICKS * 2],
  );
  const baselineRows = picked.slice(0, CLICKS);
  const clickRows = picked.slice(CLICKS);

  const baseline: number[] = [];
  for (const row of baselineRows) {
    const pass = await timed(() =>
      db.pool.query(
        `select r.customer_id from public.campaign_recipients r
          where r.campaign_id = $1 and r.email = $2`,
        [campaignId, row.email],
      ),
    );
    baseline.push(pass.ms);
  }
  const clicks: number[] = [];
  const outcomes: Record<string, number> = {};
  for (const row of clickRows) {
    const click = await timed(() =>
      db.pool.query<{ outcome: string }>(
        `select outcome from public.unsubscribe_by_token($1::uuid, 'one_click')`,
        [row.token],
      ),
    );
    clicks.push(click.ms);
    const outcome = click.value.rows[0]?.outcome ?? 'none';
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  }
  const { rows: after } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from public.campaign_recipients
      where campaign_id = $1 and recipient_status = 'unsubscribed' and email = any($2)`,
    [campaignId, clickRows.map((r) => r.email)],
  );
  const click = stats(clicks);
  const pass = stats(baseline);
  emit({
    bench: 'unsubscribe_click',
    recipients,
    clicks: clickRows.length,
    outcomes,
    recipients_unsubscribed: after[0]?.n,
    unsubscribe_by_token_ms: click,
    baseline_pass_by_campaign_and_email_ms: pass,
    ratio_p50_to_baseline: round(click.p50 / Math.max(pass.p50, 0.001), 3),
    target_met: outcomes.unsubscribed === clickRows.length && after[0]?.n === clickRows.length,
  });
} finally {
  await db.drop();
}
