// The console's doors without a browser (app.inject): sessions, cookies, CSRF, the login rate
// limit, roles, the single-sign-on proxy and the headers. test/console/console.browser.test.ts
// drives the same app in Chromium.
import { createHash } from 'node:crypto';
import test from 'ava';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.ts';
import { createConsoleApp } from '../../src/console/app.ts';
import { SESSION_COOKIE } from '../../src/console/auth.ts';
import { hashPassword } from '../../src/console/passwords.ts';
import { createSession } from '../../src/console/sessions.ts';
import { createLogger } from '../../src/logger.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createSendingCampaign } from '../helpers/factories.ts';

const db = databaseForFile();
const logger = createLogger({ level: 'silent', pretty: false });
const SECRET = 'a-proxy-secret-of-at-least-32-characters';

function app(env: Record<string, string> = {}): FastifyInstance {
  const config = loadConfig({ DATABASE_URL: db.url, CONSOLE_PORT: '0', ...env });
  return createConsoleApp({ pool: db.pool, config, logger, ses: undefined });
}

test.serial.before(async () => {
  const hash = await hashPassword('operator password 1');
  await db.pool.query(
    `select console_user_add('olivia', 'operator', true, $1),
            console_user_add('victor', 'viewer', false, $1),
            console_user_add('sso.sam', 'operator', false, null)`,
    [hash],
  );
});

async function sessionCookie(username: string): Promise<{ cookie: string; csrf: string }> {
  const started = await createSession(db.pool, username);
  if (!started) throw new Error('no session');
  return { cookie: `${SESSION_COOKIE}=${started.token}`, csrf: started.session.csrfToken };
}

async function loginForm(console: FastifyInstance) {
  const page = await console.inject({ method: 'GET', url: '/login' });
  const cookie = page.cookies.find((c) => c.name === 'mailer_console_login');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1];
  if (!cookie || !csrf) throw new Error('no login form token');
  return { cookie: `${cookie.name}=${cookie.value}`, csrf };
}

async function actions(action: string) {
  const { rows } = await db.pool.query(
    'select actor, details from operator_actions where action = $1 order by action_id',
    [action],
  );
  return rows;
}

test('a page without a session redirects to the login page, which sets strict headers', async (t) => {
  const console = app();
  const redirect = await console.inject({ method: 'GET', url: '/campaigns?x=1' });
  t.is(redirect.statusCode, 303);
  t.is(redirect.headers.location, '/login?next=%2Fcampaigns%3Fx%3D1');
  const login = await console.inject({ method: 'GET', url: '/login' });
  t.is(login.statusCode, 200);
  t.is(
    login.headers['content-security-policy'],
    "default-src 'self';script-src 'self';style-src 'self';img-src 'self' data:;" +
      "connect-src 'self';font-src 'self';object-src 'none';base-uri 'none';" +
      "frame-ancestors 'none';form-action 'self'",
  );
  t.is(login.headers['x-frame-options'], 'DENY');
  t.is(login.headers['x-content-type-options'], 'nosniff');
  t.notRegex(login.body, /<script>|\sstyle=|\son[a-z]+=/i, 'no inline script or style');
  const css = await console.inject({ method: 'GET', url: '/assets/console.css' });
  t.is(css.statusCode, 200);
  t.regex(String(css.headers['content-type']), /^text\/css/);
  t.is((await console.inject({ method: 'GET', url: '/assets/..%2Fapp.ts' })).statusCode, 404);
  const live = await console.inject({
    method: 'GET',
    url: '/campaigns/rows',
    headers: { 'x-console-live': '1' },
  });
  t.is(live.statusCode, 401, 'a live update without a session is refused, not redirected');
  await console.close();
});

