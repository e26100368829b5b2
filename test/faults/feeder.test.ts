// The feeder and chunked generation under SIGKILL. The database's window and chunk sizes are made
// small (mailer.feed_window and friends), so a campaign of 1,200 goes through dozens of feeds and
// generation chunks; workers are killed while the campaign is still generating and again while it
// sends. With no operator action the campaign must end done, every eligible address accepted by
// SES at most once (counted at the endpoint), the in-doubt ones settled by their SES events, and
// the send queue never holding more than the window (plus the jobs a dead worker left locked).
import test from 'ava';
import type { LongRunning } from '../helpers/cli.ts';
import { waitFor } from '../helpers/cli.ts';
import { campaignStatus, seedCustomers, startPipeline, waitForDone } from '../pipeline/harness.ts';
import {
  checkEndState,
  createEventSink,
  explainStall,
  jobHealth,
  sesIdle,
  sleep,
  waitForEventsApplied,
} from './support.ts';

const WINDOW = 60;
const CONCURRENCY = 8;

test('workers killed while a campaign generates and while it is fed: done, one email each', async (t) => {
  t.timeout(180_000);
  const sink = createEventSink({ hold: false });
  const p = await startPipeline(t, {
    ses: { faults: { latencyMs: 20 }, onSend: sink.onSend },
    env: { SES_MAX_SEND_RATE: '300', WORKER_CONCURRENCY: String(CONCURRENCY) },
  });
  t.teardown(() => sink.close());
  await p.db.pool.query(
    `do $$ begin
       execute format('alter database %I set mailer.feed_window = ${WINDOW}', current_database());
       execute format('alter database %I set mailer.feed_batch = 25', current_database());
       execute format('alter database %I set mailer.feed_first_batch = 20', current_database());
       execute format('alter database %I set mailer.generation_chunk = 40', current_database());
       execute format('alter database %I set mailer.generation_first_chunk = 30', current_database());
     end $$`,
  );
  const customers = 1_200;
  const suppressed = 12;
  await seedCustomers(p.db, { active: customers, suppressed });
  await sink.connect(p.db.pool);
  const live: LongRunning[] = [await p.startWorker(), await p.startWorker()];

  let maxSendJobs = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { rows } = await p.db.pool.query<{ n: number }>(
        `select count(*)::int as n from graphile_worker.jobs
          where task_identifier = 'send_recipient' and locked_at is null`,
      );
      maxSendJobs = Math.max(maxSendJobs, rows[0]?.n ?? 0);
      await sleep(20);
    }
  })();

  await p.db.pool.query(
    `select graphile_worker.add_job('generate_campaign',
       json_build_object('week_of_month', 1, 'generated_date', '2026-11-02'))`,
  );
  const campaignId = await waitFor(
    async () =>
      (
        await p.db.pool.query<{ campaign_id: string }>(
          'select campaign_id from campaigns where generating',
        )
      ).rows[0]?.campaign_id,
    { what: 'campaign generating', intervalMs: 5 },
  );
  // Kill 1: whoever runs the generation (one of the two), while it is generating.
  const { rows: gen } = await p.db.pool.query<{ supervisor_pid: number }>(
    `select w.supervisor_pid from graphile_worker.jobs j
       join worker_processes w on j.locked_by = any (w.worker_ids)
      where j.task_identifier = 'generate_campaign' limit 1`,
  );
  const first =
    live.find((w) => w.child.pid === gen[0]?.supervisor_pid) ?? (live[0] as LongRunning);
  const generatingAtKill = (
    await p.db.pool.query<{ n: number }>(
      'select count(*)::int as n from campaign_recipients where campaign_id = $1',
      [campaignId],
    )
  ).rows[0]?.n;
  first.child.kill('SIGKILL');
  await first.exited;
  live.splice(live.indexOf(first), 1);
  live.push(await p.startWorker());

  // Kill 2: one of the workers while about half is sent.
  await waitFor(async () => p.ses.sent().length >= (customers - suppressed) / 2, {
    what: 'half sent',
    timeoutMs: 60_000,
    intervalMs: 10,
  });
  const second = live[0] as LongRunning;
  second.child.kill('SIGKILL');
  await second.exited;
  // Nobody is started in its place: the survivor's sweep releases its jobs.
  await p.db.pool.query(`select graphile_worker.add_job('sweep')`);

  await waitForDone(p.db, campaignId, 120_000).catch(async (error: Error) => {
    t.log(await explainStall(p.db, campaignId));
    throw error;
  });
  sampling = false;
  await sampler;
  await sesIdle(p.ses);
  await waitForEventsApplied(p.db);
  const end = await checkEndState(t, { db: p.db, ses: p.ses, campaignId, reconciled: true });
  t.is(await campaignStatus(p.db, campaignId), 'done');
  t.is(end.recipients, customers, 'one recipient (and token) per active customer');
  t.is(
    (
      await p.db.pool.query<{ n: number }>(
        'select count(*)::int as n from unsubscribe_tokens where campaign_id = $1',
        [campaignId],
      )
    ).rows[0]?.n,
    customers,
  );
  t.is(end.byStatus.suppressed ?? 0, suppressed);
  t.is(end.calls, end.accepted, 'no SendEmail call beyond the accepted ones');
  t.is((end.byStatus.sent ?? 0) + (end.byStatus.in_doubt ?? 0), customers - suppressed);
  t.true(
    maxSendJobs <= WINDOW + CONCURRENCY,
    `at most the window of send jobs waited at once (saw ${maxSendJobs})`,
  );
  const health = await jobHealth(p.db);
  t.is(health.failed, 0, `no job failed for good: ${JSON.stringify(health.errors)}`);
  t.log(
    `first kill at ${generatingAtKill} of ${customers} recipients generated; ` +
      `${JSON.stringify(end.byStatus)}; most send jobs waiting at once: ${maxSendJobs}`,
  );
});
