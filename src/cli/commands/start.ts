// `mailer start`: everything in one process for small installs and the quick start: migrate, then
// the worker and the HTTP server (webhook, unsubscribe, health; /metrics on METRICS_PORT, a
// listener of its own). `worker` and `serve` run the two
// halves separately when they need to scale out. Shutdown order: stop taking jobs and requests,
// drain both, then end the pool.
import type { Command } from 'commander';
import { createContext, untilSignal } from '../context.ts';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('Migrate, then run the worker and the HTTP server in one process')
    .action(async () => {
      // Loaded here, not at the top, so that other commands do not load them (see worker.ts).
      const [
        { migrateDatabase },
        { openMetricsListener },
        { createPublicServer },
        { startSendingWorker },
      ] = await Promise.all([
        import('../../db/migrate.ts'),
        import('../../http/metrics.ts'),
        import('../../http/server.ts'),
        import('../../worker/ses-startup.ts'),
      ]);
      const ctx = createContext();
      const stopping = untilSignal(ctx.logger);
      const url = await ctx.databaseUrl();
      await migrateDatabase(url, ctx.logger);
      const { processId, pool, ses, worker } = await startSendingWorker(ctx.config, ctx.logger, {
        databaseUrl: url,
        // A few connections for the HTTP server besides the worker's share.
        extraConnections: 4,
      });
      // The browser console on its own listener (CONSOLE_PORT), when configured; off otherwise,
      // and then not loaded.
      const consoleListener =
        ctx.config.console.port === undefined
          ? undefined
          : await (await import('../../console/app.ts')).openConsoleListener({
              pool,
              config: ctx.config,
              logger: ctx.logger,
              ses: ses.client,
            });
      const server = await createPublicServer({ pool, config: ctx.config, logger: ctx.logger });
      const metrics = await openMetricsListener(worker.metrics, {
        ...ctx.config.metrics,
        logger: ctx.logger,
      });
      const address = await server.listen(ctx.config.port);
      ctx.logger.info({ processId, address, publicUrl: ctx.config.publicUrl }, 'mailer started');
      await Promise.race([stopping, worker.promise]);
      await consoleListener?.close();
      await Promise.all([worker.stop(), server.close(), metrics.close()]);
      await ses.close();
      await pool.end();
      ctx.logger.info('mailer stopped');
    });
}
