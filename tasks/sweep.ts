// sweep (recurring, every minute): the recovery pass that makes crashes visible and finite.
// 1. For worker processes that have no database connection any more (SIGKILL): their claims
//    become in_doubt, their jobs are unlocked (every worker process also does this every few
//    seconds, src/worker/runner.ts; this is the backstop).
// 2. Declares claims older than the lease in_doubt (SendEmail may or may not have happened).
// 3. Marks campaigns with nothing left to send done.
// 4. Once no send job is left that could still run, queues the pending recipients of queued and
//    sending campaigns again: their jobs were lost (deleted by hand, or a race), and without this
//    the campaign would never be done. Only recipients the feeder has passed: the rest are its.
// 5. Gives a queued or sending campaign with recipients left to feed its feed_campaign job back
//    when that job is gone, and a campaign whose generation stopped half-way its
//    generate_campaign job (both keyed per campaign; each carries on from its cursor).
// Payload: none (graphile-worker cron passes {_cron: ...}; ignored). Rerun-safe: every step is a
// conditional UPDATE or a keyed enqueue; unlocked jobs simply run again.
import { z } from 'zod';
import { defineTask } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

export default function createSweep(deps: TaskDeps) {
  return defineTask('sweep', z.unknown(), async (_payload, helpers) => {
    // Two transactions: each of the first two finishes campaigns one after another in
    // campaign_id order (the lock order of record_send_outcomes); in one transaction the second
    // would take its locks after the first's, out of that order.
    const released = await deps.pool.query<{ released: number }>(
      'select public.release_dead_workers() as released',
    );
    const { rows } = await deps.pool.query<{
      expired: number;
      requeued: number;
      restarted: number;
    }>(
      `select public.sweep_send_claims(make_interval(secs => $1)) as expired,
              public.requeue_orphaned_recipients() as requeued,
              public.ensure_campaign_feeders() as restarted`,
      [deps.config.sendClaimLeaseSeconds],
    );
    const result = rows[0] && { ...rows[0], released: released.rows[0]?.released ?? 0 };
    if (result && (result.released > 0 || result.expired > 0)) {
      helpers.logger.warn(
        `sweep: released jobs of ${result.released} dead worker process(es); ` +
          `${result.expired} expired claim(s) now in_doubt`,
      );
    }
    if (result && result.requeued > 0) {
      helpers.logger.warn(
        `sweep: ${result.requeued} pending recipient(s) of queued or sending campaigns had no ` +
          'send job left; queued them again',
      );
    }
    if (result && result.restarted > 0) {
      helpers.logger.warn(
        `sweep: ${result.restarted} campaign(s) had lost their feed_campaign or ` +
          'generate_campaign job; added it again',
      );
    }
  });
}
