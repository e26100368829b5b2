// Runs a real campaign through `mailer worker` processes and the local SES endpoint, and measures
// it: time, rates, CPU per process kind, database wait events, WAL and commits per send, and
// whether every recipient got exactly one message.
import { type BenchDatabase, seedCustomers } from '../lib.ts';
import {
  backendCpuByPid,
  backendCpuSince,
  type ChildHandle,
  machineCpuMs,
  processCpuMs,
  processCpuSplitMs,
  sleep,
} from './processes.ts';
import {
  databaseCounters,
  percentile,
  round,
  sampleWaitEvents,
  type WaitEventShare,
} from './sampling.ts';
import type { SesProcess } from './ses-process.ts';

/** Customers, an internal template and a draft campaign (generated, not queued). */
export async function prepareCampaign(db: BenchDatabase, recipients: number): Promise<string> {
  await seedCustomers(db.pool, recipients);
  const id = await draftCampaign(db, 1, 0);
  await db.pool.query('vacuum analyze');
  return id;
}

/**
 * Generates (not queues) the campaign of `week` for current_date + dayOffset; forced, since a
 * benchmark's date need not be in the week, nor the first campaign of its week.
 */
export async function draftCampaign(db: BenchDatabase, week: number, dayOffset: number) {
  const { rows } = await db.pool.query<{ id: string }>(
    `select public.generate_campaign($1, current_date + $2::int, false, interval '90 days',
                                     'https://mailer.example', p_force => true) as id`,
    [week, dayOffset],
  );
  const id = rows[0]?.id;
  if (!id) throw new Error('generate_campaign returned nothing');
  return id;
}

// A rate that never binds: every real SES account has a rate and mailer paces to it, so the
// benchmarks measure the paced path unless told otherwise (UNPACED, a labelled comparison).
export const NON_BINDING_RATE = 1_000_000;
export const UNPACED = { SES_MAX_SEND_RATE: '0' };

export function workerEnv(ses: SesProcess, extra: Record<string, string> = {}) {
  return { SES_ENDPOINT: ses.url, SES_MAX_SEND_RATE: String(NON_BINDING_RATE), ...extra };
}

export async function campaignStatus(db: BenchDatabase, campaignId: string): Promise<string> {
  const { rows } = await db.pool.query<{ status: string }>(
    'select status from campaigns where campaign_id = $1',
    [campaignId],
  );
  return rows[0]?.status ?? 'missing';
}

/** Where a campaign that did not finish stands: its recipients, feed cursor and jobs. */
async function stuckState(db: BenchDatabase, campaignId: string): Promise<string> {
  const { rows } = await db.pool.query(
    `select c.status, c.generating,
            (select json_object_agg(s.recipient_status, s.n) from (
               select recipient_status, count(*) as n from public.campaign_recipients
                where campaign_id = c.campaign_id group by 1) s) as recipients,
            (select row_to_json(f) from public.campaign_feeds f
              where f.campaign_id = c.campaign_id) as feed,
            (select json_agg(j) from (
               select task_identifier, count(*) as n, count(locked_at) as locked,
                      max(attempts) as attempts, max(last_error) as last_error
                 from graphile_worker.jobs group by 1) j) as jobs
       from public.campaigns c where c.campaign_id = $1`,
    [campaignId],
  );
  return JSON.stringify(rows[0] ?? 'no such campaign');
}

export async function waitUntilDone(
  db: BenchDatabase,
  campaignId: string,
  workers: ChildHandle[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await campaignStatus(db, campaignId)) !== 'done') {
    if (Date.now() > deadline) {
      throw new Error(`campaign not done in time: ${await stuckState(db, campaignId)}`);
    }
    for (const w of workers) {
      if (w.child.exitCode !== null) throw new Error(`worker died:\n${w.output()}`);
    }
    await sleep(20);
  }
}

export interface CampaignRun {
  recipients: number;
  workers: number;
  enqueue_ms: number;
  first_send_ms: number;
  send_ms: number;
  total_ms: number;
  recipients_per_second: number;
  end_to_end_per_second: number;
  steady_per_second: number;
  cpu_us_per_send: Record<string, number>;
  worker_cpu_kernel_share: number;
  cpu_cores_busy: Record<string, number>;
  wal_bytes_per_send: number;
  commits_per_send: number;
  wait_events: WaitEventShare;
  ses_calls: number;
  duplicates: number;
  statuses: Record<string, number>;
}

