import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import pg from 'pg';
import { ensureEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/db/embedded.ts';
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

test.serial('a port taken by another server gives a clear error with the server log', async (t) => {
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
  const error = await t.throwsAsync(ensureEmbeddedPostgres({ port: first, dir }));
  t.regex(error?.message ?? '', new RegExp(`could not start on port ${first}`));
  t.regex(error?.message ?? '', /EMBEDDED_PG_PORT/);
});
