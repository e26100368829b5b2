// `mailer worker`: graphile-worker with every task in tasks/ and the crontab. Registers the process
// (so that a SIGKILLed one's claims and jobs are released within seconds by the other processes'
// dead-worker check, or by the next sweep) and shuts down gracefully: stop fetching, finish
// in-flight jobs, then the caller closes the pool.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SendEmailCommand } from '@aws-sdk/client-sesv2';
import { parseCrontab, type Runner, run, type WorkerEvents } from 'graphile-worker';
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { graphileLoggerFrom } from '../logger.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { coalesce } from '../queries/coalesce.ts';
import { createTemplateRenderer } from '../ses/render.ts';
import { watchForDeadWorkers } from './dead-workers.ts';
import { PermanentJobError } from './define.ts';
import type { TaskDeps } from './deps.ts';
import { resolveAccountRate, sendConcurrency } from './pacing.ts';
import { loadTaskList, tasksDirectory } from './registry.ts';
import { SUPERVISOR_PID_ENV } from './supervisor.ts';

export const crontabPath = join(tasksDirectory, '..', 'crontab');

export function newProcessId(): string {
  return `mailer-worker-${randomBytes(6).toString('hex')}`;
}

export interface WorkerHandle {
  /** The two runners (see startWorker): send_recipient, and every other task with the crontab. */
  runners: { sends: Runner; others: Runner };
  /** Jobs each runner runs at once. */
  concurrency: number;
  /** Settles when either runner ends by itself (resolved) or fails (rejected). */
  promise: Promise<void>;
  metrics: Metrics;
  stop(): Promise<void>;
}

export interface WorkerOptions {
  config: Config;
  logger: Logger;
  pool: pg.Pool; // created with application_name = processId
  processId: string;
  ses: TaskDeps['ses'];
  concurrency?: number;
  crontab?: boolean;
  metrics?: Metrics;
}

// The SDK loads and builds much of SendEmail's path on first use; a paced send that pays for that
// arrives late and bunches up with the next ones. Run the path once without sending anything:
// the request is aborted before it is written.
async function warmUpSendPath(ses: TaskDeps['ses']): Promise<void> {
  const probe = new SendEmailCommand({
    FromEmailAddress: 'warm-up@example.invalid',
    Destination: { ToAddresses: ['warm-up@example.invalid'] },
    Content: { Simple: { Subject: { Data: 'x' }, Body: { Text: { Data: 'x' } } } },
  });
  await ses.send(probe, { abortSignal: AbortSignal.abort() }).catch(() => undefined);
}

// Connections a worker process needs: not one per running job. Jobs spend their time in
// SendEmail or in a pacing sleep, holding no connection: graphile-worker's local queue fetches for
// all of them, claims and outcomes go out in batches (src/queries/send-batches.ts), and job
// completions take a connection for one short statement (the sends' in batches). So the pool grows with
// concurrency only up to a cap, and a high concurrency (what a real SES's tens of milliseconds
// per call need) does not exhaust the server's max_connections.
export const WORKER_POOL_CAP = 24;

export function workerPoolSize(concurrency: number): number {
  // +5: the two runners' LISTEN connections, the cron, and the other runner's short statements.
  return Math.min(concurrency + 5, WORKER_POOL_CAP);
}

// The task that runs in a runner of its own. A paced send holds its job slot while it waits for
// its pacing slot, so during a paced campaign every slot is taken by sends, and graphile-worker's
// local queue holds the next sends (fetched in run_at order): a process_ses_event job added then
// waited until the sends queued before it had gone (a complaint added at 52 sent ran at 232 sent,
// 38 s later), and the reputation guard paused a campaign only near its end. A higher priority for
// events orders the next fetch only, not the sends already in the local queue and the slots: 4-6 s
// late mid-campaign at 25/s (test/events/events-overtake-sends.exclusive.test.ts), and longer at
// lower rates or with more workers. graphile-worker's named queues run one job at a time. So
// send_recipient has a runner of its own, and every other task (SES events, the sweep, the
// reconciliation, generation) runs in a second runner with as many slots, never behind a send.
const SEND_TASK = 'send_recipient';

// Jobs a process runs at once (in each of its two runners) when neither WORKER_CONCURRENCY nor -c
// says: this many unpaced; paced, as many as the rate needs (sendConcurrency in pacing.ts).
export const UNPACED_CONCURRENCY = 64;

// graphile-worker's local queue: jobs fetched in one query. Never smaller than the concurrency
// unless WORKER_LOCAL_QUEUE_SIZE says so: graphile-worker then warns, and fetches too few at once.
const LOCAL_QUEUE_SIZE = 100;

// The graphile-worker options both runners of a `mailer worker` run with. failJobBatchDelay and,
// outside the send runner, completeJobBatchDelay stay off: graphile-worker 0.18 never retries a
// batch that fails (upstream #636), and with the SES events' jobs batched a deadlock once stopped
// a worker in 1 of 6 runs.
export function workerPreset(
  config: Config,
  concurrency = config.worker.concurrency ?? UNPACED_CONCURRENCY,
): NonNullable<GraphileConfig.Preset['worker']> {
  const localQueueSize = config.worker.localQueueSize ?? Math.max(LOCAL_QUEUE_SIZE, concurrency);
  return {
    ...(localQueueSize > 0 ? { localQueue: { size: localQueueSize } } : {}),
    pollInterval: 1_000,
  };
}

