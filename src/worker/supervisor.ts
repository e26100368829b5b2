// `mailer worker` supervises its own runner: the task runner lives in a child process
// (`mailer worker --no-supervise`), and when that child dies for any reason other than being told
// to stop (the database went away and graphile-worker gave up, an uncaught error, the OOM killer,
// a SIGKILL), the supervisor waits until the database answers again and starts a new one.
// The dead child's jobs are released by the new one at startup (release_dead_workers): its
// connections are gone, so its registration is stale. Sends it had claimed are never repeated:
// they are in_doubt after their lease, as after any crash.
//
// Signals: SIGTERM/SIGINT are forwarded to the child, which finishes its jobs and exits; a second
// signal ends both at once. The child runs in its own process group (a
// terminal's Ctrl-C reaches the supervisor only, so the child hears it once) and kills itself with
// SIGKILL when the supervisor disappears, so a `kill -9` of `mailer worker` is a crash of both.
import { type ChildProcess, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DatabaseClient, describeConnectFailure } from '../db/pool.ts';
import type { Logger } from '../logger.ts';

const cliPath = fileURLToPath(new URL('../cli/main.ts', import.meta.url));

/** Set in the child's environment: the pid of the supervisor that started it. */
export const SUPERVISOR_PID_ENV = 'MAILER_SUPERVISOR_PID';

// Restart backoff: 1 s, doubling up to 30 s while children keep dying young; a child that ran
// for a minute resets it.
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;
const HEALTHY_RUN_MS = 60_000;
const SESSIONS_END_WAIT_MS = 5_000;
// Exit status 2 is bad usage or configuration: a restart cannot fix it.
const EXIT_USAGE = 2;

// The runner's V8 heap. With V8's own sizing, which scales the young generation with the
// machine's memory (64 MB semi-spaces on 24 GB), a runner sending at 1,000/s grows to 330-360 MB
// RSS; with these, 180-190 MB. The cost: none measured at 1,000/s, about a tenth fewer sends per
// second flat out (BENCHMARKS.md, row 3b). No limit a runner could die at: the heap only grows in
// smaller steps. The operator's own flags win: node's command line after these, and a flag of
// the same name in NODE_OPTIONS (which node reads first) leaves ours out;
// `--max-semi-space-size=0 --heap-growing-percent=0` is V8's own sizing.
export const RUNNER_HEAP_FLAGS = ['--max-semi-space-size=16', '--heap-growing-percent=70'] as const;

/** node's options for a runner: the heap flags the operator did not set, then theirs. */
export function runnerNodeArgs(execArgv: readonly string[], nodeOptions = ''): string[] {
  const operators = [...execArgv, ...nodeOptions.split(/\s+/)];
  const name = (flag: string) => flag.split('=')[0]?.replaceAll('_', '-');
  const defaults = RUNNER_HEAP_FLAGS.filter(
    (flag) => !operators.some((given) => name(given) === name(flag)),
  );
  return [...defaults, ...execArgv];
}

export interface SupervisorOptions {
  /** Arguments for `mailer worker` in the child, without --no-supervise. */
  args: string[];
  databaseUrl: string;
  logger: Logger;
  /** Resolves when the supervisor is asked to stop (first signal). */
  stopping: Promise<NodeJS.Signals>;
}

