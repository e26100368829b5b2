// The public HTTP side of mailer (`mailer serve`, `mailer start`), a fastify app:
//   POST /webhooks/ses             SNS deliveries of SES events (ses-webhook.ts)
//   GET|POST /unsubscribe/:token   List-Unsubscribe pages and RFC 8058 one-click (unsubscribe.ts)
//   GET /healthz                   200 while the database answers (health.ts)
// /metrics is not here: it has a listener of its own (metrics.ts). What the apps share (body
// reading, 404/405/500 answers, listening and closing) is in app.ts.
import { createApp, type HttpListener, listenerFor } from './app.ts';
import type { HttpDeps } from './deps.ts';
import { registerHealth } from './health.ts';
import { registerSesWebhook } from './ses-webhook.ts';
import { createUnsubscribeRoutes } from './unsubscribe.ts';

export type { HttpListener } from './app.ts';
export type { HttpDeps } from './deps.ts';

/** The public server, not yet listening: `listen(port, host)`, then `close()` on shutdown. */
export async function createPublicServer(deps: HttpDeps): Promise<HttpListener> {
  const unsubscribe = createUnsubscribeRoutes(deps);
  const app = createApp(deps.logger, { badUrl: unsubscribe.badUrl });
  await registerSesWebhook(app, deps);
  unsubscribe.register(app);
  registerHealth(app, deps.pool);
  return listenerFor(app);
}
