// SES events must not wait behind the sends queued before them. A paced campaign keeps every job
// slot of a worker busy for as long as it has sends queued (at 25/s, 3,000 recipients are two
// minutes of sends); the bounces it causes must still be applied within seconds, so that the
// reputation guard pauses it while most of it is unsent. Everything real: worker processes at the
// default concurrency, the local SES publishing the mailbox simulator's bounces as signed SNS
// notifications to the webhook, process_ses_event applying them. Timing-sensitive: runs alone.
import test from 'ava';
import { createEventSink } from '../faults/support.ts';
import { waitFor } from '../helpers/cli.ts';
import { createTemplate } from '../helpers/factories.ts';
import { campaignStatus, generate, startPipeline, statusCounts } from '../pipeline/harness.ts';

const RECIPIENTS = 3_000;
const RATE = 25;
const MAX_BOUNCE_RATE = 0.05;
// Sends go out in customer_id order; the surge starts after this many clean ones, mid-campaign.
const CLEAN = 400;

/** When SES accepted the message that put the campaign's bounce rate above the limit. */
function armedAt(sent: Array<{ to: string[]; acceptedAt: number }>): number | undefined {
  let bounces = 0;
  const ordered = [...sent].sort((a, b) => a.acceptedAt - b.acceptedAt);
  for (const [i, message] of ordered.entries()) {
    if (message.to[0]?.startsWith('bounce')) bounces++;
    if (i + 1 >= CLEAN && bounces / (i + 1) > MAX_BOUNCE_RATE) return message.acceptedAt;
  }
  return undefined;
}

test('a bounce surge pauses a paced campaign within seconds while thousands of its sends are queued', async (t) => {
  const sink = createEventSink({ hold: false });
  const p = await startPipeline(t, {
    ses: { onSend: sink.onSend },
    env: {
      SES_MAX_SEND_RATE: String(RATE),
      // The default concurrency: every job slot of a worker is held by a send waiting for its
      // pacing slot, and graphile-worker's local queue holds the next 100 sends.
      WORKER_CONCURRENCY: '64',
      REPUTATION_MIN_SENT: '100',
      REPUTATION_MAX_BOUNCE_RATE: String(MAX_BOUNCE_RATE),
    },
  });
  // Registered after the pipeline's teardown, so it runs before it (ava runs them in reverse).
  t.teardown(() => sink.close());
  await sink.connect(p.db.pool);
  // After CLEAN delivered ones, every other customer is the simulator's bounce address.
  await createTemplate(p.db.pool, { week_of_month: 1 });
  await p.db.pool.query(
    `insert into customers (customer_id, email, name, company, country)
     select ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
            case when g > $2::int and g % 2 = 0 then 'bounce+' || g || '@simulator.amazonses.com'
                 else 'customer' || g || '@example.com' end,
            'Customer ' || g, 'Company ' || g, 'NL'
       from generate_series(1, $1::int) g`,
    [RECIPIENTS, CLEAN],
  );
  await Promise.all([p.startWorker(), p.startWorker()]);
  const campaignId = await generate(p.db);

  let pausedAt: number;
  try {
    pausedAt = await waitFor(
      async () => (await campaignStatus(p.db, campaignId)) === 'paused' && Date.now(),
      { what: 'the reputation guard to pause the campaign', timeoutMs: 60_000, intervalMs: 50 },
    );
  } catch (error) {
    const events = await p.db.pool.query<{ n: number }>(
      `select count(*)::int as n from graphile_worker.jobs where task_identifier = 'process_ses_event'`,
    );
    t.log(`${p.ses.sent().length} sent; ${events.rows[0]?.n} process_ses_event jobs still waiting`);
    throw error;
  }
  const sentAtPause = p.ses.sent().length;
  const armed = armedAt(p.ses.sent());
  if (armed === undefined) return t.fail(`paused at ${sentAtPause} sent, below the limit`);
  const delayMs = pausedAt - armed;
  const counts = await statusCounts(p.db, campaignId);
  t.log(
    `paused ${delayMs} ms after the limit was crossed, at ${sentAtPause} sent: ${JSON.stringify(counts)}`,
  );

  const { rows } = await p.db.pool.query<{ pause_reason: string }>(
    'select pause_reason from campaigns where campaign_id = $1',
    [campaignId],
  );
  t.regex(rows[0]?.pause_reason ?? '', /^permanent bounce rate/);
  // Within seconds: before, the bounces waited behind every send queued before them and the guard
  // paused the campaign only once it had (nearly) all been sent.
  t.true(delayMs < 3_000, `paused ${delayMs} ms after the limit was crossed`);
  t.true((counts.pending ?? 0) >= 2_000, `${counts.pending} recipients still pending`);
  // And it stays paused: no more than the sends already in flight leave afterwards.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  t.true(p.ses.sent().length <= sentAtPause + 2 * 16, 'sends stop at the pause');
});
