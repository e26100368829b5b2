import test from 'ava';
import { runCli } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';

const db = databaseForFile();

const env = () => ({ DATABASE_URL: db.url, LOG_LEVEL: 'warn' });

async function addJob(task: string, payload: unknown, runAt = 'now()'): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(
    `select id from graphile_worker.add_job($1, $2::json, run_at => ${runAt})`,
    [task, JSON.stringify(payload)],
  );
  return rows[0]?.id ?? '';
}

async function failJob(id: string, error: string): Promise<void> {
  await db.pool.query('select graphile_worker.permanently_fail_jobs(array[$1::bigint], $2)', [
    id,
    error,
  ]);
}

async function job(id: string) {
  const { rows } = await db.pool.query<{ attempts: number; due: boolean }>(
    'select attempts, run_at <= now() as due from graphile_worker.jobs where id = $1',
    [id],
  );
  return rows[0];
}

test('jobs shows queue depth per task and failed jobs with their last error; retry runs one again', async (t) => {
  await addJob('reconcile_in_doubt', {});
  await addJob('reconcile_in_doubt', {}, "now() + interval '1 hour'");
  const failed = await addJob('send_recipient', { campaign_id: 'nope' });
  await failJob(
    failed,
    'send_recipient: malformed payload (campaign_id: Invalid UUID)\n  at stack',
  );

  const overview = await runCli(['jobs'], env());
  t.is(overview.code, 0, overview.stderr);
  t.regex(overview.stdout, /reconcile_in_doubt\s+1\s+1\s+0\s+0\s+0\s+\d+s/);
  t.regex(overview.stdout, /send_recipient\s+0\s+0\s+0\s+0\s+1/);
  t.regex(
    overview.stdout,
    new RegExp(
      `${failed}\\s+send_recipient\\s+25/25\\s+\\S+ \\S+\\s+send_recipient: malformed payload \\(campaign_id: Invalid UUID\\)$`,
      'm',
    ),
  );
  t.notRegex(overview.stdout, /at stack/, 'first line of the error only');

  const json = await runCli(['jobs', 'list', '--task', 'send_recipient', '--json'], env());
  const parsed = JSON.parse(json.stdout) as {
    queues: Array<{ task_identifier: string; failed: number }>;
    failed: Array<{ id: string; last_error: string }>;
  };
  t.deepEqual(
    parsed.queues.map((q) => [q.task_identifier, q.failed]),
    [['send_recipient', 1]],
  );
  t.is(parsed.failed[0]?.id, failed);

  const retry = await runCli(['jobs', 'retry', failed], env());
  t.is(retry.code, 0, retry.stderr);
  t.regex(retry.stdout, new RegExp(`job ${failed} will run again now`));
  t.deepEqual(await job(failed), { attempts: 0, due: true });
  const audit = await db.pool.query(
    "select details->'job_ids' as ids from operator_actions where action = 'retry_jobs' and details->>'task' = 'send_recipient'",
  );
  t.deepEqual(audit.rows[0]?.ids, [Number(failed)]);
});

test('jobs retry --failed retries every failed job of a task', async (t) => {
  const a = await addJob('generate_campaign', { week_of_month: 9 });
  const b = await addJob('generate_campaign', { week_of_month: 8 });
  const other = await addJob('expire_unsubscribe_tokens', {});
  for (const id of [a, b, other]) await failJob(id, 'boom');
  const result = await runCli(['jobs', 'retry', '--failed', '--task', 'generate_campaign'], env());
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /2 failed job\(s\) of generate_campaign will run again now/);
  t.is((await job(a))?.attempts, 0);
  t.is((await job(b))?.attempts, 0);
  t.is((await job(other))?.attempts, 25);
});

test('jobs retry needs exactly one of an id or --failed; an unknown job exits 1', async (t) => {
  for (const args of [
    ['jobs', 'retry'],
    ['jobs', 'retry', '12', '--failed'],
    ['jobs', 'retry', 'twelve'],
  ]) {
    t.is((await runCli(args, env())).code, 2, args.join(' '));
  }
  const unknown = await runCli(['jobs', 'retry', '987654'], env());
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /no job 987654/);
});

for (const command of [['jobs'], ['jobs', 'retry']]) {
  test(`mailer ${command.join(' ')} --help prints usage and exits 0`, async (t) => {
    const result = await runCli([...command, '--help']);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /Usage: mailer jobs/);
  });
}

test('a database that is missing or unreachable fails with one line saying so, no stack', async (t) => {
  const missing = new URL(db.url);
  missing.pathname = '/mailer_no_such_database';
  const absent = await runCli(['jobs'], { DATABASE_URL: missing.toString(), LOG_LEVEL: 'warn' });
  t.is(absent.code, 1);
  t.is(absent.stderr.trim(), 'mailer: database "mailer_no_such_database" does not exist (3D000)');

  const refused = await runCli(['jobs'], {
    DATABASE_URL: 'postgres://nobody@127.0.0.1:1/mailer',
    LOG_LEVEL: 'warn',
  });
  t.is(refused.code, 1);
  t.is(
    refused.stderr.trim(),
    'mailer: cannot connect to the database at 127.0.0.1:1: connection refused ' +
      '(is PostgreSQL running there, on that port?) (ECONNREFUSED)',
  );
});
