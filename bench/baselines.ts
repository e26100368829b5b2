// Baselines every figure is divided by, measured on the same server in the same run:
//   noop:      raw graphile-worker draining N no-op jobs with the project's worker options
//              (concurrency, localQueue, completion batches: src/worker/runner.ts
//              sendRunnerPreset, the send runner's);
//   realistic: the same, each job locking one row (select ... for update) and updating it in a
//              transaction on the worker's pool: the least a send can cost in database work;
//   pgbench:   `pgbench -N` TPS (16 clients, 2 threads) when pgbench is installed.
// Run alone: `npx node bench/baselines.ts [--quick]`. The figure scripts import these functions and
// measure the baseline they are compared with right next to the figure, on the same database.
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { run, type TaskList, type WorkerEvents } from 'graphile-worker';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { graphileLoggerFrom } from '../src/logger.ts';
import { sendRunnerPreset, UNPACED_CONCURRENCY, workerPoolSize } from '../src/worker/runner.ts';
import { type BenchDatabase, createBenchDatabase, emit, logger, quick } from './lib.ts';
import { backendCpuByPid, backendCpuSince } from './support/processes.ts';
import { round } from './support/sampling.ts';

/** A pool like `mailer worker`'s, with the error handlers graphile-worker asks for. */
export function workerPool(db: BenchDatabase, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: db.url, max });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

export interface BaselineResult {
  jobs: number;
  ms: number;
  jobs_per_second: number;
  /** CPU per job: the Node process running graphile-worker, and PostgreSQL's backends. */
  cpu_us_per_job: { worker: number; postgres_backends: number };
}

/**
 * Runs graphile-worker in this process, as `mailer worker` would (same options, a pool of
 * workerPoolSize), until `count` jobs succeeded. Timed from the first job start to the last
 * success, so neither enqueueing nor the runner's start-up is counted.
 */
async function drain(
  db: BenchDatabase,
  taskList: (pool: pg.Pool) => TaskList,
  count: number,
): Promise<BaselineResult> {
  const config = loadConfig({ ...process.env, DATABASE_URL: db.url });
  const concurrency = config.worker.concurrency ?? UNPACED_CONCURRENCY;
  const pool = workerPool(db, workerPoolSize(concurrency));
  const events = new EventEmitter() as WorkerEvents;
  let first = 0;
  let done = 0;
  let last = 0;
  const finished = new Promise<void>((resolve) => {
    events.on('job:start', () => {
      first ||= performance.now();
    });
    events.on('job:success', () => {
      if (++done === count) {
        last = performance.now();
        resolve();
      }
    });
  });
  const backends = await backendCpuByPid(db);
  const cpu = process.cpuUsage();
  const runner = await run({
    pgPool: pool,
    taskList: taskList(pool),
    concurrency,
    noHandleSignals: true,
    events,
    logger: graphileLoggerFrom(logger),
    preset: { worker: sendRunnerPreset(config) },
  });
  await finished;
  const workerCpu = process.cpuUsage(cpu);
  const postgresMs = await backendCpuSince(db, backends);
  await runner.stop();
  await pool.end();
  const ms = last - first;
  return {
    jobs: count,
    ms: round(ms),
    jobs_per_second: round(count / (ms / 1000)),
    cpu_us_per_job: {
      worker: round((workerCpu.user + workerCpu.system) / count),
      postgres_backends: round((postgresMs * 1000) / count),
    },
  };
}

async function addJobs(db: BenchDatabase, task: string, count: number): Promise<void> {
  await db.pool.query(
    `select count(*) from graphile_worker.add_jobs(array(
       select row($1::text, json_build_object('id', g), null, null, null, null, null, null)
                ::graphile_worker.job_spec
         from generate_series(1, $2::int) g))`,
    [task, count],
  );
  await db.pool.query('vacuum analyze graphile_worker._private_jobs');
}

export async function measureNoopJobs(db: BenchDatabase, count: number): Promise<BaselineResult> {
  await addJobs(db, 'bench_noop', count);
  return drain(db, () => ({ bench_noop: async () => undefined }), count);
}

export async function measureRealisticJobs(
  db: BenchDatabase,
  count: number,
): Promise<BaselineResult> {
  await db.pool.query(
    `create table if not exists public.bench_rows (id integer primary key, counter integer not null,
       updated_at timestamptz not null default now());
     truncate public.bench_rows;
     insert into public.bench_rows (id, counter) select g, 0 from generate_series(1, ${count}) g;
     analyze public.bench_rows;`,
  );
  await addJobs(db, 'bench_realistic', count);
  return drain(
    db,
    (pool) => ({
      bench_realistic: async (payload) => {
        const id = (payload as { id: number }).id;
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query('select counter from public.bench_rows where id = $1 for update', [
            id,
          ]);
          await client.query(
            'update public.bench_rows set counter = counter + 1, updated_at = now() where id = $1',
            [id],
          );
          await client.query('commit');
        } catch (error) {
          await client.query('rollback').catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
      },
    }),
    count,
  );
}

export function findPgbench(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(`${dir}/pgbench`)) return `${dir}/pgbench`;
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  for (const version of readdirSync(root).sort().reverse()) {
    const path = `${root}/${version}/bin/pgbench`;
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** `pgbench -N` (no updates of the small tables) TPS; undefined when pgbench is not installed. */
export async function measurePgbench(
  db: BenchDatabase,
  seconds: number,
  clients = 16,
): Promise<{ tps: number; clients: number; seconds: number; scale: number } | undefined> {
  const pgbench = findPgbench();
  if (!pgbench) return undefined;
  const exec = promisify(execFile);
  const scale = 10;
  await exec(pgbench, ['-i', '-q', '-s', String(scale), db.url]);
  const { stdout } = await exec(pgbench, [
    '-N',
    '-c',
    String(clients),
    '-j',
    '2',
    '-T',
    String(seconds),
    db.url,
  ]);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1];
  if (!tps) throw new Error(`pgbench: no tps in its output:\n${stdout}`);
  return { tps: round(Number(tps)), clients, seconds, scale };
}

if (import.meta.main) {
  const jobs = quick ? 10_000 : 50_000;
  const config = loadConfig({});
  const options = {
    concurrency: config.worker.concurrency ?? UNPACED_CONCURRENCY,
    local_queue_size: sendRunnerPreset(config).localQueue?.size ?? 0,
  };
  for (const [name, measure] of [
    ['noop', measureNoopJobs],
    ['realistic', measureRealisticJobs],
  ] as const) {
    const db = await createBenchDatabase(`baseline_${name}`);
    try {
      emit({ bench: 'baseline', baseline: name, ...options, ...(await measure(db, jobs)) });
    } finally {
      await db.drop();
    }
  }
  const db = await createBenchDatabase('baseline_pgbench');
  try {
    const result = await measurePgbench(db, quick ? 5 : 10);
    emit({ bench: 'baseline', baseline: 'pgbench_N', ...(result ?? { skipped: 'no pgbench' }) });
  } finally {
    await db.drop();
  }
}