/** Runs runner children until asked to stop; resolves to the exit status for this process. */
export async function superviseWorker(options: SupervisorOptions): Promise<number> {
  const { logger } = options;
  let stopSignal: NodeJS.Signals | undefined;
  let child: ChildProcess | undefined;
  // A second signal exits this process at once (untilSignal); the child, losing its supervisor,
  // then dies as if killed.
  const stopped = options.stopping.then((signal) => {
    stopSignal = signal;
    child?.kill(signal);
  });

  let backoff = FIRST_BACKOFF_MS;
  let deadPid: number | undefined;
  for (let generation = 1; ; generation++) {
    if (!(await waitForDatabase(options.databaseUrl, logger, stopped))) return 0;
    if (stopSignal) return 0;
    if (deadPid !== undefined) await untilSessionsEnd(options.databaseUrl, deadPid, logger);
    const startedAt = Date.now();
    child = spawn(
      process.execPath,
      [
        ...runnerNodeArgs(process.execArgv, process.env.NODE_OPTIONS),
        cliPath,
        'worker',
        '--no-supervise',
        ...options.args,
      ],
      {
        env: {
          ...process.env,
          DATABASE_URL: options.databaseUrl,
          [SUPERVISOR_PID_ENV]: String(process.pid),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        detached: true,
      },
    );
    logger.info({ childPid: child.pid, generation }, 'worker runner started');
    const { code, signal } = await exitOf(child);
    deadPid = child.pid;
    child = undefined;
    // Asked to stop: a child that the forwarded signal killed before it could handle it (still
    // starting) stopped as asked.
    if (stopSignal) return code ?? (signal === stopSignal ? 0 : 1);
    if (code === 0) {
      // The runner stopped by itself without being asked: say so, and run a new one.
      logger.warn({ generation }, 'worker runner exited without being asked to stop; restarting');
    } else if (code === EXIT_USAGE) {
      logger.fatal('worker runner refused its configuration; not restarting');
      return EXIT_USAGE;
    } else {
      logger.error({ code, signal, generation }, 'worker runner died; restarting');
    }
    backoff = Date.now() - startedAt >= HEALTHY_RUN_MS ? FIRST_BACKOFF_MS : backoff;
    if (await stopsWithin(stopped, backoff)) return 0;
    backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
  }
}

function exitOf(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    child.on('error', () => resolve({ code: 1, signal: null }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** Waits ms, or less if stopped resolves first; true when stopped. */
async function stopsWithin(stopped: Promise<void>, ms: number): Promise<boolean> {
  const controller = new AbortController();
  const result = await Promise.race([
    stopped.then(() => true),
    sleep(ms, false, { signal: controller.signal }),
  ]);
  controller.abort();
  return result;
}

/** Resolves true once `select 1` succeeds, false if stopped first. Logs while it waits. */
export async function waitForDatabase(
  url: string,
  logger: Logger,
  stopped: Promise<void>,
): Promise<boolean> {
  let waitingSince: number | undefined;
  let loggedAt = 0;
  let delay = 250;
  for (;;) {
    const client = new DatabaseClient({ connectionString: url, connectionTimeoutMillis: 5_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      if (waitingSince !== undefined) {
        logger.info({ waitedMs: Date.now() - waitingSince }, 'database is back');
      }
      return true;
    } catch (error) {
      waitingSince ??= Date.now();
      if (Date.now() - loggedAt >= 30_000) {
        loggedAt = Date.now();
        // One line naming where and why (the stack, at debug, says nothing an operator needs).
        const reason = describeConnectFailure(error) ?? (error as Error).message;
        logger.warn(
          { reason, ...(logger.isLevelEnabled('debug') ? { err: error } : {}) },
          'waiting for the database before starting a worker runner',
        );
      }
    } finally {
      await client.end().catch(() => undefined);
    }
    if (await stopsWithin(stopped, delay)) return false;
    delay = Math.min(2_000, delay * 2);
  }
}

// The server notices a killed runner's connections go away a moment later. The next runner
// releases the jobs of runners without connections when it starts (release_dead_workers), so
// wait (briefly) until the dead one has none; otherwise its jobs wait for the minute's sweep.
async function untilSessionsEnd(url: string, runnerPid: number, logger: Logger): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const deadline = Date.now() + SESSIONS_END_WAIT_MS;
    while (Date.now() < deadline) {
      const { rows } = await client.query<{ n: number }>(
        `select count(*)::int as n from pg_catalog.pg_stat_activity a
           join public.worker_processes w on a.application_name = w.process_id
          where w.pid = $1 and w.hostname = $2`,
        [runnerPid, hostname()],
      );
      if ((rows[0]?.n ?? 0) === 0) return;
      await sleep(100);
    }
    logger.warn(
      { runnerPid },
      'the dead runner still has connections; the sweep will free its jobs',
    );
  } catch (error) {
    logger.warn({ err: error }, "could not check the dead runner's connections");
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** In a supervised child: die with the supervisor, as a crash (see the header). */
export function exitWithSupervisor(): void {
  if (!process.env[SUPERVISOR_PID_ENV] || !process.channel) return;
  process.channel.unref();
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
}
