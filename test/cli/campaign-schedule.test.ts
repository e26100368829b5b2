// `campaign queue ID --at`, `campaign unschedule`, `campaign delete` and their SQL functions: a
// scheduled campaign stays a draft with scheduled_at and one keyed job until its time; a draft
// can be deleted with its recipients and tokens; each act is in operator_actions.
import test from 'ava';
import { runCli, waitFor } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';
import { startPipeline } from '../pipeline/harness.ts';

const db = databaseForFile();
test.before(async () => {
  for (const week of [1, 2, 3, 4]) await createTemplate(db.pool, { week_of_month: week });
  for (let i = 0; i < 3; i++) await createCustomer(db.pool);
});

const env = () => ({
  DATABASE_URL: db.url,
  LOG_LEVEL: 'warn',
  PUBLIC_URL: 'https://mail.example.test',
});

async function draft(week: number, date: string): Promise<string> {
  const generated = await runCli(
    ['campaign', 'generate', '--week', String(week), '--date', date, '--no-send', '--json'],
    env(),
  );
  if (generated.code !== 0) throw new Error(generated.stderr);
  return (JSON.parse(generated.stdout) as { campaign_id: string }).campaign_id;
}

async function campaign(id: string) {
  const { rows } = await db.pool.query<{ status: string; scheduled_at: Date | null }>(
    'select status, scheduled_at from campaigns where campaign_id = $1',
    [id],
  );
  return rows[0];
}

async function scheduledJob(id: string) {
  const { rows } = await db.pool.query<{ run_at: Date; task_identifier: string }>(
    `select run_at, task_identifier from graphile_worker.jobs
      where key = 'queue_scheduled_campaign:' || $1`,
    [id],
  );
  return rows[0];
}

async function actions(id: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ action: string }>(
    `select action from operator_actions
      where campaign_id = $1 or details->>'campaign_id' = $1::text order by action_id`,
    [id],
  );
  return rows.map((r) => r.action);
}

