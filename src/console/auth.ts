// Who is asking, and may they: sessions (HttpOnly, SameSite=Strict cookies, Secure when
// PUBLIC_URL is https), the CSRF token checked on every POST, login with a rate limit, logout,
// an optional trusted single-sign-on proxy, and the helpers the page modules use: requireOperator
// and requireQueueRight (preHandler hooks) and withActor (a transaction whose operator_actions
// rows name the console user).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { ConsoleDeps, ConsoleUser } from './context.ts';
import { html } from './html.ts';
import { page } from './layout.ts';
import { loginPage } from './login-page.ts';
import { dummyHash, verifyPassword } from './passwords.ts';
import { AttemptLimiter } from './rate-limit.ts';
import {
  createSession,
  deleteSession,
  findLoginUser,
  loadSession,
  type Session,
} from './sessions.ts';

export const SESSION_COOKIE = 'mailer_console';
/** The login form's double-submit token (there is no session yet to hold one). */
const LOGIN_COOKIE = 'mailer_console_login';
/** Where a trusted proxy puts CONSOLE_PROXY_SECRET. */
export const PROXY_SECRET_HEADER = 'x-mailer-proxy-secret';
/** console.js marks its live-update requests with this header: they do not extend a session. */
const LIVE_HEADER = 'x-console-live';
export const LOGIN_ATTEMPTS_PER_MINUTE = 5;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without a session (login, assets). */
    public?: boolean;
  }
}

export function actorName(user: ConsoleUser): string {
  return `console:${user.username}`;
}