/**
 * Queues the campaign and waits until it is done. Rates: recipients_per_second counts from the
 * first SendEmail to the campaign's `done` (like the baselines, which count from the first job);
 * end_to_end_per_second from `update ... set status = 'queued'` (enqueueing included);
 * steady_per_second between the 10th and 90th percentile sends.
 */
export async function runCampaign(
  db: BenchDatabase,
  ses: SesProcess,
  campaignId: string,
  workers: ChildHandle[],
  options: { timeoutMs?: number } = {},
): Promise<CampaignRun> {
  await ses.clear();
  const pending = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from campaign_recipients
      where campaign_id = $1 and recipient_status = 'pending'`,
    [campaignId],
  );
  const recipients = pending.rows[0]?.n ?? 0;
  const workerCpu = () => workers.reduce((s, w) => s + (processCpuMs(w.pid) ?? 0), 0);
  const workerSys = () => workers.reduce((s, w) => s + (processCpuSplitMs(w.pid)?.system ?? 0), 0);
  const before = {
    workers: workerCpu(),
    workersSys: workerSys(),
    ses: ses.cpuMs(),
    bench: process.cpuUsage(),
    machine: machineCpuMs(),
    backends: await backendCpuByPid(db),
    counters: await databaseCounters(db.pool),
  };
  const sampler = sampleWaitEvents(db.pool, db.name);
  const wall0 = Date.now();
  const t0 = performance.now();
  let enqueueMs: number;
  try {
    await db.pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [
      campaignId,
    ]);
    enqueueMs = performance.now() - t0;
    await waitUntilDone(db, campaignId, workers, options.timeoutMs ?? 600_000);
  } catch (error) {
    await sampler.stop();
    throw error;
  }
  const totalMs = performance.now() - t0;
  const doneWall = wall0 + totalMs;
  const postgresMs = await backendCpuSince(db, before.backends);
  const after = {
    workers: workerCpu(),
    workersSys: workerSys(),
    ses: ses.cpuMs(),
    bench: process.cpuUsage(before.bench),
    machine: machineCpuMs(),
    counters: await databaseCounters(db.pool),
  };
  const waits = await sampler.stop();
  const summary = await ses.summary();
  const accepted = summary.acceptedAt;
  const firstSend = accepted[0] ?? doneWall;
  const sendMs = doneWall - firstSend;
  const p10 = percentile(accepted, 10);
  const p90 = percentile(accepted, 90);
  const statusRows = await db.pool.query<{ recipient_status: string; n: number }>(
    `select recipient_status, count(*)::int as n from campaign_recipients
      where campaign_id = $1 group by 1`,
    [campaignId],
  );
  const cpu = {
    worker: after.workers - before.workers,
    postgres: postgresMs,
    ses: after.ses - before.ses,
    bench: (after.bench.user + after.bench.system) / 1000,
  };
  const machineBusy = after.machine.busy - before.machine.busy;
  const ours = cpu.worker + cpu.postgres + cpu.ses + cpu.bench;
  const n = Math.max(1, recipients);
  const perSend = (ms: number) => round((ms * 1000) / n);
  const cores = (ms: number) => round(ms / totalMs, 2);
  return {
    recipients,
    workers: workers.length,
    enqueue_ms: round(enqueueMs),
    first_send_ms: round(firstSend - wall0),
    send_ms: round(sendMs),
    total_ms: round(totalMs),
    recipients_per_second: round(recipients / (sendMs / 1000)),
    end_to_end_per_second: round(recipients / (totalMs / 1000)),
    steady_per_second: round((0.8 * accepted.length) / Math.max(0.001, (p90 - p10) / 1000)),
    cpu_us_per_send: {
      worker: perSend(cpu.worker),
      postgres_backends: perSend(cpu.postgres),
      local_ses: perSend(cpu.ses),
      bench: perSend(cpu.bench),
    },
    worker_cpu_kernel_share: round((after.workersSys - before.workersSys) / cpu.worker, 2),
    cpu_cores_busy: {
      worker: cores(cpu.worker),
      postgres_backends: cores(cpu.postgres),
      local_ses: cores(cpu.ses),
      rest_of_machine: cores(Math.max(0, machineBusy - ours)),
      machine: cores(machineBusy),
    },
    wal_bytes_per_send: round((after.counters.walBytes - before.counters.walBytes) / n),
    commits_per_send: round((after.counters.commits - before.counters.commits) / n, 2),
    wait_events: waits,
    ses_calls: summary.calls,
    duplicates: summary.duplicates,
    statuses: Object.fromEntries(statusRows.rows.map((r) => [r.recipient_status, r.n])),
  };
}
