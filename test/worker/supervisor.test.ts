// `mailer worker` supervises its runner (src/worker/supervisor.ts). A PostgreSQL restart under a
// running campaign is in test/faults/postgres.test.ts; these are the process-level rules.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { freePort } from '../../src/free-port.ts';
import { RUNNER_HEAP_FLAGS, runnerNodeArgs } from '../../src/worker/supervisor.ts';
import { NO_SES_ENV, startWorkerCli, waitFor } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';

const baseEnv = { ...NO_SES_ENV, LOG_LEVEL: 'info' };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function runnerOf(db: TestDatabase, supervisorPid: number | undefined, except?: number) {
  return waitFor(
    async () => {
      const { rows } = await db.pool.query<{ pid: number }>(
        'select pid from worker_processes where supervisor_pid = $1 and pid <> $2',
        [supervisorPid, except ?? 0],
      );
      return rows.length === 1 ? rows[0]?.pid : undefined;
    },
    { what: 'a runner registered by the supervisor', timeoutMs: 60_000 },
  );
}

test('a runner killed with SIGKILL is replaced; its registration released; jobs still run', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const worker = startWorkerCli(t, { ...baseEnv, DATABASE_URL: db.url });
  const first = await runnerOf(db, worker.child.pid);
  t.not(first, worker.child.pid, 'the runner is a child process, not the supervisor');

  process.kill(first, 'SIGKILL');
  const second = await runnerOf(db, worker.child.pid, first);
  t.not(second, first);
  t.is(worker.child.exitCode, null, 'the supervisor stayed up');
  // The new runner registers, then releases dead runners' registrations and jobs as it starts.
  const registered = await waitFor(
    async () => {
      const { rows } = await db.pool.query<{ pid: number }>('select pid from worker_processes');
      return rows.length === 1 ? rows.map((r) => r.pid) : undefined;
    },
    { what: 'the dead runner unregistered', timeoutMs: 10_000 },
  );
  t.deepEqual(registered, [second], 'the dead runner was unregistered by the next one');

  await createTemplate(db.pool, { week_of_month: 2 });
  await createCustomer(db.pool);
  await db.pool.query(
    `select graphile_worker.add_job('generate_campaign',
       json_build_object('week_of_month', 2, 'generated_date', '2026-11-09', 'send', false))`,
  );
  await waitFor(
    async () =>
      (await db.pool.query(`select 1 from campaigns where generated_date = '2026-11-09'`)).rowCount,
    { what: 'a job run by the new runner' },
  );
  t.regex(worker.output(), /worker runner died; restarting/);
  t.is(
    (await db.pool.query('select 1 from campaign_recipients')).rowCount,
    1,
    'generated for the one customer',
  );

  worker.child.kill('SIGTERM');
  t.deepEqual(await worker.exited, { code: 0, signal: null }, worker.output().slice(-2000));
  t.false(alive(second), 'the runner stopped with its supervisor');
  t.is((await db.pool.query('select 1 from worker_processes')).rowCount, 0);
});

test("the runner gets the heap flags; the operator's own flags of the same name win", (t) => {
  t.deepEqual(runnerNodeArgs([]), [...RUNNER_HEAP_FLAGS]);
  t.deepEqual(runnerNodeArgs(['--max-semi-space-size=0', '--inspect']), [
    '--heap-growing-percent=70',
    '--max-semi-space-size=0',
    '--inspect',
  ]);
  // NODE_OPTIONS comes before the command line, so a default there would be overridden: left out.
  t.deepEqual(runnerNodeArgs([], ' --max_semi_space_size=32  --enable-source-maps'), [
    '--heap-growing-percent=70',
  ]);
  t.deepEqual(runnerNodeArgs(['--heap-growing-percent=0'], '--max-semi-space-size=8'), [
    '--heap-growing-percent=0',
  ]);
});

test("a supervised runner runs with the heap flags and the operator's NODE_OPTIONS", async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const worker = startWorkerCli(t, {
    ...baseEnv,
    DATABASE_URL: db.url,
    NODE_OPTIONS: '--max-semi-space-size=4',
  });
  const runner = await runnerOf(db, worker.child.pid);
  const argv = readFileSync(`/proc/${runner}/cmdline`, 'utf8').split('\0');
  t.true(argv.includes('--heap-growing-percent=70'), argv.join(' '));
  t.false(argv.includes('--max-semi-space-size=16'), 'NODE_OPTIONS named its own: ours left out');
  t.true(argv.includes('--no-supervise'));
  const environ = readFileSync(`/proc/${runner}/environ`, 'utf8').split('\0');
  t.true(environ.includes('NODE_OPTIONS=--max-semi-space-size=4'));
});

test('a supervisor killed with SIGKILL takes its runner with it', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const worker = startWorkerCli(t, { ...baseEnv, DATABASE_URL: db.url });
  const runner = await runnerOf(db, worker.child.pid);
  worker.child.kill('SIGKILL');
  await worker.exited;
  await waitFor(async () => !alive(runner), {
    what: 'the orphaned runner to die',
    timeoutMs: 10_000,
  });
  t.false(alive(runner));
});

test('a worker started while the database is unreachable waits for it instead of exiting', async (t) => {
  const port = await freePort();
  const worker = startWorkerCli(t, {
    ...baseEnv,
    DATABASE_URL: `postgres://root@127.0.0.1:${port}/nothing`,
  });
  await waitFor(async () => /waiting for the database/.test(worker.output()), {
    what: 'the waiting message',
  });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  t.is(worker.child.exitCode, null, 'still waiting');
  worker.child.kill('SIGTERM');
  t.deepEqual(await worker.exited, { code: 0, signal: null });
});
