// A whole sending pipeline for tests: a cloned database, the local SES endpoint in this process,
// real `mailer worker` child processes, and helpers to count what SES actually received.
import type { ExecutionContext } from 'ava';
import { type LocalSes, type LocalSesOptions, startLocalSes } from '../../src/ses-local/server.ts';
import { type LongRunning, startCli, waitFor } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createTemplate } from '../helpers/factories.ts';

export interface Pipeline {
  db: TestDatabase;
  ses: LocalSes;
  workers: LongRunning[];
  env: Record<string, string>;
  startWorker(extraEnv?: Record<string, string>): Promise<LongRunning>;
}

// At most MAILER_TEST_PIPELINE_SLOTS pipelines at once in this test file (test/run.ts sets it
// for a server with few connections); unset means no limit.
const pipelineSlots = Number(process.env.MAILER_TEST_PIPELINE_SLOTS) || Number.POSITIVE_INFINITY;
let pipelinesRunning = 0;
const pipelinesWaiting: (() => void)[] = [];

async function acquirePipelineSlot(): Promise<void> {
  if (pipelinesRunning < pipelineSlots) {
    pipelinesRunning++;
    return;
  }
  await new Promise<void>((resolve) => pipelinesWaiting.push(resolve));
}

function releasePipelineSlot(): void {
  const next = pipelinesWaiting.shift();
  if (next) next();
  else pipelinesRunning--;
}

export async function startPipeline(
  t: ExecutionContext,
  options: { ses?: LocalSesOptions; env?: Record<string, string> } = {},
): Promise<Pipeline> {
  await acquirePipelineSlot();
  let db: TestDatabase;
  let ses: LocalSes;
  try {
    db = await createTestDatabase();
    ses = await startLocalSes(options.ses);
  } catch (error) {
    releasePipelineSlot();
    throw error;
  }
  const env = {
    DATABASE_URL: db.url,
    SES_ENDPOINT: ses.url,
    SES_MAX_SEND_RATE: '0',
    SES_TIMEOUT_MS: '3000',
    SEND_CLAIM_LEASE_SECONDS: '6',
    // Several worker processes per test and two test files at a time: keep connections modest.
    WORKER_CONCURRENCY: '8',
    LOG_LEVEL: 'warn',
    ...options.env,
  };
  const workers: LongRunning[] = [];
  const pipeline: Pipeline = {
    db,
    ses,
    workers,
    env,
    async startWorker(extraEnv = {}) {
      const worker = startCli(['worker'], { ...env, ...extraEnv });
      workers.push(worker);
      await waitFor(
        async () =>
          (
            await db.pool.query(
              'select 1 from public.worker_processes where $1 in (pid, supervisor_pid)',
              [worker.child.pid],
            )
          ).rowCount === 1 || worker.child.exitCode !== null,
        { what: 'worker start', timeoutMs: 30_000 },
      );
      if (worker.child.exitCode !== null) throw new Error(`worker exited:\n${worker.output()}`);
      return worker;
    },
  };
  t.teardown(async () => {
    // A failed test shows what its workers said (their last lines), so a timeout has a cause.
    if (!t.passed) {
      for (const w of workers) t.log(`worker ${w.child.pid}:\n${w.output().slice(-3000)}`);
    }
    for (const w of workers) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    try {
      await ses.close();
      await db.drop();
    } finally {
      releasePipelineSlot();
    }
  });
  return pipeline;
}

// `active` active customers (the first `suppressed` of them on the suppression list) plus
// `inactive` inactive ones, and an internal template for `week`.
export async function seedCustomers(
  db: TestDatabase,
  counts: { active: number; suppressed?: number; inactive?: number; week?: number },
): Promise<void> {
  await createTemplate(db.pool, { week_of_month: counts.week ?? 1 });
  await db.pool.query(
    `insert into customers (email, name, company, country, is_active)
     select 'customer' || g || '@example.com', 'Customer ' || g, 'Company ' || g, 'NL', g <= $1::int
       from generate_series(1, $1::int + $2::int) g`,
    [counts.active, counts.inactive ?? 0],
  );
  await db.pool.query(
    `insert into suppression_list (email, reason, source)
     select 'customer' || g || '@example.com', 'manual', 'ops' from generate_series(1, $1::int) g`,
    [counts.suppressed ?? 0],
  );
}

export async function generate(
  db: TestDatabase,
  options: { week?: number; date?: string; send?: boolean } = {},
): Promise<string> {
  const date = options.date ?? '2026-11-02';
  await db.pool.query(
    `select graphile_worker.add_job('generate_campaign',
       json_build_object('week_of_month', $1::int, 'generated_date', $2::text, 'send', $3::boolean))`,
    [options.week ?? 1, date, options.send ?? true],
  );
  return waitFor(
    async () =>
      (
        await db.pool.query<{ campaign_id: string }>(
          'select campaign_id from campaigns where week_of_month = $1 and generated_date = $2',
          [options.week ?? 1, date],
        )
      ).rows[0]?.campaign_id,
    { what: 'campaign generation' },
  );
}

export async function campaignStatus(db: TestDatabase, campaignId: string): Promise<string> {
  const { rows } = await db.pool.query<{ status: string }>(
    'select status from campaigns where campaign_id = $1',
    [campaignId],
  );
  return rows[0]?.status ?? 'missing';
}

export async function waitForDone(db: TestDatabase, campaignId: string, timeoutMs = 120_000) {
  await waitFor(async () => (await campaignStatus(db, campaignId)) === 'done', {
    what: 'campaign done',
    timeoutMs,
    intervalMs: 250,
  });
}

/** Until no send_recipient job is left in the queue (waiting, retrying or running). */
export async function waitForNoSendJobs(db: TestDatabase): Promise<void> {
  await waitFor(
    async () =>
      (
        await db.pool.query(
          `select 1 from graphile_worker.jobs where task_identifier = 'send_recipient'`,
        )
      ).rowCount === 0,
    { what: 'no send_recipient job left' },
  );
}

export async function statusCounts(
  db: TestDatabase,
  campaignId: string,
): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ recipient_status: string; n: number }>(
    `select recipient_status, count(*)::int as n from campaign_recipients
      where campaign_id = $1 group by 1`,
    [campaignId],
  );
  return Object.fromEntries(rows.map((r) => [r.recipient_status, r.n]));
}

// How many messages SES accepted per address, counted at the endpoint, not by our bookkeeping.
export function deliveriesByAddress(ses: LocalSes): Map<string, number> {
  const counts = new Map<string, number>();
  for (const message of ses.sent()) {
    for (const to of message.to) counts.set(to, (counts.get(to) ?? 0) + 1);
  }
  return counts;
}

export function duplicates(ses: LocalSes): string[] {
  return [...deliveriesByAddress(ses)].filter(([, n]) => n > 1).map(([address]) => address);
}
