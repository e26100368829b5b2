// What every console route module gets, and what it may rely on. The console is a fastify app on
// its own listener (CONSOLE_PORT, 127.0.0.1 by default), never beside the public webhook.
//
// A route module exports `register(app, deps)` and adds its routes to `app`. Before any route
// runs, the app's hooks (src/console/auth.ts) have:
// - answered 401/redirect to /login unless the request has a session (or a trusted proxy header);
// - set `request.user` (the console user) and `request.csrfToken` (to put in every form);
// - refused with 403 any POST without the session's CSRF token.
// A route that changes anything checks the role it needs with `requireOperator`/`requireQueueRight`
// (src/console/auth.ts) and records the action through SQL functions that write operator_actions
// under the console user's name (`withActor`, src/console/auth.ts).
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type {} from 'fastify';
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';

/** viewer: support, reads everything; operator: pause, resume, suppress, resolve, retry. */
export type ConsoleRole = 'viewer' | 'operator';

export interface ConsoleUser {
  username: string;
  role: ConsoleRole;
  /** The separate right to start a campaign (queue). */
  canQueue: boolean;
}

export interface ConsoleDeps {
  pool: pg.Pool;
  config: Config;
  logger: Logger;
  /** For template previews and test sends; undefined when SES is not configured for this process. */
  ses: SESv2Client | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    user?: ConsoleUser;
    csrfToken?: string;
  }
}