// The send runner writes its jobs' completions in batches: one statement and one commit for the
// jobs that end within the same few milliseconds, instead of a round trip and a commit each (a
// paced send comes alone: bench/pacing.ts). A failed batch ends the runner and the supervisor
// starts a new one; a completion lost with its process only runs the job again, which finds its
// recipient no longer pending and sends nothing. bench/baselines.ts measures raw graphile-worker
// with these options, so the send figures compare like with like.
const SEND_COMPLETION_BATCH_MS = 5;

export function sendRunnerPreset(
  config: Config,
  concurrency = config.worker.concurrency ?? UNPACED_CONCURRENCY,
): NonNullable<GraphileConfig.Preset['worker']> {
  return { ...workerPreset(config, concurrency), completeJobBatchDelay: SEND_COMPLETION_BATCH_MS };
}

export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const { config, logger, pool, processId } = options;
  // A malformed payload is a permanent failure: no retries for something that can never parse.
  // graphile-worker emits job:complete before its failJob() has unlocked the row, and
  // permanently_fail_jobs skips locked jobs, so try again briefly until the row is ours.
  const failPermanently = async (jobId: string, message: string) => {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        const { rowCount } = await pool.query(
          'select graphile_worker.permanently_fail_jobs(array[$1::bigint], $2)',
          [jobId, message],
        );
        if (rowCount) return;
      } catch (error) {
        logger.error({ err: error, jobId }, 'could not fail job permanently');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 20 * (attempt + 1)));
    }
    logger.error({ jobId }, 'job still locked; it will be retried');
  };
  await warmUpSendPath(options.ses);
  const deps: TaskDeps = {
    pool,
    config,
    logger,
    ses: options.ses,
    render: createTemplateRenderer(pool),
    sendRate: await resolveAccountRate(config, options.ses, logger),
    metrics: options.metrics ?? createMetrics(pool),
  };
  const supervisorPid = Number(process.env[SUPERVISOR_PID_ENV]) || null;
  await pool.query(
    `insert into public.worker_processes (process_id, hostname, pid, supervisor_pid)
     values ($1, $2, $3, $4) on conflict (process_id) do nothing`,
    [processId, hostname(), process.pid, supervisorPid],
  );
  // Free whatever a previous, killed worker left locked before we start taking jobs.
  await pool.query('select public.release_dead_workers()');

  const crontab = options.crontab === false ? '' : await readFile(crontabPath, 'utf8');
  const events = new EventEmitter() as WorkerEvents;
  // graphile-worker creates a worker per job slot (two runners: twice the concurrency, 128-256 per
  // process): their ids go onto the process's row in batches, one update for the ids created in
  // the same moment, instead of that many updates queueing on that one row.
  const registerIds = coalesce<string, void>(
    async (ids) => {
      await pool.query(
        `update public.worker_processes
            set worker_ids = worker_ids || array(select unnest($2::text[])
                                                 except select unnest(worker_ids))
          where process_id = $1`,
        [processId, ids],
      );
      return ids.map(() => undefined);
    },
    { maxBatch: 1_000, maxInFlight: 1 },
  );
  const register = (id: string) =>
    registerIds(id).catch((error) => logger.error({ err: error }, 'could not register worker id'));
  events.on('pool:create', ({ workerPool }) => void register(workerPool.id));
  events.on('worker:create', ({ worker }) => void register(worker.workerId));
  // A malformed payload is a permanent failure: no retries for something that can never parse.
  events.on('job:complete', ({ job, error }) => {
    if (error instanceof PermanentJobError) void failPermanently(job.id, error.message);
  });
  const { [SEND_TASK]: sendTask, ...otherTasks } = await loadTaskList(deps);
  if (sendTask === undefined) throw new Error(`startWorker: no ${SEND_TASK} task in tasks/`);
  const concurrency =
    options.concurrency ??
    config.worker.concurrency ??
    sendConcurrency(deps.sendRate(), UNPACED_CONCURRENCY);
  const shared = {
    events,
    pgPool: pool,
    noHandleSignals: true,
    logger: graphileLoggerFrom(logger),
    preset: { worker: workerPreset(config, concurrency) },
    concurrency,
  };
  const sends = await run({
    ...shared,
    preset: { worker: sendRunnerPreset(config, concurrency) },
    taskList: { [SEND_TASK]: sendTask },
    parsedCronItems: [],
  });
  let others: Runner;
  try {
    others = await run({
      ...shared,
      taskList: otherTasks,
      parsedCronItems: parseCrontab(crontab),
    });
  } catch (error) {
    await sends.stop();
    throw error;
  }

  const stopWatching = watchForDeadWorkers(pool, logger);
  return {
    runners: { sends, others },
    concurrency,
    // When one runner ends (graphile-worker gives up after losing the database), the process
    // stops: the supervisor starts a new one with both.
    promise: Promise.race([sends.promise, others.promise]),
    metrics: deps.metrics,
    async stop() {
      stopWatching();
      await Promise.all([stopRunner(sends), stopRunner(others)]);
      await pool
        .query('delete from public.worker_processes where process_id = $1', [processId])
        .catch(() => undefined);
    },
  };
}

// A runner that already ended (the one whose end stopped the process) refuses a second stop.
async function stopRunner(runner: Runner): Promise<void> {
  try {
    await runner.stop();
  } catch (error) {
    if (!(error instanceof Error && /already stopped/.test(error.message))) throw error;
  }
}
