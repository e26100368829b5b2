// Where fastify alone would answer differently from mailer's own answers (src/http/app.ts): paths
// that are not valid percent-encoding, bodies over a route's limit, Content-Types, trailing
// slashes. None of these requests reaches the database, so it is down here.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { deadPool, type RunningServer, startServer } from './helpers.ts';

const pool = deadPool();
let server: RunningServer;
test.before(async () => {
  server = await startServer(pool);
});
test.after.always(async () => {
  await server?.close();
  await pool.end();
});

test('a link whose path is not valid percent-encoding gets the bad-link page; other paths 404', async (t) => {
  for (const method of ['GET', 'POST']) {
    const response = await fetch(`${server.url}/unsubscribe/%E0%A4%A`, { method });
    t.is(response.status, 400, method);
    t.regex(response.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
    t.is(response.headers.get('x-frame-options'), 'DENY');
    t.regex(await response.text(), /This unsubscribe link is not valid/);
  }
  const other = await fetch(`${server.url}/healthz%ZZ`);
  t.is(other.status, 404);
  t.is(await other.text(), 'not found\n');
});

test('an unsubscribe POST over 16 KiB gets the 413 page', async (t) => {
  const response = await fetch(`${server.url}/unsubscribe/${randomUUID()}`, {
    method: 'POST',
    body: `List-Unsubscribe=One-Click&pad=${'x'.repeat(17 * 1024)}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.is(response.status, 413);
  t.regex(await response.text(), /Request too large/);
});

test('a one-click POST with any Content-Type, or none, reaches the link; not a media type is 415', async (t) => {
  const token = randomUUID();
  const post = (headers: Record<string, string>) =>
    fetch(`${server.url}/unsubscribe/${token}/`, {
      method: 'POST',
      body: new TextEncoder().encode('List-Unsubscribe=One-Click'),
      headers,
    });
  // The database is down: 503 proves the request got as far as unsubscribing.
  for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'application/json']) {
    t.is((await post({ 'content-type': type })).status, 503, type);
  }
  t.is((await post({})).status, 503, 'no Content-Type');
  // fastify refuses a header that is not a media type before any route sees it: never a 5xx.
  t.is((await post({ 'content-type': 'not a media type' })).status, 415);
});
