// Figure 2, latency: campaign set to `queued` -> first SendEmail accepted by the local SES endpoint,
// with one idle `mailer worker` (default options) waiting. Several trials, each a fresh campaign of
// the same 1,000 customers. The first send cannot come before the queue trigger's transaction
// (one add_jobs call for every recipient) commits, so enqueue_ms is reported beside it.
// Baseline, same database and worker options: raw graphile-worker, add_jobs of the same number of
// no-op jobs -> first job start.
// Target: p50 < 100 ms.
import { EventEmitter } from 'node:events';
import { run, type WorkerEvents } from 'graphile-worker';
import { loadConfig } from '../src/config.ts';
import { graphileLoggerFrom } from '../src/logger.ts';
import { UNPACED_CONCURRENCY, workerPoolSize, workerPreset } from '../src/worker/runner.ts';
import { workerPool } from './baselines.ts';
import {
  type BenchDatabase,
  createBenchDatabase,
  emit,
  logger,
  quick,
  seedCustomers,
} from './lib.ts';
import { draftCampaign, waitUntilDone, workerEnv } from './support/campaign.ts';
import { sleep, startWorkers } from './support/processes.ts';
import { percentile, round } from './support/sampling.ts';
import { startSesProcess } from './support/ses-process.ts';

const trials = quick ? 5 : 11;
const recipients = 1_000;

/** add_jobs(n no-op jobs) -> first job start, with an idle runner using the project's options. */
async function baselineLatencies(db: BenchDatabase, count: number): Promise<number[]> {
  const config = loadConfig({ ...process.env, DATABASE_URL: db.url });
  const concurrency = config.worker.concurrency ?? UNPACED_CONCURRENCY;
  const pool = workerPool(db, workerPoolSize(concurrency));
  const events = new EventEmitter() as WorkerEvents;
  let started: (() => void) | undefined;
  let succeeded = 0;
  events.on('job:start', () => started?.());
  events.on('job:success', () => {
    succeeded++;
  });
  const runner = await run({
    pgPool: pool,
    taskList: { bench_noop: async () => undefined },
    concurrency,
    noHandleSignals: true,
    events,
    logger: graphileLoggerFrom(logger),
    preset: { worker: workerPreset(config) },
  });
  const latencies: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      await sleep(300);
      const first = new Promise<void>((resolve) => {
        started = resolve;
      });
      const t0 = performance.now();
      await db.pool.query(
        `select count(*) from graphile_worker.add_jobs(array(
           select row('bench_noop', json_build_object('id', g), null, null, null,
                      'bench_noop:' || $1::int || ':' || g, null, null)::graphile_worker.job_spec
             from generate_series(1, $2::int) g))`,
        [i, recipients],
      );
      await first;
      latencies.push(performance.now() - t0);
      started = undefined;
    }
    // Stopping with jobs still in the local queue makes graphile-worker 0.18 log errors.
    while (succeeded < count * recipients) await sleep(20);
  } finally {
    await runner.stop();
    await pool.end();
  }
  return latencies;
}

const db = await createBenchDatabase('latency');
const ses = await startSesProcess();
try {
  await seedCustomers(db.pool, recipients);
  const campaigns: string[] = [];
  for (let i = 0; i < trials; i++) campaigns.push(await draftCampaign(db, 1, i));
  await db.pool.query('vacuum analyze');
  const baseline = await baselineLatencies(db, trials);

  const workers = await startWorkers(db, 1, workerEnv(ses));
  const latencies: number[] = [];
  const enqueues: number[] = [];
  try {
    for (const campaignId of campaigns) {
      await ses.clear();
      await sleep(300); // the worker is idle, waiting for work, as between two campaigns
      const wall0 = Date.now();
      const t0 = performance.now();
      await db.pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [
        campaignId,
      ]);
      enqueues.push(performance.now() - t0);
      await waitUntilDone(db, campaignId, workers, 60_000);
      const first = (await ses.summary()).acceptedAt[0];
      if (first === undefined) throw new Error('nothing was sent');
      latencies.push(first - wall0);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
  const p50 = percentile(latencies, 50);
  const baselineP50 = percentile(baseline, 50);
  emit({
    bench: 'latency',
    trials,
    recipients_per_campaign: recipients,
    queued_to_first_send_ms: latencies.map((v) => round(v)),
    p50_ms: round(p50),
    p90_ms: round(percentile(latencies, 90)),
    enqueue_p50_ms: round(percentile(enqueues, 50)),
    baseline_add_jobs_to_first_start_ms: baseline.map((v) => round(v)),
    baseline_p50_ms: round(baselineP50),
    ratio_to_baseline: round(p50 / baselineP50, 2),
    target_met: p50 < 100,
  });
} finally {
  await ses.close();
  await db.drop();
}
