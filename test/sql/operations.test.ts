// The operator functions (migrations/schema.sql), called as a psql user would.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { waitFor } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import {
  createCampaign,
  createRecipient,
  createRecipients,
  createTemplate,
} from '../helpers/factories.ts';

const db = databaseForFile();

// Tests in this file run concurrently on one database: each gets its own template version.
let version = 0;
function newTemplate() {
  version += 1;
  return createTemplate(db.pool, { version });
}

async function one<T>(sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await db.pool.query(sql, params);
  return rows[0] as T;
}

function recipient(
  campaignId: string,
  status: string,
  overrides: { email?: string; attemptAt?: string } = {},
) {
  return createRecipient(db.pool, campaignId, status, overrides);
}

test('email_problem accepts sendable addresses and names one reason for each bad one', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['Ann@Example.COM ', null],
    ["o'brien+tag@sub.example.co.uk", null],
    ['a@xn--bcher-kva.example', null],
    ['', 'empty email'],
    ['bob.example.com', 'no @'],
    ['a@b@example.com', 'more than one @'],
    ['a b@example.com', 'contains whitespace'],
    ['@example.com', 'nothing before the @'],
    ['ann@', 'nothing after the @'],
    ['a..b@example.com', 'invalid characters or dots before the @'],
    ['ünï@example.com', 'invalid characters or dots before the @'],
    ['ann@localhost', 'domain has no dot'],
    ['ann@-example.com', 'invalid domain'],
    ['ann@exa_mple.com', 'invalid domain'],
    [`${'a'.repeat(65)}@example.com`, 'more than 64 characters before the @'],
    [`a@${'b'.repeat(64)}.com`, 'domain label longer than 63 characters'],
  ];
  for (const [address, problem] of cases) {
    const row = await one<{ problem: string | null }>(
      'select public.email_problem($1) as problem',
      [address],
    );
    t.is(row.problem, problem, address);
  }
});

test('queue, pause and resume move a campaign and record who did it', async (t) => {
  const template = await newTemplate();
  const campaign = await createCampaign(db.pool, { template_id: template.template_id });
  await recipient(campaign.campaign_id, 'pending');

  t.is(
    (await one<{ s: string }>('select queue_campaign($1) as s', [campaign.campaign_id])).s,
    'queued',
  );
  const jobs = await one<{ n: number }>(
    `select count(*)::int as n from graphile_worker.jobs where task_identifier = 'send_recipient'
        and key like 'send_recipient:' || $1 || '%'`,
    [campaign.campaign_id],
  );
  t.is(jobs.n, 1, 'queueing enqueued the pending recipient');
  t.is(
    (await one<{ s: string }>('select queue_campaign($1) as s', [campaign.campaign_id])).s,
    'queued',
  );
  t.is(
    (await one<{ s: string }>('select pause_campaign($1) as s', [campaign.campaign_id])).s,
    'paused',
  );
  const refused = await t.throwsAsync(
    db.pool.query('select queue_campaign($1)', [campaign.campaign_id]),
  );
  t.regex(refused?.message ?? '', /is paused/);
  t.is(
    (await one<{ s: string }>('select resume_campaign($1) as s', [campaign.campaign_id])).s,
    'queued',
  );
  const missing = await t.throwsAsync(db.pool.query('select pause_campaign($1)', [randomUUID()]));
  t.regex(missing?.message ?? '', /no campaign/);

  const actions = await db.pool.query<{ action: string; db_user: string }>(
    'select action, db_user from operator_actions where campaign_id = $1 order by action_id',
    [campaign.campaign_id],
  );
  t.deepEqual(
    actions.rows.map((a) => a.action),
    ['queue_campaign', 'pause_campaign', 'resume_campaign'],
  );
  t.truthy(actions.rows[0]?.db_user);
});

