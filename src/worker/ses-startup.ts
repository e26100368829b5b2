// The SES connection of a process that sends (`mailer worker`, `mailer start`): connect, and for
// real SES run the same check as `mailer ses check` before the first job is taken. A problem that
// stops every send (GetAccount refused, sending disabled, an unverified From, a missing
// configuration set) stops the process with exit 2; the others are logged as warnings. A local
// SES is not checked: it proves nothing about an account.
// startSendingWorker wires that connection, the pool and the worker the same way for both.
import type pg from 'pg';
import { type Config, ConfigError } from '../config.ts';
import { createPool } from '../db/pool.ts';
import type { Logger } from '../logger.ts';
import { connectSes } from '../ses/connect.ts';
import { checkSesAtStartup } from '../ses/preflight.ts';
import { newProcessId, startWorker, UNPACED_CONCURRENCY, workerPoolSize } from './runner.ts';

export async function connectSesForSending(config: Config, logger: Logger, pool: pg.Pool) {
  const ses = await connectSes(config, logger);
  if (ses.target.kind !== 'aws') return ses;
  if (!(await checkSesAtStartup({ client: ses.client, config, pool, logger }))) {
    await ses.close();
    throw new ConfigError(
      'SES cannot send for this account (the SES check lines above say why); fix it, then ' +
        'start again (`mailer ses check` runs the same check)',
    );
  }
  return ses;
}

/**
 * A sending process's worker: a pool named by a new process id (the worker's share of
 * connections for `concurrency`, plus `extraConnections` for other users of the pool), the SES
 * connection above, and the worker on both. The caller stops the worker, then closes SES and ends
 * the pool.
 */
export async function startSendingWorker(
  config: Config,
  logger: Logger,
  options: {
    databaseUrl: string;
    concurrency?: number;
    extraConnections?: number;
    crontab?: boolean;
  },
) {
  const processId = newProcessId();
  // The pool is sized before the rate is known; a concurrency sized from it is never below
  // UNPACED_CONCURRENCY, and the pool's size is capped well below that anyway.
  const poolFor = options.concurrency ?? config.worker.concurrency ?? UNPACED_CONCURRENCY;
  const pool = createPool(options.databaseUrl, logger, {
    max: workerPoolSize(poolFor) + (options.extraConnections ?? 0),
    applicationName: processId,
    // Between campaigns a worker is idle for days. With its connections closed after 10 s idle,
    // every campaign started on new server sessions, and its first half second of paced sends
    // ran at about half the rate (BENCHMARKS.md, 4a). At most workerPoolSize connections stay.
    keepIdle: true,
  });
  let ses: Awaited<ReturnType<typeof connectSesForSending>> | undefined;
  try {
    ses = await connectSesForSending(config, logger, pool);
    const worker = await startWorker({
      config,
      logger,
      pool,
      processId,
      ses: ses.client,
      concurrency: options.concurrency,
      crontab: options.crontab,
    });
    return { processId, concurrency: worker.concurrency, pool, ses, worker };
  } catch (error) {
    // The kept connections would hold the process open after its one-line refusal.
    await ses?.close();
    await pool.end().catch(() => undefined);
    throw error;
  }
}
