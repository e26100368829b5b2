// Runs one task from tasks/ in this process, as the worker would (same registry, same deps),
// with its log lines captured for assertions.
import { randomUUID } from 'node:crypto';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import type { JobHelpers } from 'graphile-worker';
import type pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { graphileLoggerFrom } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createTemplateRenderer } from '../../src/ses/render.ts';
import type { TaskDeps } from '../../src/worker/deps.ts';
import { loadTaskList } from '../../src/worker/registry.ts';

export interface TaskRun {
  run(payload?: unknown): Promise<void>;
  logs: Array<Record<string, unknown>>;
  deps: TaskDeps;
}

export async function taskRunner(
  identifier: string,
  pool: pg.Pool,
  env: Record<string, string> = {},
): Promise<TaskRun> {
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const deps: TaskDeps = {
    pool,
    config: loadConfig({ SES_MAX_SEND_RATE: '0', SES_ENDPOINT: 'http://127.0.0.1:9', ...env }),
    logger,
    // No task under test talks to SES.
    ses: new SESv2Client({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    }),
    render: createTemplateRenderer(pool),
    sendRate: () => undefined,
    metrics: createMetrics(pool),
  };
  const task = (await loadTaskList(deps))[identifier];
  if (!task) throw new Error(`tasks/${identifier}.ts is not registered`);
  const helpers = () =>
    ({ job: { id: randomUUID() }, logger: graphileLoggerFrom(logger) }) as unknown as JobHelpers;
  return {
    logs,
    deps,
    run: async (payload = {}) => {
      await task(payload, helpers());
    },
  };
}