test('queue --at keeps the campaign a draft with its time and one keyed job', async (t) => {
  const id = await draft(1, '2031-01-06');
  const first = await runCli(
    ['campaign', 'queue', id, '--at', '2099-12-14 09:00 Europe/Berlin'],
    env(),
  );
  t.is(first.code, 0, first.stderr);
  t.regex(
    first.stdout,
    /draft, scheduled for 2099-12-14 08:00:00Z \(2099-12-14 09:00 Europe\/Berlin\)/,
  );
  t.like(await campaign(id), { status: 'draft', scheduled_at: new Date('2099-12-14T08:00:00Z') });
  t.like(await scheduledJob(id), {
    task_identifier: 'queue_scheduled_campaign',
    run_at: new Date('2099-12-14T08:00:00Z'),
  });

  const status = await runCli(['campaign', 'status', id], env());
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /: draft, scheduled for 2099-12-14 08:00:00Z\n/);
  t.regex(status.stdout, /draft: queued by the worker at 2099-12-14 08:00:00Z/);
  const list = await runCli(['campaign', 'list', '--status', 'draft'], env());
  t.regex(list.stdout, new RegExp(`${id}.*draft, scheduled for 2099-12-14 08:00:00Z`));

  // Scheduling again moves the one job.
  const moved = await runCli(['campaign', 'queue', id, '--at', '2099-12-15 10:00 UTC'], env());
  t.is(moved.code, 0, moved.stderr);
  t.deepEqual((await scheduledJob(id))?.run_at, new Date('2099-12-15T10:00:00Z'));
  const { rows } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from graphile_worker.jobs
      where key = 'queue_scheduled_campaign:' || $1`,
    [id],
  );
  t.is(rows[0]?.n, 1);

  const unscheduled = await runCli(['campaign', 'unschedule', id], env());
  t.is(unscheduled.code, 0, unscheduled.stderr);
  t.regex(unscheduled.stdout, /no longer scheduled \(still a draft\)/);
  t.like(await campaign(id), { status: 'draft', scheduled_at: null });
  t.is(await scheduledJob(id), undefined);
  const again = await runCli(['campaign', 'unschedule', id], env());
  t.regex(again.stdout, /was not scheduled; nothing changed/);
  t.deepEqual(await actions(id), ['schedule_campaign', 'schedule_campaign', 'unschedule_campaign']);
});

test('queue --at refuses a past, ambiguous or zoneless time, and a campaign not a draft', async (t) => {
  const id = await draft(2, '2031-01-13');
  for (const [at, message] of [
    ['2020-01-01 09:00 UTC', /in the past/],
    ['2099-10-25 02:30 Europe/Berlin', /happens twice/],
    ['2099-12-14 09:00', /expected "YYYY-MM-DD HH:MM ZONE"/],
    ['2099-12-14 09:00 Nowhere/Town', /unknown time zone/],
  ] as const) {
    const refused = await runCli(['campaign', 'queue', id, '--at', at], env());
    t.is(refused.code, 2, at);
    t.regex(refused.stderr, message);
  }
  t.like(await campaign(id), { status: 'draft', scheduled_at: null });

  // The SQL function refuses a past time by itself (psql has no --at parser).
  await t.throwsAsync(
    db.pool.query("select schedule_campaign($1, now() - interval '1 minute')", [id]),
    { message: /is in the past/ },
  );
  const queued = await runCli(['campaign', 'queue', id], env());
  t.is(queued.code, 0, queued.stderr);
  const late = await runCli(['campaign', 'queue', id, '--at', '2099-12-14 09:00 UTC'], env());
  t.is(late.code, 1);
  t.regex(late.stderr, /is (queued|done); only a draft can be scheduled/);
});

test('queueing a scheduled draft by hand drops its schedule and its job', async (t) => {
  const id = await draft(3, '2031-01-20');
  await db.pool.query("select schedule_campaign($1, now() + interval '1 day')", [id]);
  t.truthy(await scheduledJob(id));
  t.regex((await db.pool.query('select queue_campaign($1) as s', [id])).rows[0].s, /queued|done/);
  t.is((await campaign(id))?.scheduled_at, null);
  t.is(await scheduledJob(id), undefined);
});

test('delete removes a draft with its recipients, tokens and job; anything else is refused', async (t) => {
  const id = await draft(4, '2031-01-27');
  await db.pool.query("select schedule_campaign($1, now() + interval '1 day')", [id]);
  const count = async (table: string) =>
    (
      await db.pool.query<{ n: number }>(
        `select count(*)::int as n from ${table} where campaign_id = $1`,
        [id],
      )
    ).rows[0]?.n;
  t.is(await count('campaign_recipients'), 3);
  t.is(await count('unsubscribe_tokens'), 3);

  const deleted = await runCli(['campaign', 'delete', id, '--note', 'generated by mistake'], env());
  t.is(deleted.code, 0, deleted.stderr);
  t.regex(deleted.stdout, /deleted with its 3 recipients/);
  t.is(await campaign(id), undefined);
  t.is(await count('campaign_recipients'), 0);
  t.is(await count('unsubscribe_tokens'), 0);
  t.is(await scheduledJob(id), undefined);
  const { rows } = await db.pool.query(
    `select note, details from operator_actions where action = 'delete_campaign'
      and details->>'campaign_id' = $1`,
    [id],
  );
  t.like(rows[0], { note: 'generated by mistake', details: { recipients: 3, tokens: 3 } });

  const missing = await runCli(['campaign', 'delete', id], env());
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no campaign/);

  const sent = await runCli(
    ['campaign', 'generate', '--week', '1', '--date', '2031-02-03', '--json'],
    env(),
  );
  const sentId = (JSON.parse(sent.stdout) as { campaign_id: string }).campaign_id;
  const refused = await runCli(['campaign', 'delete', sentId], env());
  t.is(refused.code, 1);
  t.regex(refused.stderr, /is queued; only a draft can be deleted.*pause it/);
  t.is((await campaign(sentId))?.status, 'queued');
});

test('a campaign scheduled 2 s ahead starts at its time, not before', async (t) => {
  const pipeline = await startPipeline(t);
  const pdb = pipeline.db;
  await createTemplate(pdb.pool, { week_of_month: 1 });
  for (let i = 0; i < 3; i++) await createCustomer(pdb.pool);
  const { rows } = await pdb.pool.query<{ id: string }>(
    `select generate_campaign(1, '2031-01-06', false, interval '90 days',
                              'https://mail.example.test') as id`,
  );
  const id = rows[0]?.id ?? '';
  await pipeline.startWorker();
  const { rows: at } = await pdb.pool.query<{ at: Date }>(
    "select schedule_campaign($1, now() + interval '2 seconds') as at",
    [id],
  );
  const due = at[0]?.at.getTime() ?? 0;
  const status = async () =>
    (
      await pdb.pool.query<{ status: string }>(
        'select status from campaigns where campaign_id = $1',
        [id],
      )
    ).rows[0]?.status;
  // Until its time it stays a draft.
  while (Date.now() < due - 300) {
    t.is(await status(), 'draft');
    await new Promise((r) => setTimeout(r, 100));
  }
  await waitFor(async () => (await status()) === 'done', { what: 'scheduled campaign sent' });
  const { rows: firstSend } = await pdb.pool.query<{ first: Date; queued: Date }>(
    `select min(r.last_attempt_at) as first,
            (select created_at from operator_actions where action = 'queue_campaign'
              and campaign_id = $1) as queued
       from campaign_recipients r where r.campaign_id = $1`,
    [id],
  );
  t.true((firstSend[0]?.queued.getTime() ?? 0) >= due, 'queued at or after its time');
  t.true((firstSend[0]?.first.getTime() ?? 0) >= due, 'first send at or after its time');
  t.is(pipeline.ses.sent().length, 3);
});
