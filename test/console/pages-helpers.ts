// For the tests of the console's pages (campaign, customers, suppressions, jobs, templates): the
// console app itself (src/console/app.ts, with its auth, CSRF and CSP), a viewer and an
// operator with sessions made the way a login makes them (src/console/sessions.ts), and
// requests through app.inject carrying the session cookie and, for a POST, the CSRF token.
import { randomUUID } from 'node:crypto';
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type pg from 'pg';
import { type Config, loadConfig } from '../../src/config.ts';
import { createConsoleApp } from '../../src/console/app.ts';
import { SESSION_COOKIE } from '../../src/console/auth.ts';
import type { ConsoleRole } from '../../src/console/context.ts';
import { createSession } from '../../src/console/sessions.ts';
import { createLogger } from '../../src/logger.ts';
import { createCustomer, createRecipient, createSendingCampaign } from '../helpers/factories.ts';

export interface TestSession {
  username: string;
  cookie: string;
  csrfToken: string;
}

export function pagesConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    PUBLIC_URL: 'http://mailer.test',
    SES_ENDPOINT: 'http://127.0.0.1:9',
    MAIL_FROM: 'news@example.com',
    ...env,
  });
}

export function pagesApp(
  pool: pg.Pool,
  options: { ses?: SESv2Client; config?: Config } = {},
): FastifyInstance {
  return createConsoleApp({
    pool,
    config: options.config ?? pagesConfig(),
    logger: createLogger({ level: 'warn', pretty: false }),
    ses: options.ses,
  });
}

let counter = 0;

/** A console user with this role and a session of theirs (as after a login). */
export async function loginAs(pool: pg.Pool, role: ConsoleRole): Promise<TestSession> {
  counter++;
  const username = `${role}${counter}-${process.pid}`;
  await pool.query(
    `insert into public.console_users (username, role, can_queue) values ($1, $2, false)`,
    [username, role],
  );
  const started = await createSession(pool, username);
  if (!started) throw new Error(`no session for ${username}`);
  return {
    username,
    cookie: `${SESSION_COOKIE}=${started.token}`,
    csrfToken: started.session.csrfToken,
  };
}

export function getPage(
  app: FastifyInstance,
  session: TestSession,
  url: string,
): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers: { cookie: session.cookie } });
}

/** A form POST as the browser sends it, with the session's CSRF token unless `csrf` is false. */
export function postForm(
  app: FastifyInstance,
  session: TestSession,
  url: string,
  fields: Record<string, string>,
  options: { csrf?: boolean } = {},
): Promise<LightMyRequestResponse> {
  const form = new URLSearchParams(fields);
  if (options.csrf !== false) form.set('_csrf', session.csrfToken);
  return app.inject({
    method: 'POST',
    url,
    headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: form.toString(),
  });
}

/**
 * A customer named `name` whose campaign bounced: the recipient, the SES bounce event, and the
 * suppression SES's bounce put on the address, with its reason.
 */
export async function bouncedCustomer(pool: pg.Pool, name: string) {
  const customer = await createCustomer(pool, {
    email: `bounced-${randomUUID()}@example.com`,
    name,
  });
  const campaignId = await createSendingCampaign(pool, 'done');
  await createRecipient(pool, campaignId, 'bounced', {
    customer,
    messageId: `ses-${randomUUID()}`,
  });
  await pool.query(
    `insert into email_events_op (event_type, email, campaign_id, customer_id, payload)
     values ('bounce', $1, $2, $3, $4)`,
    [
      customer.email,
      campaignId,
      customer.customer_id,
      {
        bounce: {
          bounceType: 'Permanent',
          bounceSubType: 'General',
          bouncedRecipients: [{ diagnosticCode: 'smtp; 550 5.1.1 user unknown' }],
        },
      },
    ],
  );
  await pool.query(
    `insert into suppression_list (email, reason, source) values ($1, 'bounce_hard', 'ses')`,
    [customer.email],
  );
  return { customer, campaignId };
}
