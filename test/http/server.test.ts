import { randomUUID } from 'node:crypto';
import test from 'ava';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { deadPool, type RunningServer, startServer } from './helpers.ts';

let db: TestDatabase;
let server: RunningServer;
test.before(async () => {
  db = await createTestDatabase();
  server = await startServer(db.pool);
});
test.after.always(async () => {
  await server?.close();
  await db?.drop();
});

test('GET /healthz answers 200 JSON while the database answers', async (t) => {
  const response = await fetch(`${server.url}/healthz`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  t.deepEqual(await response.json(), { status: 'ok', database: 'ok' });
  const head = await fetch(`${server.url}/healthz`, { method: 'HEAD' });
  t.is(head.status, 200);
});

test('GET /healthz answers 503 when the database is down', async (t) => {
  const pool = deadPool();
  const down = await startServer(pool);
  t.teardown(async () => {
    await down.close();
    await pool.end();
  });
  const response = await fetch(`${down.url}/healthz`);
  t.is(response.status, 503);
  t.deepEqual(await response.json(), { status: 'unavailable', database: 'unreachable' });
});

test('an unknown path is 404 and a wrong method 405 with Allow', async (t) => {
  t.is((await fetch(`${server.url}/nothing-here`)).status, 404);
  const response = await fetch(`${server.url}/healthz`, { method: 'DELETE' });
  t.is(response.status, 405);
  t.is(response.headers.get('allow'), 'GET, HEAD');
});

test('closing the server lets a request in flight finish, then refuses new ones', async (t) => {
  const other = await startServer(db.pool);
  let finishBody: () => void = () => undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('List-Unsubscribe='));
      finishBody = () => {
        controller.enqueue(new TextEncoder().encode('One-Click'));
        controller.close();
      };
    },
  });
  const inFlight = fetch(`${other.url}/unsubscribe/${randomUUID()}`, {
    method: 'POST',
    body,
    duplex: 'half',
  } as RequestInit);
  // Shut down only once the request is being read.
  while ((await connections(other)) === 0) await new Promise((r) => setTimeout(r, 5));
  const closing = other.close();
  finishBody();
  const response = await inFlight;
  t.is(response.status, 404, 'answered (unknown token) after close() began');
  await closing;
  await t.throwsAsync(fetch(`${other.url}/healthz`));
});

function connections(running: RunningServer): Promise<number> {
  return new Promise((resolve, reject) => {
    running.server.getConnections((error, count) => (error ? reject(error) : resolve(count)));
  });
}
