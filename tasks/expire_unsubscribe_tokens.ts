// expire_unsubscribe_tokens (recurring, daily; see crontab): deletes the unsubscribe tokens no
// email carried (their recipient was suppressed at generation, or is gone with its customer) once
// they expired more than UNSUBSCRIBE_TOKEN_PURGE_AFTER_DAYS ago. A token whose email went out is
// kept as long as its campaign: its link may sit in an inbox for months, an expired token still
// unsubscribes on a one-click POST, and a deleted one could only answer 404 (public.
// expire_unsubscribe_tokens looks at each token during the week after its grace ends).
// Payload: none (cron's {_cron: ...} is ignored).
// Rerun-safe: each call deletes what is left; batches of 10,000 keep every transaction short.
// Enqueues nothing.
import { z } from 'zod';
import { defineTask } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

const BATCH = 10_000;

export default function createExpireUnsubscribeTokens(deps: TaskDeps) {
  return defineTask('expire_unsubscribe_tokens', z.unknown(), async (_payload, helpers) => {
    let total = 0;
    for (;;) {
      const { rows } = await deps.pool.query<{ deleted: number }>(
        'select public.expire_unsubscribe_tokens(make_interval(days => $1), $2) as deleted',
        [deps.config.unsubscribeTokenPurgeAfterDays, BATCH],
      );
      const deleted = rows[0]?.deleted ?? 0;
      total += deleted;
      if (deleted < BATCH) break;
    }
    deps.logger.info(
      { task: 'expire_unsubscribe_tokens', job_id: helpers.job.id, deleted: total },
      `expired unsubscribe tokens: ${total} deleted`,
    );
  });
}
