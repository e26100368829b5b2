// `mailer serve`: the HTTP endpoints (SES webhook, unsubscribe pages, /healthz), and /metrics on a
// listener of its own when METRICS_PORT is set. Stateless, so it scales out separately from
// `mailer worker`. SIGTERM/SIGINT: stop accepting, let requests in flight finish, then close the
// pool.
import type { Command } from 'commander';
import type { ConsoleDeps } from '../../console/context.ts';
import { createPool } from '../../db/pool.ts';
import type { SesConnection } from '../../ses/client.ts';
import { createContext, UsageError, untilSignal } from '../context.ts';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`--port must be 0-65535, got ${value}`);
  }
  return port;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve POST /webhooks/ses, the unsubscribe pages and /healthz over HTTP ' +
        '(and /metrics on METRICS_PORT)',
    )
    .option('-p, --port <n>', 'port to listen on (default: PORT)', parsePort)
    .option('--host <address>', 'address to listen on (default: all interfaces)')
    .action(async (options: { port?: number; host?: string }) => {
      // Loaded here, not at the top, so that other commands do not load them (see worker.ts).
      const [{ openMetricsListener }, { createPublicServer }, { createMetrics }] =
        await Promise.all([
          import('../../http/metrics.ts'),
          import('../../http/server.ts'),
          import('../../metrics.ts'),
        ]);
      const ctx = createContext();
      const stopping = untilSignal(ctx.logger);
      const pool = createPool(await ctx.databaseUrl(), ctx.logger, {
        applicationName: 'mailer-serve',
        statementTimeoutMs: ctx.config.httpDbTimeoutMs,
      });
      // The browser console on its own listener (CONSOLE_PORT), when configured; off otherwise,
      // and then neither it nor the AWS SDK is loaded.
      const consoleDeps: ConsoleDeps = {
        pool,
        config: ctx.config,
        logger: ctx.logger,
        ses: undefined,
      };
      const consoleListener =
        ctx.config.console.port === undefined
          ? undefined
          : await (await import('../../console/app.ts')).openConsoleListener(consoleDeps);
      // The console's previews of SES templates and its test sends need SES. Connecting may wait
      // for credentials, so it runs beside the listeners; until it succeeds (or when it fails,
      // logged once) those two say SES is not available, and everything else works.
      let ses: SesConnection | undefined;
      let stopped = false;
      if (consoleListener) {
        const { connectSes } = await import('../../ses/connect.ts');
        void connectSes(ctx.config, ctx.logger).then(
          async (connection) => {
            if (stopped) return connection.close();
            ses = connection;
            consoleDeps.ses = connection.client;
          },
          (error: unknown) =>
            ctx.logger.warn(
              { err: error },
              'console: no SES connection; previews of SES templates and test sends are off',
            ),
        );
      }
      const server = await createPublicServer({ pool, config: ctx.config, logger: ctx.logger });
      let metrics: Awaited<ReturnType<typeof openMetricsListener>>;
      try {
        metrics = await openMetricsListener(createMetrics(pool), {
          ...ctx.config.metrics,
          logger: ctx.logger,
        });
        const url = await server.listen(options.port ?? ctx.config.port, options.host);
        ctx.logger.info({ url, publicUrl: ctx.config.publicUrl }, 'HTTP server listening');
      } catch (error) {
        await pool.end();
        throw error;
      }
      await stopping;
      await consoleListener?.close();
      stopped = true;
      await ses?.close();
      await Promise.all([server.close(), metrics.close()]);
      await pool.end();
      ctx.logger.info('HTTP server stopped');
    });
}
