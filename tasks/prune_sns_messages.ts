// prune_sns_messages (recurring, daily): forgets SNS MessageIds older than 7 days. They exist only
// to process a redelivered notification once, and SNS stops redelivering within hours.
// Payload: none (cron). Rerun-safe: a conditional DELETE. Enqueues nothing.
import { z } from 'zod';
import { defineTask } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

export default function createPruneSnsMessages(deps: TaskDeps) {
  return defineTask('prune_sns_messages', z.unknown(), async (_payload, helpers) => {
    const { rows } = await deps.pool.query<{ n: number }>(
      `select public.prune_sns_messages(interval '7 days') as n`,
    );
    helpers.logger.info(`prune_sns_messages: forgot ${rows[0]?.n ?? 0} SNS message ids`);
  });
}
