// Tasks from tasks/ run in this process, as the worker would run them: the same registry, the
// dependencies the runner passes (src/worker/deps.ts) built for a test, and log lines captured
// for assertions.
import { randomUUID } from 'node:crypto';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import type { JobHelpers, Task } from 'graphile-worker';
import type pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { graphileLoggerFrom, type Logger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createTemplateRenderer } from '../../src/ses/render.ts';
import type { TaskDeps } from '../../src/worker/deps.ts';
import { loadTaskList } from '../../src/worker/registry.ts';

export type LogLine = Record<string, unknown>;

// Nothing listens on the discard port: a task that tried to send would fail at once.
const NOWHERE = 'http://127.0.0.1:9';

/** A logger at debug level whose lines are parsed into `lines`. */
export function capturingLogger(lines: LogLine[]): Logger {
  return pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
}

/** An SES client that reaches nobody, for tasks that do not talk to SES. */
export function unreachableSes(): SESv2Client {
  return new SESv2Client({
    region: 'us-east-1',
    endpoint: NOWHERE,
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    maxAttempts: 1,
  });
}

/**
 * What the runner gives every task, on `pool`: config from `env` (unpaced, SES nowhere, unless
 * `env` says otherwise), and the logger and SES client the test passes or stand-ins.
 */
export function createTaskDeps(
  pool: pg.Pool,
  options: { env?: Record<string, string>; logger?: Logger; ses?: SESv2Client } = {},
): TaskDeps {
  return {
    pool,
    config: loadConfig({ SES_MAX_SEND_RATE: '0', SES_ENDPOINT: NOWHERE, ...options.env }),
    logger: options.logger ?? pino({ level: 'silent' }),
    ses: options.ses ?? unreachableSes(),
    render: createTemplateRenderer(pool),
    sendRate: () => undefined,
    metrics: createMetrics(pool),
  };
}

/** The task registered as `identifier`, built on `deps` by the worker's own registry. */
export async function loadTask(deps: TaskDeps, identifier: string): Promise<Task> {
  const task = (await loadTaskList(deps))[identifier];
  if (!task) throw new Error(`tasks/${identifier}.ts is not registered`);
  return task;
}

/** The part of graphile-worker's helpers that the tasks use: a job id and a logger. */
export function jobHelpers(logger: Logger): JobHelpers {
  return { job: { id: randomUUID() }, logger: graphileLoggerFrom(logger) } as unknown as JobHelpers;
}

export interface TaskRun {
  run(payload?: unknown): Promise<void>;
  logs: LogLine[];
  deps: TaskDeps;
}

/** Runs tasks/<identifier>.ts on `pool`, its log lines (debug and up) in `logs`. */
export async function taskRunner(
  identifier: string,
  pool: pg.Pool,
  env: Record<string, string> = {},
): Promise<TaskRun> {
  const logs: LogLine[] = [];
  const deps = createTaskDeps(pool, { env, logger: capturingLogger(logs) });
  const task = await loadTask(deps, identifier);
  return {
    logs,
    deps,
    run: async (payload = {}) => {
      await task(payload, jobHelpers(deps.logger));
    },
  };
}
