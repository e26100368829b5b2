// What mailer's fastify apps share (the public one in server.ts, /metrics in metrics.ts): the
// options, a body reader, the answers nobody routed, and listening and closing. fastify's own
// logger stays off: it would give every request a child logger and two log lines, and the
// webhook's target is 2,000 requests/s; handlers log what matters through our pino logger.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type HTTPMethods,
} from 'fastify';
import type { Logger } from '../logger.ts';
import { PayloadTooLargeError, readBody, sendText } from './io.ts';

export interface AppOptions {
  /** Answers a request whose path is not valid percent-encoding; false leaves it to a 404. */
  badUrl?: (request: FastifyRequest, reply: FastifyReply) => boolean;
}

export function createApp(logger: Logger, options: AppOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: false,
    // Longer than a load balancer's idle timeout, so it never reuses a socket we are closing.
    keepAliveTimeout: 65_000,
    // node's own default, which fastify turns off: a request that never completes is cut.
    requestTimeout: 300_000,
    // A request that reaches us while we close is served (with Connection: close), as before
    // the move: SNS and mail clients get their answer rather than a 503 to retry.
    return503OnClosing: false,
    // An unsubscribe token of any length gets its page (400), not a 404 from the router.
    routerOptions: { maxParamLength: 16 * 1024 },
    // A path that is not valid percent-encoding (fastify would answer its own JSON 400): the
    // route it looks like answers (an unsubscribe link's 400 page), else 404 as for any path we
    // do not serve.
    frameworkErrors: (error, request, reply) => {
      if (error.code !== 'FST_ERR_BAD_URL') return answerError(error, request, reply);
      if (options.badUrl?.(request, reply)) return;
      return sendText(reply, 404, 'not found');
    },
  });

  // Every body is read as text whatever its type (SNS posts JSON as text/plain; mail clients post
  // forms, urlencoded or multipart), capped at the route's bodyLimit by readBody, which drains
  // what is over the limit so the client can read its 413.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    readBody(payload, request.routeOptions.bodyLimit).then(
      (body) => done(null, body),
      (error: Error) => done(error, undefined),
    );
  });

  function answerError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    // A client that went away mid-request: nobody is left to answer.
    if (reply.raw.headersSent || reply.raw.destroyed || request.socket.destroyed) {
      reply.hijack();
      reply.raw.destroy();
      return;
    }
    if (error instanceof PayloadTooLargeError) return sendText(reply, 413, 'payload too large');
    // fastify's own refusals of a request (a Content-Type that is not one): the client's fault.
    const status = error.statusCode ?? 500;
    if (error.code?.startsWith('FST_') && status >= 400 && status < 500) {
      return sendText(reply, status, error.message);
    }
    logger.error({ err: error, method: request.method, url: request.url }, 'HTTP request failed');
    return sendText(reply, 500, 'internal error');
  }
  app.setErrorHandler(answerError);
  app.setNotFoundHandler((_request, reply) => sendText(reply, 404, 'not found'));
  return app;
}

/** 405 with Allow for every other method on `url` (fastify alone would answer 404). */
export function allowOnly(app: FastifyInstance, url: string, allowed: readonly HTTPMethods[]) {
  const others = app.supportedMethods.filter((m) => !allowed.includes(m as HTTPMethods));
  app.route({
    method: others as HTTPMethods[],
    url,
    handler: (_request, reply) =>
      sendText(reply, 405, 'method not allowed', { allow: allowed.join(', ') }),
  });
}

export interface HttpListener {
  /** The node:http server underneath. */
  server: Server;
  /** Listens on `port` (0: any free port) at `host` (unset: every interface); the base URL. */
  listen(port: number, host?: string): Promise<string>;
  /**
   * Stops accepting connections, lets requests in flight finish (up to graceMs), then cuts
   * whatever is left. Idle keep-alive sockets are closed at once so they do not hold it.
   */
  close(graceMs?: number): Promise<void>;
}

export function listenerFor(app: FastifyInstance): HttpListener {
  const server = app.server;
  return {
    server,
    async listen(port, host) {
      // node's listen rather than fastify's: without a host, fastify listens on localhost only,
      // node (and mailer before fastify) on every interface.
      await app.ready();
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
    },
    async close(graceMs = 10_000) {
      const force = setTimeout(() => server.closeAllConnections(), graceMs);
      // A keep-alive socket whose request finishes during the shutdown becomes idle; without this
      // sweep it would hold the shutdown until the grace period ends.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      try {
        await app.close();
      } finally {
        clearTimeout(force);
        clearInterval(sweep);
      }
    },
  };
}