test('login: a wrong password is refused and recorded; the right one starts a session', async (t) => {
  const console = app();
  const form = await loginForm(console);
  const wrong = await console.inject({
    method: 'POST',
    url: '/login',
    // From a proxy on this host: the client's address is the forwarded one.
    headers: { cookie: form.cookie, 'x-forwarded-for': '203.0.113.9' },
    payload: { _csrf: form.csrf, username: 'olivia', password: 'nope', next: '/audit' },
  });
  t.is(wrong.statusCode, 401);
  t.regex(wrong.body, /Wrong username or password/);
  t.like(
    (await actions('console_login_failed')).find((a) => a.details.ip === '203.0.113.9'),
    { actor: 'console', details: { username: 'olivia' } },
  );

  const form2 = await loginForm(console);
  const right = await console.inject({
    method: 'POST',
    url: '/login',
    headers: { cookie: form2.cookie },
    payload: {
      _csrf: form2.csrf,
      username: 'Olivia',
      password: 'operator password 1',
      next: '/audit',
    },
  });
  t.is(right.statusCode, 303);
  t.is(right.headers.location, '/audit');
  const cookie = right.cookies.find((c) => c.name === SESSION_COOKIE);
  t.truthy(cookie);
  t.true(cookie?.httpOnly);
  t.is(cookie?.sameSite, 'Strict');
  t.falsy(cookie?.secure, 'not Secure over http');
  const sid = createHash('sha256')
    .update(cookie?.value ?? '')
    .digest('hex');
  const { rows } = await db.pool.query(
    `select username, expires_at > now() + interval '11 hours' as long from console_sessions
      where session_id = $1`,
    [sid],
  );
  t.deepEqual(rows, [{ username: 'olivia', long: true }], 'only the token hash is stored');
  t.like(
    (await actions('console_login')).findLast((a) => a.actor === 'console:olivia'),
    {
      details: { via: 'password' },
    },
  );
  const audit = await console.inject({
    method: 'GET',
    url: '/audit',
    headers: { cookie: `${SESSION_COOKIE}=${cookie?.value}` },
  });
  t.is(audit.statusCode, 200);
  t.regex(audit.body, /console_login_failed/);
  await console.close();
});

test('the session cookie is Secure when PUBLIC_URL is https; a foreign next is ignored', async (t) => {
  const console = app({ PUBLIC_URL: 'https://mailer.example.com' });
  const form = await loginForm(console);
  t.true(form.cookie.length > 0);
  const right = await console.inject({
    method: 'POST',
    url: '/login',
    headers: { cookie: form.cookie },
    payload: {
      _csrf: form.csrf,
      username: 'olivia',
      password: 'operator password 1',
      next: '//evil.example/',
    },
  });
  t.is(right.statusCode, 303);
  t.is(right.headers.location, '/campaigns');
  t.true(right.cookies.find((c) => c.name === SESSION_COOKIE)?.secure);
  t.regex(String(right.headers['strict-transport-security']), /max-age=/);
  await console.close();
});

test('a login POST without the login form token is refused', async (t) => {
  const console = app();
  const response = await console.inject({
    method: 'POST',
    url: '/login',
    payload: { username: 'olivia', password: 'operator password 1' },
  });
  t.is(response.statusCode, 403);
  t.falsy(response.cookies.find((c) => c.name === SESSION_COOKIE));
  await console.close();
});

test('login attempts are limited to 5 a minute per username', async (t) => {
  const console = app();
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) {
    const form = await loginForm(console);
    const response = await console.inject({
      method: 'POST',
      url: '/login',
      headers: { cookie: form.cookie },
      remoteAddress: `10.0.0.${i + 1}`,
      payload: { _csrf: form.csrf, username: 'victor', password: `guess ${i}` },
    });
    statuses.push(response.statusCode);
    if (response.statusCode === 429) t.truthy(response.headers['retry-after']);
  }
  t.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429]);
  await console.close();
});