async function withActorName<T>(
  pool: pg.Pool,
  actor: string,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    // Local to this transaction: the pooled connection forgets it at commit or rollback.
    await client.query(`select set_config('mailer.actor', $1, true)`, [actor]);
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Runs fn in a transaction in which every operator_actions row names this console user. */
export function withActor<T>(
  pool: pg.Pool,
  user: ConsoleUser,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return withActorName(pool, actorName(user), fn);
}

async function record(client: pg.PoolClient, action: string, details: object): Promise<void> {
  await client.query('select public.record_operator_action($1, null, null, null, null, $2)', [
    action,
    JSON.stringify(details),
  ]);
}

function refuse(request: FastifyRequest, reply: FastifyReply, message: string): FastifyReply {
  reply.code(403).type('text/html; charset=utf-8');
  if (!request.user) return reply.send(`<!doctype html><title>Forbidden</title><p>${message}</p>`);
  return reply.send(
    page({
      title: 'Not allowed',
      user: request.user,
      csrfToken: request.csrfToken ?? '',
      body: html`<p class="error" role="alert">${message}</p>
<p><a href="/campaigns">Back to the campaigns</a></p>`,
    }).text,
  );
}

/** preHandler: operators only (pause, resume, suppress, resolve, retry). */
export async function requireOperator(request: FastifyRequest, reply: FastifyReply) {
  if (request.user?.role !== 'operator') {
    return refuse(
      request,
      reply,
      `Only an operator may do this; ${request.user?.username ?? 'you'} is a ${request.user?.role ?? 'visitor'}.`,
    );
  }
}

/** preHandler: users with the right to start (queue) campaigns. */
export async function requireQueueRight(request: FastifyRequest, reply: FastifyReply) {
  if (!request.user?.canQueue) {
    return refuse(
      request,
      reply,
      `${request.user?.username ?? 'You'} may not queue campaigns (mailer console user add --can-queue).`,
    );
  }
}

function sameSecret(given: string, expected: string): boolean {
  // Digests have the same length whatever was sent, so the comparison takes the same time.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function formField(body: unknown, name: string): string {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : '';
}

/** A path on this site to return to after login; anything else goes to the campaigns. */
function safeNext(value: string): string {
  return /^\/(?![/\\])[\x21-\x7e]*$/.test(value) && !value.startsWith('/login')
    ? value
    : '/campaigns';
}

export function registerAuth(app: FastifyInstance, deps: ConsoleDeps): void {
  const { pool, config, logger } = deps;
  const limiter = new AttemptLimiter(LOGIN_ATTEMPTS_PER_MINUTE, 60_000);
  const cookie = {
    path: '/',
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: config.publicUrl.startsWith('https:'),
  };
  const { trustedUserHeader, proxySecret } = config.console;

  // The user a trusted proxy vouches for, when it proves itself with the shared secret.
  function proxyUser(request: FastifyRequest): string | undefined {
    if (!trustedUserHeader || !proxySecret) return undefined;
    const secret = request.headers[PROXY_SECRET_HEADER];
    const user = request.headers[trustedUserHeader];
    if (typeof secret !== 'string' || typeof user !== 'string') return undefined;
    if (!sameSecret(secret, proxySecret)) {
      logger.warn({ ip: request.ip }, 'console: a request named a user with a wrong proxy secret');
      return undefined;
    }
    return user.trim().toLowerCase();
  }

  async function startSession(
    reply: FastifyReply,
    username: string,
    details: object,
  ): Promise<Session | undefined> {
    const started = await withActorName(pool, `console:${username}`, async (client) => {
      const created = await createSession(client, username);
      if (created) await record(client, 'console_login', details);
      return created;
    });
    if (!started) return undefined;
    reply.setCookie(SESSION_COOKIE, started.token, cookie);
    return started.session;
  }

  app.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.config.public) return;
    const token = request.cookies[SESSION_COOKIE];
    let session = token
      ? await loadSession(pool, token, request.headers[LIVE_HEADER] === undefined)
      : undefined;
    const vouched = proxyUser(request);
    if (vouched && session?.user.username !== vouched) {
      session = await startSession(reply, vouched, { via: 'proxy', ip: request.ip });
      if (!session) return refuse(request, reply, 'The single-sign-on user is not a console user.');
    }
    if (!session) {
      if (request.method === 'GET' && request.headers[LIVE_HEADER] === undefined) {
        return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
      }
      return reply.code(401).type('text/plain').send('log in first\n');
    }
    request.user = session.user;
    request.csrfToken = session.csrfToken;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      const header = request.headers['x-csrf-token'];
      const given = formField(request.body, '_csrf') || (typeof header === 'string' ? header : '');
      if (!given || !sameSecret(given, session.csrfToken)) {
        return refuse(
          request,
          reply,
          'This form is missing its CSRF token (or it is stale): reload the page and try again.',
        );
      }
    }
  });

  app.get<{ Querystring: { next?: string } }>(
    '/login',
    { config: { public: true } },
    async (request, reply) => {
      const next = safeNext(request.query.next ?? '');
      const token = request.cookies[SESSION_COOKIE];
      if (token && (await loadSession(pool, token, false))) return reply.redirect(next, 303);
      const csrf = randomBytes(24).toString('base64url');
      reply.setCookie(LOGIN_COOKIE, csrf, { ...cookie, path: '/login', maxAge: 3600 });
      return reply.type('text/html; charset=utf-8').send(loginPage({ csrfToken: csrf, next }).text);
    },
  );

  app.post('/login', { config: { public: true } }, async (request, reply) => {
    const username = formField(request.body, 'username').trim().toLowerCase().slice(0, 200);
    const password = formField(request.body, 'password');
    const next = safeNext(formField(request.body, 'next'));
    const expected = request.cookies[LOGIN_COOKIE] ?? '';
    const given = formField(request.body, '_csrf');
    const again = (status: number, error: string) => {
      const csrf = randomBytes(24).toString('base64url');
      reply.setCookie(LOGIN_COOKIE, csrf, { ...cookie, path: '/login', maxAge: 3600 });
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(loginPage({ csrfToken: csrf, next, username, error }).text);
    };
    if (!expected || !given || !sameSecret(given, expected)) {
      return again(403, 'The login form expired or came from elsewhere; please try again.');
    }
    const allowed = limiter.take([`ip:${request.ip}`, `user:${username}`]);
    if (!allowed.allowed) {
      reply.header('retry-after', String(allowed.retryAfterSeconds));
      return again(
        429,
        `Too many login attempts; try again in ${allowed.retryAfterSeconds} seconds.`,
      );
    }
    const user = username ? await findLoginUser(pool, username) : undefined;
    // The same work whether or not the user exists, so timing does not tell.
    const ok = await verifyPassword(password, user?.password_hash ?? (await dummyHash()));
    if (!user?.password_hash || !ok) {
      await withActorName(pool, 'console', (client) =>
        record(client, 'console_login_failed', { username, ip: request.ip }),
      );
      logger.warn({ ip: request.ip }, 'console: failed login');
      return again(401, 'Wrong username or password.');
    }
    await startSession(reply, user.username, { via: 'password', ip: request.ip });
    reply.clearCookie(LOGIN_COOKIE, { ...cookie, path: '/login' });
    return reply.redirect(next, 303);
  });

  app.post('/logout', async (request, reply) => {
    const token = request.cookies[SESSION_COOKIE];
    const user = request.user as ConsoleUser;
    await withActor(pool, user, async (client) => {
      if (token) await deleteSession(client, token);
      await record(client, 'console_logout', { ip: request.ip });
    });
    reply.clearCookie(SESSION_COOKIE, cookie);
    return reply.redirect('/login', 303);
  });
}