test('a queued campaign with nothing to send is done at once', async (t) => {
  const template = await newTemplate();
  const campaign = await createCampaign(db.pool, { template_id: template.template_id });
  t.is(
    (await one<{ s: string }>('select queue_campaign($1) as s', [campaign.campaign_id])).s,
    'done',
  );
});

test('unsuppress needs a note, and force for an unsubscribe; both acts are recorded', async (t) => {
  t.true((await one<{ r: boolean }>("select suppress_email('Sue@Example.com') as r")).r);
  t.false((await one<{ r: boolean }>("select suppress_email('sue@example.com', 'manual') as r")).r);
  const entry = await one<{ reason: string; source: string }>(
    "select reason, source from suppression_list where email = 'sue@example.com'",
  );
  t.deepEqual(entry, { reason: 'manual', source: 'ops' });
  await t.throwsAsync(db.pool.query("select unsuppress_email('sue@example.com', '')"), {
    message: /p_note/,
  });
  await t.throwsAsync(db.pool.query("select suppress_email('not-an-address')"), {
    message: /no @/,
  });
  t.true(
    (await one<{ r: boolean }>("select unsuppress_email('SUE@example.com', 'asked by phone') as r"))
      .r,
  );
  t.false(
    (await one<{ r: boolean }>("select unsuppress_email('sue@example.com', 'again') as r")).r,
  );

  await db.pool.query(
    "insert into suppression_list (email, reason, source) values ('uma@example.com', 'unsubscribe', 'user')",
  );
  await t.throwsAsync(db.pool.query("select unsuppress_email('uma@example.com', 'oops')"), {
    message: /p_force/,
  });
  t.true(
    (
      await one<{ r: boolean }>(
        "select unsuppress_email('uma@example.com', 'signed up again', true) as r",
      )
    ).r,
  );
  const audit = await db.pool.query<{
    action: string;
    note: string | null;
    details: { reason?: string };
  }>(
    `select action, note, details from operator_actions
      where email in ('sue@example.com', 'uma@example.com') order by action_id`,
  );
  t.deepEqual(
    audit.rows.map((a) => [a.action, a.note, a.details.reason]),
    [
      ['suppress', null, 'manual'],
      ['unsuppress', 'asked by phone', 'manual'],
      ['unsuppress', 'signed up again', 'unsubscribe'],
    ],
  );
});

test('resolve_in_doubt marks sent or failed, or resends once through a requeued campaign', async (t) => {
  const template = await newTemplate();
  const campaign = await createCampaign(db.pool, {
    template_id: template.template_id,
    status: 'done',
  });
  const sent = await recipient(campaign.campaign_id, 'in_doubt');
  const again = await recipient(campaign.campaign_id, 'in_doubt');
  const refused = await recipient(campaign.campaign_id, 'in_doubt');
  await t.throwsAsync(
    db.pool.query("select resolve_in_doubt($1, $2, 'maybe')", [
      campaign.campaign_id,
      sent.customer_id,
    ]),
    { message: /sent, resend or failed/ },
  );
  t.is(
    (
      await one<{ r: string }>("select resolve_in_doubt($1, $2, 'failed') as r", [
        campaign.campaign_id,
        refused.customer_id,
      ])
    ).r,
    'failed',
  );
  t.deepEqual(
    await one(
      `select c.status, r.recipient_status from campaigns c join campaign_recipients r using (campaign_id)
        where r.campaign_id = $1 and r.customer_id = $2`,
      [campaign.campaign_id, refused.customer_id],
    ),
    { status: 'done', recipient_status: 'failed' },
    'a failed decision sends nothing: the campaign stays done',
  );
  t.is(
    (
      await one<{ r: string }>(
        "select resolve_in_doubt($1, $2, 'sent', 'SES console shows it') as r",
        [campaign.campaign_id, sent.customer_id],
      )
    ).r,
    'sent',
  );
  await t.throwsAsync(
    db.pool.query("select resolve_in_doubt($1, $2, 'sent')", [
      campaign.campaign_id,
      sent.customer_id,
    ]),
    { message: /not in_doubt/ },
  );
  const result = await one<{ r: string }>("select resolve_in_doubt($1, $2, 'resend') as r", [
    campaign.campaign_id,
    again.customer_id,
  ]);
  t.regex(result.r, /queued again/);
  const state = await one<{ status: string; recipient_status: string; jobs: number }>(
    `select c.status, r.recipient_status,
            (select count(*)::int from graphile_worker.jobs j where j.task_identifier = 'send_recipient'
                and j.key = 'send_recipient:' || r.campaign_id || ':' || r.customer_id) as jobs
       from campaigns c join campaign_recipients r using (campaign_id)
      where r.campaign_id = $1 and r.customer_id = $2`,
    [campaign.campaign_id, again.customer_id],
  );
  t.deepEqual(state, { status: 'queued', recipient_status: 'pending', jobs: 1 });
});