test('every POST needs the session CSRF token; logout deletes the session', async (t) => {
  const console = app();
  const { cookie, csrf } = await sessionCookie('olivia');
  const missing = await console.inject({ method: 'POST', url: '/logout', headers: { cookie } });
  t.is(missing.statusCode, 403);
  t.regex(missing.body, /CSRF/);
  const wrong = await console.inject({
    method: 'POST',
    url: '/logout',
    headers: { cookie },
    payload: { _csrf: `${csrf}x` },
  });
  t.is(wrong.statusCode, 403);
  const out = await console.inject({
    method: 'POST',
    url: '/logout',
    headers: { cookie },
    payload: { _csrf: csrf },
  });
  t.is(out.statusCode, 303);
  t.is(out.headers.location, '/login');
  const token = cookie.split('=')[1] ?? '';
  const { rowCount } = await db.pool.query('select 1 from console_sessions where session_id = $1', [
    createHash('sha256').update(token).digest('hex'),
  ]);
  t.is(rowCount, 0);
  t.is(
    (await console.inject({ method: 'GET', url: '/campaigns', headers: { cookie } })).statusCode,
    303,
  );
  t.true((await actions('console_logout')).some((a) => a.actor === 'console:olivia'));
  await console.close();
});

test('an expired session is refused', async (t) => {
  const console = app();
  const { cookie } = await sessionCookie('olivia');
  const token = cookie.split('=')[1] ?? '';
  await db.pool.query(
    `update console_sessions set created_at = now() - interval '2 days',
            expires_at = now() - interval '1 second'
      where session_id = $1`,
    [createHash('sha256').update(token).digest('hex')],
  );
  const response = await console.inject({ method: 'GET', url: '/campaigns', headers: { cookie } });
  t.is(response.statusCode, 303);
  await console.close();
});

