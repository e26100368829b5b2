// The console at scale (issue 19): for a 1,000,000-recipient campaign, the campaigns page and a
// live update (GET /campaigns/rows, what console.js polls) must each answer in under 200 ms.
// Counts come from a cache shared by every viewer (src/queries/campaign-figures.ts), refreshed
// in the background at most every 2 s per campaign; a request never runs the GROUP BY itself.
// Set-up: 1,000,000 customers (100,000 with --quick), one campaign generated, 40% of its
// recipients marked sent by SES over the last minute, the campaign sending. Baseline, same
// database: campaign_progress() alone, the per-request GROUP BY a naive page would run.
// Measured over real HTTP against createConsoleApp with a logged-in session: the cold first
// page, then 50 sequential pages and 50 live updates, then 10 viewers polling every second for
// 10 s while a writer keeps marking recipients sent (the counts must move).
import { loadavg } from 'node:os';
import { loadConfig } from '../src/config.ts';
import { createConsoleApp } from '../src/console/app.ts';
import { SESSION_COOKIE } from '../src/console/auth.ts';
import { createSession } from '../src/console/sessions.ts';
import { createBenchDatabase, emit, logger, quick, timed } from './lib.ts';
import { prepareCampaign } from './support/campaign.ts';
import { round } from './support/sampling.ts';

const recipients = quick ? 100_000 : 1_000_000;
const db = await createBenchDatabase('console');
const load = () => loadavg().map((l) => round(l));

try {
  const campaignId = await prepareCampaign(db, recipients);
  await db.pool.query(
    `update public.campaign_recipients
        set recipient_status = 'sent', ses_message_id = 'bench-' || customer_id,
            last_attempt_at = now() - random() * interval '60 seconds', attempt_count = 1
      where campaign_id = $1 and random() < 0.4`,
    [campaignId],
  );
  for (const status of ['queued', 'sending']) {
    await db.pool.query('update public.campaigns set status = $2 where campaign_id = $1', [
      campaignId,
      status,
    ]);
  }
  await db.pool.query('vacuum analyze public.campaign_recipients');

  const baseline = [];
  for (let i = 0; i < 5; i++) {
    baseline.push(
      (await timed(() => db.pool.query('select * from public.campaign_progress($1)', [campaignId])))
        .ms,
    );
  }

  await db.pool.query(`select public.console_user_add('bench', 'operator', true, null)`);
  const session = await createSession(db.pool, 'bench');
  if (!session) throw new Error('no session');
  const config = loadConfig({ ...process.env, DATABASE_URL: db.url, CONSOLE_PORT: '0' });
  const app = createConsoleApp({ pool: db.pool, config, logger, ses: undefined });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const cookie = `${SESSION_COOKIE}=${session.token}`;

  async function get(path: string, live = false): Promise<{ ms: number; body: string }> {
    const { ms, value } = await timed(async () => {
      const response = await fetch(`${base}${path}`, {
        headers: { cookie, ...(live ? { 'x-console-live': '1' } : {}) },
      });
      if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
      return response.text();
    });
    return { ms, body: value };
  }
  const stats = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const at = (q: number) =>
      round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
    return {
      n: values.length,
      p50_ms: at(0.5),
      p95_ms: at(0.95),
      max_ms: round(sorted.at(-1) ?? 0),
    };
  };

  const cold = await get('/campaigns');
  await new Promise((r) => setTimeout(r, 2_500)); // the first count finishes in the background
  const pages: number[] = [];
  const updates: number[] = [];
  for (let i = 0; i < 50; i++) pages.push((await get('/campaigns')).ms);
  for (let i = 0; i < 50; i++) updates.push((await get('/campaigns/rows', true)).ms);

  // 10 viewers for 10 s while sends keep being recorded.
  const shown = (body: string) =>
    Number(/data-field="done">([\d,]+)</.exec(body)?.[1]?.replaceAll(',', '') ?? -1);
  const first = shown((await get('/campaigns/rows', true)).body);
  let writing = true;
  const writer = (async () => {
    while (writing) {
      await db.pool.query(
        `update public.campaign_recipients
            set recipient_status = 'sent', ses_message_id = 'bench-' || customer_id,
                last_attempt_at = now(), attempt_count = 1
          where (campaign_id, customer_id) in (
                  select campaign_id, customer_id from public.campaign_recipients
                   where campaign_id = $1 and recipient_status = 'pending' limit 500)`,
        [campaignId],
      );
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const viewers: number[] = [];
  const until = Date.now() + 10_000;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (Date.now() < until) {
        viewers.push((await get('/campaigns/rows', true)).ms);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }),
  );
  writing = false;
  await writer;
  await new Promise((r) => setTimeout(r, 2_500));
  const last = shown((await get('/campaigns/rows', true)).body);
  await app.close();

  emit({
    bench: 'console',
    recipients,
    baseline_campaign_progress: stats(baseline),
    cold_first_page_ms: round(cold.ms),
    cold_first_page_counted: !cold.body.includes('counting…'),
    page: stats(pages),
    live_update: stats(updates),
    ten_viewers_polling: stats(viewers),
    done_shown_before: first,
    done_shown_after: last,
    target_ms: 200,
    target_met: Math.max(stats(pages).max_ms, stats(updates).max_ms, stats(viewers).p95_ms) < 200,
    load: load(),
  });
} finally {
  await db.drop();
}
