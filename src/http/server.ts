// The HTTP side of mailer (`mailer serve`), on node:http:
//   POST /webhooks/ses             SNS deliveries of SES events (ses-webhook.ts)
//   GET|POST /unsubscribe/:token   List-Unsubscribe pages and RFC 8058 one-click (unsubscribe.ts)
//   GET /healthz                   200 while the database answers (health.ts)
// /metrics is not here: it has a listener of its own (metrics.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpDeps } from './deps.ts';
import { createHealthHandler } from './health.ts';
import { methodNotAllowed, sendText } from './io.ts';
import { createSesWebhook } from './ses-webhook.ts';
import { createUnsubscribeHandlers } from './unsubscribe.ts';

export type { HttpDeps } from './deps.ts';

const UNSUBSCRIBE_PATH = /^\/unsubscribe\/([^/]*)\/?$/;

export async function createHttpServer(deps: HttpDeps): Promise<Server> {
  const webhook = await createSesWebhook(deps);
  const health = createHealthHandler(deps.pool);
  const unsubscribe = createUnsubscribeHandlers(deps);

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/webhooks/ses') {
      return method === 'POST' ? webhook(req, res) : methodNotAllowed(res, ['POST']);
    }
    if (path === '/healthz') {
      return method === 'GET' || method === 'HEAD'
        ? health(req, res)
        : methodNotAllowed(res, ['GET', 'HEAD']);
    }
    const match = UNSUBSCRIBE_PATH.exec(path);
    if (match) {
      const token = match[1] ?? '';
      if (method === 'GET' || method === 'HEAD') return unsubscribe.show(req, res, token);
      if (method === 'POST') return unsubscribe.unsubscribe(req, res, token);
      return methodNotAllowed(res, ['GET', 'HEAD', 'POST']);
    }
    sendText(res, 404, 'not found');
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      // A client that went away mid-request: nobody is left to answer.
      if (res.headersSent || res.destroyed) return void res.destroy();
      deps.logger.error({ err: error, method: req.method, url: req.url }, 'HTTP request failed');
      sendText(res, 500, 'internal error');
    });
  });
  // Longer than a load balancer's idle timeout, so it never reuses a socket we are closing.
  server.keepAliveTimeout = 65_000;
  return server;
}

/** Listens and returns the base URL (port 0 picks a free port). */
export function listen(server: Server, port: number, host?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve(
        `http://${shown === '[::]' || shown === '0.0.0.0' ? 'localhost' : shown}:${address.port}`,
      );
    });
  });
}

/**
 * Stops accepting connections, lets requests in flight finish (up to graceMs), then cuts whatever
 * is left. Idle keep-alive sockets are closed at once so they do not hold the shutdown.
 */
export function closeHttpServer(server: Server, graceMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    // A keep-alive socket whose request finishes during the shutdown becomes idle; without this
    // sweep it would hold the shutdown until the grace period ends.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close((error) => {
      clearTimeout(force);
      clearInterval(sweep);
      if (error && (error as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING') {
        reject(error);
      } else {
        resolve();
      }
    });
  });
}