test('every operator function has a comment; SECURITY DEFINER ones pin their search_path', async (t) => {
  const { rows } = await db.pool.query<{
    name: string;
    comment: string | null;
    definer: boolean;
    config: string[] | null;
  }>(
    `select p.proname as name, obj_description(p.oid, 'pg_proc') as comment, p.prosecdef as definer,
            p.proconfig as config
       from pg_proc p
      where p.pronamespace = 'public'::regnamespace
        and p.proname = any($1)`,
    [
      [
        'queue_campaign',
        'pause_campaign',
        'resume_campaign',
        'suppress_email',
        'unsuppress_email',
        'enqueue_generate_campaign',
        'retry_job',
        'retry_failed_jobs',
        'resolve_in_doubt',
        'job_queue_summary',
        'failed_jobs',
        'campaign_progress',
        'reconcile_in_doubt',
        'expire_unsubscribe_tokens',
        'delete_exported_events',
        'email_problem',
        'add_template',
        'activate_template',
      ],
    ],
  );
  t.is(rows.length, 18);
  for (const f of rows) {
    t.truthy(f.comment, `${f.name} has a comment`);
    if (f.definer) t.deepEqual(f.config, ['search_path=pg_catalog, public, pg_temp'], f.name);
  }
  t.true(rows.filter((f) => f.definer).length >= 10);
});

// Migration 000009: a big enqueue analyzes graphile-worker's jobs table in the same transaction,
// so the job fetch is not planned for the empty table the last vacuum saw.
async function campaignOf(size: number) {
  const template = await newTemplate();
  const campaign = await createCampaign(db.pool, { template_id: template.template_id });
  await createRecipients(db.pool, campaign.campaign_id, size, 'pending');
  return campaign.campaign_id;
}

const jobStatistics = () =>
  one<{ n: number }>(
    `select reltuples::int as n from pg_class where oid = 'graphile_worker._private_jobs'::regclass`,
  );

test.serial(
  'the first feed of a big campaign brings the jobs table statistics up to date',
  async (t) => {
    t.timeout(60_000);
    const big = await campaignOf(10_000);
    await db.pool.query('vacuum analyze graphile_worker._private_jobs');
    t.true((await jobStatistics()).n < 2_000);
    // The queue trigger feeds the first 2,000 (the feeder job the rest) and analyzes.
    await one('select queue_campaign($1) as s', [big]);
    t.true((await jobStatistics()).n >= 2_000, 'analyzed with the new jobs');

    // A role that does not own the table (here mailer_app, as generate_campaign runs in
    // production) queues just the same; the analyze is skipped, with no error.
    const other = await campaignOf(10_000);
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await client.query('set local role mailer_app');
      await client.query(`update campaigns set status = 'queued' where campaign_id = $1`, [other]);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback');
      throw error;
    } finally {
      client.release();
    }
    const jobs = await one<{ n: number }>(
      `select count(*)::int as n from graphile_worker.jobs where key like 'send_recipient:' || $1 || ':%'`,
      [other],
    );
    t.is(jobs.n, 2_000, 'the first batch; the feeder adds the rest');
  },
);

