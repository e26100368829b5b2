import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import {
  EmbeddedPostgresError,
  ensureEmbeddedPostgres,
  stopEmbeddedPostgres,
} from '../../src/db/embedded.ts';
import { migrateDatabase } from '../../src/db/migrate.ts';
import { freePort } from '../../src/free-port.ts';
import { createLogger } from '../../src/logger.ts';

const logger = createLogger({ level: 'silent', pretty: false });

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

test.serial(
  'the embedded server starts, is reused, survives a SIGKILLed postmaster and stops',
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'mailer-embedded-'));
    const dir = join(root, 'pg');
    const port = await freePort();
    t.teardown(async () => {
      await stopEmbeddedPostgres(dir).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    });

    const url = await ensureEmbeddedPostgres({ port, dir, database: 'mailer' });
    t.is(url, `postgres://postgres@127.0.0.1:${port}/mailer`);
    t.deepEqual(await query(url, 'select current_database() as db'), [{ db: 'mailer' }]);
    const [encoding] = (await query(
      url,
      `select pg_encoding_to_char(encoding) as e
                                        from pg_database where datname = 'mailer'`,
    )) as Array<{ e: string }>;
    t.is(encoding?.e, 'UTF8');
    await migrateDatabase(url, logger);
    // graphile-migrate keeps its pool 200 ms after use and exits the process if that pool sees the
    // server die; let it go before killing the server below.
    await new Promise((r) => setTimeout(r, 400));

    const again = performance.now();
    t.is(await ensureEmbeddedPostgres({ port, dir }), url);
    t.log(`reuse took ${(performance.now() - again).toFixed(0)} ms`);

    // A postmaster killed outright leaves a stale postmaster.pid; the next start recovers.
    const pid = Number((await readFile(join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    t.is(await ensureEmbeddedPostgres({ port, dir }), url);
    t.deepEqual(await query(url, 'select count(*)::int as n from customers'), [{ n: 0 }]);

    t.true(await stopEmbeddedPostgres(dir));
    t.false(await stopEmbeddedPostgres(dir));
  },
);

test.serial('a port taken by another PostgreSQL gives one line naming it', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mailer-embedded-'));
  const dir = join(root, 'pg');
  const first = await freePort();
  const other = join(root, 'other');
  t.teardown(async () => {
    await stopEmbeddedPostgres(other).catch(() => undefined);
    await stopEmbeddedPostgres(dir).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });
  await ensureEmbeddedPostgres({ port: first, dir: other });
  const error = await t.throwsAsync(ensureEmbeddedPostgres({ port: first, dir }), {
    instanceOf: EmbeddedPostgresError,
  });
  t.regex(error?.message ?? '', new RegExp(`could not start on port ${first}`));
  t.regex(error?.message ?? '', /EMBEDDED_PG_PORT/);
  t.notRegex(error?.message ?? '', /\n/);
});

async function occupy(port: number): Promise<Server> {
  const server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

// Reachable by the `postgres` user, which runs the server when the tests run as root.
async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'mailer-embedded-'));
  await chmod(root, 0o755);
  return root;
}

/**
 * A data folder of its own and a port that another program holds; when the test ends the holder
 * closes, a server started there stops and the folder goes.
 */
async function portHeldByAnother(
  t: ExecutionContext,
): Promise<{ dir: string; taken: number; holder: Server }> {
  const root = await tempRoot();
  const dir = join(root, 'pg');
  const taken = await freePort();
  const holder = await occupy(taken);
  t.teardown(async () => {
    holder.close();
    await stopEmbeddedPostgres(dir).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });
  return { dir, taken, holder };
}

test.serial(
  'the default port held by another program: the server moves to a free port and is found there',
  async (t) => {
    const { dir, taken, holder } = await portHeldByAnother(t);
    const url = await ensureEmbeddedPostgres({ port: taken, movablePort: true, dir });
    const moved = Number(new URL(url).port);
    t.not(moved, taken);
    t.deepEqual(await query(url, 'select 1 as ok'), [{ ok: 1 }]);
    // A later command (the port it would choose now is free again) finds the running server.
    holder.close();
    t.is(await ensureEmbeddedPostgres({ port: taken, movablePort: true, dir }), url);
  },
);

test.serial('an explicit port held by another program is one line naming it', async (t) => {
  const { dir, taken } = await portHeldByAnother(t);
  const error = await t.throwsAsync(ensureEmbeddedPostgres({ port: taken, dir }), {
    instanceOf: EmbeddedPostgresError,
  });
  t.is(
    error?.message,
    `embedded PostgreSQL: could not start on port ${taken}: another program listens there; ` +
      'set EMBEDDED_PG_PORT to a free port, or stop that program',
  );
});

test.serial(
  'as root, a data folder the postgres user cannot enter is named with the fix, which works',
  async (t) => {
    if (userInfo().uid !== 0) {
      t.log('skipped: only root runs the server as the `postgres` user');
      t.pass();
      return;
    }
    // mkdtemp makes a 0700 folder of root's: what `mktemp -d` gives a newcomer.
    const root = await mkdtemp(join(tmpdir(), 'mailer-embedded-'));
    const dir = join(root, 'checkout', '.data', 'pg');
    t.teardown(async () => {
      await stopEmbeddedPostgres(dir).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    });
    const port = await freePort();
    const error = await t.throwsAsync(ensureEmbeddedPostgres({ port, dir }), {
      instanceOf: EmbeddedPostgresError,
    });
    t.is(
      error?.message,
      `embedded PostgreSQL: as root the server runs as the \`postgres\` user, which cannot ` +
        `enter ${root} (mode 0700, owner uid 0); run mailer as another user, let it in ` +
        `(chmod o+x ${root}), or set DATABASE_URL to a server of your own`,
    );
    await chmod(root, 0o711);
    const url = await ensureEmbeddedPostgres({ port, dir });
    t.deepEqual(await query(url, 'select 1 as ok'), [{ ok: 1 }]);
  },
);
