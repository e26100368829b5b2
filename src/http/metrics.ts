// GET /metrics in Prometheus text format, on a listener of its own: never on the public one with
// the webhook and the unsubscribe pages, whose port the internet reaches. The metrics name
// campaigns and count their recipients, and a scrape queries the database. A listener bound to
// the loopback interface by default (METRICS_HOST) rather than a token on the public one: nothing
// to distribute or rotate, Prometheus scrapes hosts over the private network anyway, and the
// public surface stays two endpoints. `serve` and `start` open it on METRICS_PORT, `worker` (its
// own counters) on WORKER_METRICS_PORT; unset, there is none.
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { allowOnly, createApp, type HttpListener, listenerFor } from './app.ts';
import { sendText } from './io.ts';

export function createMetricsServer(metrics: Metrics, logger: Logger): HttpListener {
  const app = createApp(logger);
  // GET also answers HEAD (fastify's exposeHeadRoutes), without the body.
  app.get('/metrics', async (_request, reply) => {
    let body: string;
    try {
      body = await metrics.registry.metrics();
    } catch (error) {
      logger.warn({ err: error }, 'metrics scrape failed');
      return sendText(reply, 500, 'metrics unavailable');
    }
    return reply.code(200).header('content-type', metrics.registry.contentType).send(body);
  });
  allowOnly(app, '/metrics', ['GET', 'HEAD']);
  return listenerFor(app);
}

export interface MetricsListener {
  /** Base URL of the listener; undefined when no port is configured. */
  url: string | undefined;
  close(): Promise<void>;
}

/** Opens the metrics listener on `port` (0: any free port) at `host`; nothing when port is unset. */
export async function openMetricsListener(
  metrics: Metrics,
  options: { port: number | undefined; host: string; logger: Logger },
): Promise<MetricsListener> {
  if (options.port === undefined) return { url: undefined, close: async () => undefined };
  const listener = createMetricsServer(metrics, options.logger);
  const url = await listener.listen(options.port, options.host);
  options.logger.info({ url: `${url}/metrics` }, 'metrics listening');
  return { url, close: () => listener.close() };
}
