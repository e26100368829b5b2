import test from 'ava';
import { runCli } from '../helpers/cli.ts';
import { createEmptyDatabase } from '../helpers/db.ts';

async function schemaSnapshot(pool: import('pg').Pool): Promise<string> {
  const { rows } = await pool.query<{ item: string }>(
    `select n.nspname || '.' || c.relname || ':' || c.relkind::text as item
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'graphile_worker', 'graphile_migrate')
     union all
     select n.nspname || '.' || p.proname || '()' from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'graphile_worker')
     union all
     select 'migration ' || filename || ' ' || hash from graphile_migrate.migrations
     order by 1`,
  );
  return rows.map((r) => r.item).join('\n');
}

test('mailer migrate creates everything on an empty database and a second run changes nothing', async (t) => {
  const db = await createEmptyDatabase();
  t.teardown(() => db.drop());

  const first = await runCli(['migrate'], { DATABASE_URL: db.url });
  t.is(first.code, 0, first.stderr);
  const afterFirst = await schemaSnapshot(db.pool);
  for (const table of [
    'customers',
    'templates',
    'campaigns',
    'campaign_recipients',
    'suppression_list',
    'unsubscribe_tokens',
    'email_events_op',
  ]) {
    t.true(afterFirst.includes(`public.${table}:r`), `${table} created`);
  }
  t.true(afterFirst.includes('graphile_worker.add_jobs()'), 'graphile_worker schema installed');

  const second = await runCli(['migrate'], { DATABASE_URL: db.url });
  t.is(second.code, 0, second.stderr);
  t.is(await schemaSnapshot(db.pool), afterFirst);
  t.regex(second.stdout + second.stderr, /up to date/i);
});

test('a bad configuration value exits 2 with a message naming the variable', async (t) => {
  const result = await runCli(['migrate'], { LOG_LEVEL: 'loud' });
  t.is(result.code, 2);
  t.regex(result.stderr, /LOG_LEVEL/);
  const port = await runCli(['migrate'], { PORT: 'eighty' });
  t.is(port.code, 2);
  t.regex(port.stderr, /PORT/);
});

for (const command of [[], ['migrate'], ['worker'], ['embedded'], ['embedded', 'stop']]) {
  test(`mailer ${command.join(' ') || '(root)'} --help prints usage and exits 0`, async (t) => {
    const result = await runCli([...command, '--help']);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /Usage: mailer/);
  });
}

test('an unknown command exits 2', async (t) => {
  const result = await runCli(['frobnicate']);
  t.is(result.code, 2);
  t.regex(result.stderr, /unknown command/);
});
