// GET /metrics in Prometheus text format, on a listener of its own: never on the public one with
// the webhook and the unsubscribe pages, whose port the internet reaches. The metrics name
// campaigns and count their recipients, and a scrape queries the database. A listener bound to
// the loopback interface by default (METRICS_HOST) rather than a token on the public one: nothing
// to distribute or rotate, Prometheus scrapes hosts over the private network anyway, and the
// public surface stays two endpoints. `serve` and `start` open it on METRICS_PORT, `worker` (its
// own counters) on WORKER_METRICS_PORT; unset, there is none.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { methodNotAllowed, sendText } from './io.ts';
import { closeHttpServer, listen } from './server.ts';

export function createMetricsHandler(metrics: Metrics) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return methodNotAllowed(res, ['GET', 'HEAD']);
    const body = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

export function createMetricsServer(metrics: Metrics, logger: Logger): Server {
  const handler = createMetricsHandler(metrics);
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/metrics') return sendText(res, 404, 'not found');
    handler(req, res).catch((error: unknown) => {
      logger.warn({ err: error }, 'metrics scrape failed');
      sendText(res, 500, 'metrics unavailable');
    });
  });
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
  const server = createMetricsServer(metrics, options.logger);
  const url = await listen(server, options.port, options.host);
  options.logger.info({ url: `${url}/metrics` }, 'metrics listening');
  return { url, close: () => closeHttpServer(server) };
}