test.serial(
  'a job taken while its paused campaign is being resumed waits for the resume, then claims',
  async (t) => {
    // graphile-worker's add_jobs clears the key of every locked job it is given (and adds a new
    // job for it) in one statement, then upserts by key, skipping a job that is locked by then. A
    // job a worker takes between the two keeps its key and gets no successor. Its claim must then
    // not end it as "paused" while the resume is still committing, or its recipient would stay
    // pending with no job and the campaign would never finish.
    const template = await newTemplate();
    const campaign = await createCampaign(db.pool, { template_id: template.template_id });
    const id = campaign.campaign_id;
    const customers = [await recipient(id, 'pending'), await recipient(id, 'pending')];
    await one('select queue_campaign($1)', [id]);
    await one('select pause_campaign($1)', [id]);
    // Pausing removed the campaign's waiting jobs; a job of a paused campaign still exists when
    // a worker held it at the pause, or when it was added by hand. Add them back by hand.
    for (const customer of customers) {
      await one(
        `select graphile_worker.add_job('send_recipient',
                  json_build_object('campaign_id', $1::uuid, 'customer_id', $2::uuid),
                  job_key => 'send_recipient:' || $1 || ':' || $2)`,
        [id, customer?.customer_id],
      );
    }
    const raced = customers[0]?.customer_id;
    const other = customers[1]?.customer_id;

    const worker = await db.pool.connect();
    const operator = await db.pool.connect();
    const waiting = async (client: typeof worker) => {
      const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]
        ?.pid;
      return async () =>
        (
          await one<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity
              where pid = $1 and wait_event_type = 'Lock'`,
            [pid],
          )
        ).n === 1;
    };
    const workerWaits = await waiting(worker);
    const operatorWaits = await waiting(operator);
    try {
      // The worker takes the job (what graphile-worker's job fetch does to it) while the
      // operator's resume is between add_jobs' two statements: the upsert waits for the lock.
      await worker.query('begin');
      const locked = await worker.query(
        `update graphile_worker._private_jobs
            set locked_at = now(), locked_by = 'racing-worker', attempts = attempts + 1
          where key = $1`,
        [`send_recipient:${id}:${raced}`],
      );
      t.is(locked.rowCount, 1);
      await operator.query('begin');
      const resumed = operator.query('select resume_campaign($1) as s', [id]);
      await waitFor(operatorWaits, { what: 'the resume to wait for the job the worker took' });
      await worker.query('commit');
      t.is((await resumed).rows[0]?.s, 'queued');
      const successors = await db.pool.query(
        `select 1 from graphile_worker.jobs where key = $1 and locked_at is null`,
        [`send_recipient:${id}:${raced}`],
      );
      t.is(successors.rowCount, 0, 'the race happened: the taken job got no successor');

      // The taken job claims before the resume has committed.
      let settled = false;
      const claim = worker
        .query<{ outcome: string }>(
          `select outcome from claim_recipients(array[$1]::uuid[], array[$2]::uuid[],
                  interval '5 minutes')`,
          [id, raced],
        )
        .finally(() => {
          settled = true;
        });
      while (!settled && !(await workerWaits())) await new Promise((r) => setTimeout(r, 20));
      await operator.query('commit');
      t.is((await claim).rows[0]?.outcome, 'claimed', 'sent by the job that was taken');
    } finally {
      worker.release();
      operator.release();
    }
    const available = await db.pool.query<{ key: string }>(
      `select key from graphile_worker.jobs
        where key like 'send_recipient:' || $1 || ':%' and locked_at is null`,
      [id],
    );
    t.deepEqual(
      available.rows.map((j) => j.key),
      [`send_recipient:${id}:${other}`],
      'the other pending recipient has a job no worker holds',
    );
  },
);
