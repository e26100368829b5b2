// Every worker process looks for dead ones every few seconds: a process without a database
// connection (SIGKILL, the OOM killer, a lost host) has its claims put in doubt, its jobs unlocked
// and its campaigns finished by release_dead_workers. The sweep does the same once a minute; with
// only the sweep, a campaign waited up to a minute after a kill (issue 15, item 5: done within
// 60 s of a SIGKILL). One short statement: worker_processes against pg_stat_activity.
import type pg from 'pg';
import type { Logger } from '../logger.ts';

export const DEAD_WORKER_CHECK_MS = 10_000;

/** Starts the periodic check; the returned function stops it (before the pool is ended). */
export function watchForDeadWorkers(
  pool: pg.Pool,
  logger: Logger,
  intervalMs = DEAD_WORKER_CHECK_MS,
): () => void {
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    pool
      .query<{ released: number }>('select public.release_dead_workers() as released')
      .then(({ rows }) => {
        const processes = rows[0]?.released ?? 0;
        if (processes > 0) {
          logger.warn(
            { processes },
            'dead worker process(es) found: their claims are in doubt, their jobs run again',
          );
        }
      })
      // The database being away is reported by the runners; this only tries again later.
      .catch((error: unknown) => logger.debug({ err: error }, 'dead worker check failed'))
      .finally(() => {
        checking = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
