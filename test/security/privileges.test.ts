// The database roles (the baseline migration's sections 1 and 13), proven by running the system
// as them: a whole campaign (generation, sends, SES events through the webhook, a bounce and a complaint
// suppressed, a one-click unsubscribe) runs with a real `mailer worker` and the HTTP server
// logged in as a member of mailer_app, the operator's part (import, templates, suppression,
// campaign control) as a member of mailer_operator; then everything they must not do is tried.
// Roles are cluster-wide: the login roles are created with a unique name per run and dropped after.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import pg from 'pg';
import { importCustomersCsv } from '../../src/import/customers.ts';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { suppressionList } from '../events/helpers.ts';
import { createEventSink, waitForEventsApplied } from '../faults/support.ts';
import { type LongRunning, startCli, waitFor } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { PUBLIC_URL, startServer } from '../http/helpers.ts';
import { statusCounts } from '../pipeline/harness.ts';

const suffix = randomBytes(4).toString('hex');
const APP = `mailer_t_app_${suffix}`;
const OPERATOR = `mailer_t_op_${suffix}`;
const PASSWORD = randomBytes(12).toString('hex');

let db: TestDatabase;
let app: pg.Pool;
let operator: pg.Pool;
let adminUrl: string;

function asRole(url: string, role: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = PASSWORD;
  return u.toString();
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

test.before(async () => {
  adminUrl = process.env.DATABASE_URL ?? '';
  db = await createTestDatabase();
  await admin(`create role ${APP} login password '${PASSWORD}' in role mailer_app`);
  await admin(`create role ${OPERATOR} login password '${PASSWORD}' in role mailer_operator`);
  app = new pg.Pool({ connectionString: asRole(db.url, APP), max: 5 });
  operator = new pg.Pool({ connectionString: asRole(db.url, OPERATOR), max: 2 });
});
test.after.always(async () => {
  await app?.end();
  await operator?.end();
  await db?.drop();
  await admin(`drop role if exists ${APP}`);
  await admin(`drop role if exists ${OPERATOR}`);
});

test.serial('the roles are neither superusers nor anything close', async (t) => {
  const { rows } = await db.pool.query(
    `select rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin
       from pg_roles where rolname in ('mailer_app', 'mailer_operator', $1, $2) order by rolname`,
    [APP, OPERATOR],
  );
  for (const row of rows) {
    t.like(row, {
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolreplication: false,
      rolbypassrls: false,
    });
  }
  t.deepEqual(
    rows
      .filter((r) => r.rolcanlogin)
      .map((r) => r.rolname)
      .sort(),
    [APP, OPERATOR].sort(),
    'the group roles cannot log in; their members do',
  );
});

test.serial(
  'every SECURITY DEFINER function pins its search_path and is for operators only',
  async (t) => {
    const { rows } = await db.pool.query<{
      fn: string;
      config: string[] | null;
      public_can: boolean;
      app_can: boolean;
      operator_can: boolean;
    }>(
      `select p.oid::regprocedure::text as fn, p.proconfig as config,
            exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                     where a.grantee = 0 and a.privilege_type = 'EXECUTE') as public_can,
            has_function_privilege('mailer_app', p.oid, 'execute') as app_can,
            has_function_privilege('mailer_operator', p.oid, 'execute') as operator_can
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')
      order by 1`,
    );
    t.true(rows.length > 0, 'there are operator functions');
    for (const row of rows) {
      const path = row.config
        ?.find((c) => c.startsWith('search_path='))
        ?.slice('search_path='.length);
      t.truthy(path, `${row.fn} has no pinned search_path`);
      const entries = (path ?? '').split(',').map((s) => s.trim());
      // pg_temp last: otherwise it is searched first, and anyone could shadow a table with a temp one.
      t.is(entries.at(-1), 'pg_temp', `${row.fn}: search_path=${path}`);
      t.is(entries[0], 'pg_catalog', `${row.fn}: search_path=${path}`);
      t.false(row.public_can, `${row.fn} is executable by PUBLIC`);
      t.false(row.app_can, `${row.fn} is executable by mailer_app`);
      t.true(row.operator_can, `${row.fn} is not executable by mailer_operator`);
    }
    t.log(
      `${rows.length} SECURITY DEFINER functions: ${rows.map((r) => r.fn.replace(/\(.*/, '')).join(', ')}`,
    );
  },
);

test.serial('a whole campaign runs as mailer_app, prepared by mailer_operator', async (t) => {
  t.timeout(180_000);
  // The operator: customers from a CSV file, a template, one address suppressed by hand.
  const dir = await mkdtemp(join(tmpdir(), 'mailer-roles-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'customers.csv');
  const people = [
    'reader@example.com',
    'other@example.com',
    'quitter@example.com',
    'handsoff@example.com',
    'bounce@simulator.amazonses.com',
    'complaint@simulator.amazonses.com',
  ];
  await writeFile(
    file,
    ['email,name,company,country', ...people.map((e) => `${e},N,C,NL`)].join('\n'),
  );
  const summary = await importCustomersCsv(operator, file, {
    apply: 'always',
    onProblem: () => {},
  });
  t.is(summary.inserted, people.length);
  await operator.query(
    `select public.add_template('internal', 'weekly', 1, null, 'Hi {{name}}', '<p>{{name}}</p>', null, true)`,
  );
  await operator.query(
    `select public.suppress_email('handsoff@example.com', 'manual', 'asked by phone')`,
  );

  // The application: HTTP server and worker, both logged in as mailer_app.
  const sink = createEventSink({ hold: false });
  const ses = await startLocalSes({ onSend: sink.onSend });
  t.teardown(() => ses.close());
  t.teardown(() => sink.close());
  await sink.connect(app);
  const http = await startServer(app, {});
  t.teardown(() => http.close());
  const worker: LongRunning = startCli(['worker'], {
    DATABASE_URL: asRole(db.url, APP),
    SES_ENDPOINT: ses.url,
    SES_MAX_SEND_RATE: '0',
    PUBLIC_URL,
    EVENTS_EXPORT_DIR: join(dir, 'exports'),
    LOG_LEVEL: 'warn',
  });
  t.teardown(async () => {
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
  await app.query(
    `select graphile_worker.add_job('generate_campaign',
       json_build_object('week_of_month', 1, 'generated_date', '2031-03-03'))`,
  );
  const campaignId = await waitFor(
    async () =>
      worker.child.exitCode === null
        ? (
            await app.query<{ campaign_id: string }>(
              `select campaign_id from campaigns where status = 'done'`,
            )
          ).rows[0]?.campaign_id
        : Promise.reject(new Error(`worker exited:\n${worker.output()}`)),
    { what: 'campaign sent', timeoutMs: 90_000 },
  );
  await sink.release();
  await waitForEventsApplied(db);

  // A reader unsubscribes with the one-click POST of the email's List-Unsubscribe header.
  const message = ses.sent().find((m) => m.to.includes('quitter@example.com'));
  const link =
    message?.headers.find((h) => h.name === 'List-Unsubscribe')?.value.slice(1, -1) ?? '';
  const response = await fetch(link.replace(PUBLIC_URL, http.url), {
    method: 'POST',
    body: 'List-Unsubscribe=One-Click',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.is(response.status, 200);

  t.deepEqual(await statusCounts(db, campaignId), {
    sent: 2,
    unsubscribed: 1,
    suppressed: 1,
    bounced: 1,
    complained: 1,
  });
  t.deepEqual(await suppressionList(db.pool), [
    { email: 'bounce@simulator.amazonses.com', reason: 'bounce_hard', source: 'ses' },
    { email: 'complaint@simulator.amazonses.com', reason: 'complaint', source: 'ses' },
    { email: 'handsoff@example.com', reason: 'manual', source: 'ops' },
    { email: 'quitter@example.com', reason: 'unsubscribe', source: 'user' },
  ]);
  const { rows: audit } = await db.pool.query<{ action: string; db_user: string }>(
    'select action, db_user from operator_actions order by action_id',
  );
  t.deepEqual(audit, [
    { action: 'add_template', db_user: OPERATOR },
    { action: 'suppress', db_user: OPERATOR },
  ]);

  // The recurring tasks of the crontab, run now as mailer_app, with something for each to do:
  // events past retention (exported, then deleted), expired tokens: the one no email carried
  // (handsoff was suppressed before the campaign) deleted, the one of a sent email kept.
  await db.pool.query(`update email_events_op set created_at = now() - interval '400 days'`);
  await db.pool.query(`update unsubscribe_tokens set expires_at = now() - interval '31 days'
                        where email in ('other@example.com', 'handsoff@example.com')`);
  for (const task of [
    'sweep',
    'reconcile_in_doubt',
    'retain_email_events',
    'expire_unsubscribe_tokens',
  ]) {
    await app.query('select graphile_worker.add_job($1)', [task]);
  }
  await app.query(
    `select graphile_worker.add_job('generate_weekly_campaign', '{"_cron": {"ts": "2031-04-07T06:00:00Z"}}')`,
  );
  await waitFor(
    async () => (await db.pool.query('select 1 from graphile_worker.jobs')).rowCount === 0,
    { what: 'the recurring tasks to complete', timeoutMs: 60_000 },
  ).catch(async (error) => {
    const { rows } = await db.pool.query(
      'select task_identifier, last_error from graphile_worker.jobs',
    );
    t.log(rows);
    throw error;
  });
  const { rows: after } = await db.pool.query<{
    events: number;
    exports: number;
    tokens: string[];
    campaigns: number;
  }>(
    `select (select count(*)::int from email_events_op where created_at < now() - interval '300 days') as events,
            (select count(*)::int from email_event_exports) as exports,
            (select array_agg(email order by email) from unsubscribe_tokens
              where expires_at < now() - interval '30 days') as tokens,
            (select count(*)::int from campaigns) as campaigns`,
  );
  t.like(after[0], { events: 0, tokens: ['other@example.com'], campaigns: 2 });
  t.true((after[0]?.exports ?? 0) >= 1, 'events exported before they were deleted');
  t.notRegex(worker.output(), /permission denied|row-level security/);
});

// What each role must not be able to do, with the SQLSTATE PostgreSQL answers.
const FORBIDDEN_FOR_APP: Array<[string, string]> = [
  ['create table public.x (id int)', '42501'],
  ['create schema x', '42501'],
  ['drop table public.customers', '42501'],
  ['alter table public.campaigns disable trigger all', '42501'],
  ['truncate public.campaign_recipients', '42501'],
  [`update public.customers set name = 'x'`, '42501'],
  [`insert into public.customers (email) values ('new@example.com')`, '42501'],
  ['delete from public.templates', '42501'],
  ['delete from public.suppression_list', '42501'],
  [`update public.suppression_list set reason = 'manual'`, '42501'],
  ['delete from public.operator_actions', '42501'],
  [`update public.operator_actions set note = 'x'`, '42501'],
  [`select public.unsuppress_email('a@example.com', 'note', true)`, '42501'],
  [`select public.suppress_email('a@example.com')`, '42501'],
  [`select public.pause_campaign('00000000-0000-0000-0000-000000000000')`, '42501'],
  [`select public.retry_failed_jobs(null)`, '42501'],
  [
    `select public.resolve_in_doubt('00000000-0000-0000-0000-000000000000', '00000000-0000-0000-0000-000000000000', 'sent')`,
    '42501',
  ],
  ['insert into graphile_worker.migrations (id) values (999999)', '42501'],
  ['drop table graphile_worker._private_jobs', '42501'],
  [`copy public.customers to program 'id'`, '42501'],
  [`select pg_read_file('/etc/passwd')`, '42501'],
  ['select * from pg_authid', '42501'],
  ['create role x', '42501'],
  ['set role postgres', '42501'],
  ['alter role current_user superuser', '42501'],
];

const FORBIDDEN_FOR_OPERATOR: Array<[string, string]> = [
  ['delete from public.suppression_list', '42501'],
  ['delete from public.operator_actions', '42501'],
  ['drop table public.customers', '42501'],
  ['create table public.x (id int)', '42501'],
  ['insert into graphile_worker.migrations (id) values (999999)', '42501'],
];

for (const [who, forbidden] of [
  ['mailer_app', FORBIDDEN_FOR_APP],
  ['mailer_operator', FORBIDDEN_FOR_OPERATOR],
] as const) {
  test.serial(`${who} is refused everything it has no business doing`, async (t) => {
    const pool = who === 'mailer_app' ? app : operator;
    for (const [sql, code] of forbidden) {
      const error = await pool.query(sql).then(
        () => undefined,
        (e: { code?: string; message?: string }) => e,
      );
      t.is(error?.code, code, `${sql}: ${error?.message ?? 'allowed'}`);
    }
  });
}
