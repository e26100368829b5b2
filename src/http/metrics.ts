import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Metrics } from '../metrics.ts';
import { methodNotAllowed, sendText } from './io.ts';

// GET /metrics in Prometheus text format.
export function createMetricsHandler(metrics: Metrics) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return methodNotAllowed(res, ['GET', 'HEAD']);
    const body = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

// A worker process's own /metrics (its counters live in its memory), on WORKER_METRICS_PORT.
export function createMetricsServer(metrics: Metrics): Server {
  const handler = createMetricsHandler(metrics);
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/metrics') return sendText(res, 404, 'not found');
    handler(req, res).catch(() => sendText(res, 500, 'metrics unavailable'));
  });
}