test('a viewer is refused pause with 403; an operator pauses, recorded under their name', async (t) => {
  const console = app();
  const campaignId = await createSendingCampaign(db.pool);
  const viewer = await sessionCookie('victor');
  const page = await console.inject({
    method: 'GET',
    url: '/campaigns',
    headers: { cookie: viewer.cookie },
  });
  t.is(page.statusCode, 200);
  t.notRegex(page.body, /\/pause"/, 'a viewer gets no pause button');
  const refused = await console.inject({
    method: 'POST',
    url: `/campaigns/${campaignId}/pause`,
    headers: { cookie: viewer.cookie },
    payload: { _csrf: viewer.csrf },
  });
  t.is(refused.statusCode, 403);
  t.regex(refused.body, /Only an operator may do this/);

  const operator = await sessionCookie('olivia');
  const paused = await console.inject({
    method: 'POST',
    url: `/campaigns/${campaignId}/pause`,
    headers: { cookie: operator.cookie },
    payload: { _csrf: operator.csrf },
  });
  t.is(paused.statusCode, 303);
  const { rows } = await db.pool.query(
    'select status, pause_reason from campaigns where campaign_id = $1',
    [campaignId],
  );
  t.deepEqual(rows[0], { status: 'paused', pause_reason: 'paused by operator console:olivia' });
  const recorded = await db.pool.query(
    `select actor, db_user from operator_actions where action = 'pause_campaign' and campaign_id = $1`,
    [campaignId],
  );
  t.is(recorded.rows[0]?.actor, 'console:olivia');
  const login = await db.pool.query('select session_user::text as name');
  t.is(recorded.rows[0]?.db_user, login.rows[0]?.name, 'db_user stays the database login');
  const again = await console.inject({
    method: 'POST',
    url: `/campaigns/${campaignId}/resume`,
    headers: { cookie: viewer.cookie },
    payload: { _csrf: viewer.csrf },
  });
  t.is(again.statusCode, 403);
  await console.close();
});

test('with CONSOLE_QUEUE_APPROVAL a second person approves the queueing', async (t) => {
  const console = app({ CONSOLE_QUEUE_APPROVAL: 'true' });
  const campaignId = await createSendingCampaign(db.pool, 'draft');
  await db.pool.query(`select console_user_add('quinn', 'viewer', true, null)`);
  const olivia = await sessionCookie('olivia');
  const quinn = await sessionCookie('quinn');
  const post = (who: { cookie: string; csrf: string }, action: string) =>
    console.inject({
      method: 'POST',
      url: `/campaigns/${campaignId}/${action}`,
      headers: { cookie: who.cookie },
      payload: { _csrf: who.csrf },
    });
  const asked = await post(olivia, 'queue');
  t.is(asked.headers.location, '/campaigns?done=requested');
  const status = async () =>
    (await db.pool.query('select status from campaigns where campaign_id = $1', [campaignId]))
      .rows[0]?.status;
  t.is(await status(), 'draft');
  const self = await post(olivia, 'approve');
  t.is(self.statusCode, 409);
  t.regex(self.body, /another person must approve/);
  t.is(await status(), 'draft');
  const approved = await post(quinn, 'approve');
  t.is(approved.headers.location, '/campaigns?done=approved');
  t.not(await status(), 'draft');
  const { rows } = await db.pool.query(
    `select action, actor from operator_actions where campaign_id = $1 order by action_id`,
    [campaignId],
  );
  t.deepEqual(rows, [
    { action: 'queue_requested', actor: 'console:olivia' },
    { action: 'queue_approved', actor: 'console:quinn' },
    { action: 'queue_campaign', actor: 'console:quinn' },
  ]);
  await console.close();
});

test('a trusted proxy names the user with the shared secret; a wrong secret is ignored', async (t) => {
  const console = app({
    CONSOLE_TRUSTED_USER_HEADER: 'X-Forwarded-User',
    CONSOLE_PROXY_SECRET: SECRET,
  });
  const vouched = await console.inject({
    method: 'GET',
    url: '/campaigns',
    headers: { 'x-forwarded-user': 'sso.sam', 'x-mailer-proxy-secret': SECRET },
  });
  t.is(vouched.statusCode, 200);
  t.regex(vouched.body, /sso\.sam \(operator\)/);
  t.true(vouched.cookies.some((c) => c.name === SESSION_COOKIE));
  const forged = await console.inject({
    method: 'GET',
    url: '/campaigns',
    headers: { 'x-forwarded-user': 'sso.sam', 'x-mailer-proxy-secret': `${SECRET}!` },
  });
  t.is(forged.statusCode, 303, 'a wrong secret is no login');
  const stranger = await console.inject({
    method: 'GET',
    url: '/campaigns',
    headers: { 'x-forwarded-user': 'mallory', 'x-mailer-proxy-secret': SECRET },
  });
  t.is(stranger.statusCode, 403);
  t.like(
    (await actions('console_login')).findLast((a) => a.actor === 'console:sso.sam'),
    {
      details: { via: 'proxy' },
    },
  );
  await console.close();
});

test('the audit log filters by who, what and when, newest first, a page at a time', async (t) => {
  const console = app();
  await db.pool.query(
    `insert into operator_actions (action, actor, note, created_at)
     select 'suppress', 'console:pat', 'note ' || g, timestamptz '2030-01-01 12:00Z' + g * interval '1 hour'
       from generate_series(1, 60) g`,
  );
  const { cookie } = await sessionCookie('olivia');
  const first = await console.inject({
    method: 'GET',
    url: '/audit?actor=console:pat&action=suppress&from=2030-01-01&to=2030-01-04',
    headers: { cookie },
  });
  t.is(first.statusCode, 200);
  const notes = [...first.body.matchAll(/<td>note (\d+)<\/td>/g)].map((m) => Number(m[1]));
  t.is(notes.length, 50);
  t.is(notes[0], 60, 'newest first');
  const next = /href="(\/audit\?[^"]+before=\d+)"/.exec(first.body)?.[1]?.replaceAll('&amp;', '&');
  t.truthy(next);
  const second = await console.inject({ method: 'GET', url: next ?? '', headers: { cookie } });
  const more = [...second.body.matchAll(/<td>note (\d+)<\/td>/g)].map((m) => Number(m[1]));
  t.deepEqual(more, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
  const day = await console.inject({
    method: 'GET',
    url: '/audit?actor=console:pat&from=2030-01-02&to=2030-01-02',
    headers: { cookie },
  });
  const inDay = [...day.body.matchAll(/<td>note (\d+)<\/td>/g)].map((m) => Number(m[1]));
  t.deepEqual(
    inDay,
    Array.from({ length: 24 }, (_, i) => 35 - i),
    'one UTC day: 12:00Z+12h .. +35h',
  );
  await console.close();
});
