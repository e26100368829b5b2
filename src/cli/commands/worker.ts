import type { Command } from 'commander';
import { exitWithSupervisor, superviseWorker } from '../../worker/supervisor.ts';
import { createContext, untilSignal } from '../context.ts';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('Run the graphile-worker task runner (every task in tasks/ plus the crontab)')
    .option('-c, --concurrency <n>', 'jobs run at once in this process', (v) => Number(v))
    .option('--no-crontab', 'do not run the recurring tasks in this process')
    .option(
      '--no-supervise',
      'run the task runner in this process; without it, a supervisor restarts the runner ' +
        'whenever it dies (after waiting for the database)',
    )
    .action(async (options: { concurrency?: number; crontab: boolean; supervise: boolean }) => {
      // Loaded here, not at the top: every other command would load graphile-worker, the AWS
      // SDK and prom-client too (the CSV import runs in a 32 MB heap in its test).
      const [{ openMetricsListener }, { startSendingWorker }] = await Promise.all([
        import('../../http/metrics.ts'),
        import('../../worker/ses-startup.ts'),
      ]);
      const ctx = createContext();
      const stopping = untilSignal(ctx.logger);
      if (options.supervise) {
        const args = [
          ...(options.concurrency === undefined
            ? []
            : ['--concurrency', String(options.concurrency)]),
          ...(options.crontab ? [] : ['--no-crontab']),
        ];
        const databaseUrl = await ctx.databaseUrl();
        ctx.logger.info('worker supervisor started');
        const code = await superviseWorker({ args, databaseUrl, logger: ctx.logger, stopping });
        ctx.logger.info('worker supervisor stopped');
        // Exit now, not when the event loop has drained: while node tears the process down, its
        // signal handlers are gone, and an impatient second SIGTERM arriving then killed the
        // supervisor (143) instead of exiting 130 (untilSignal; test/faults/shutdown.test.ts).
        process.exit(code);
      }
      exitWithSupervisor();
      const { processId, concurrency, pool, ses, worker } = await startSendingWorker(
        ctx.config,
        ctx.logger,
        {
          databaseUrl: await ctx.databaseUrl(),
          concurrency: options.concurrency,
          crontab: options.crontab,
        },
      );
      ctx.logger.info({ processId, concurrency }, 'worker started');
      // Its own counters (sends, SES errors, events) live in this process's memory.
      const metrics = await openMetricsListener(worker.metrics, {
        port: ctx.config.worker.metricsPort,
        host: ctx.config.metrics.host,
        logger: ctx.logger,
      });
      await Promise.race([stopping, worker.promise]);
      await worker.stop();
      await metrics.close();
      await ses.close();
      await pool.end();
      ctx.logger.info('worker stopped');
    });
}
