// The README's "Operations with psql" lines, run verbatim (through psql when it is installed) against
// a database holding what they refer to. The block is read from README.md.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import pg from 'pg';
import { databaseForFile } from '../helpers/db.ts';

// The README's psql block, verbatim: the test runs what users will paste.
const README_PSQL = (() => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const block = /<!-- psql-block -->\n```sql\n([\s\S]*?)```\n<!-- \/psql-block -->/.exec(readme);
  if (!block?.[1]) throw new Error('README.md has no psql block');
  return block[1];
})();

const CAMPAIGN = '6f1c2a9e-4b7d-4e21-9c3a-1d2e3f4a5b6c';
const IN_DOUBT_SENT = 'a4e5f6a7-0b1c-4d2e-8f30-415263748596';
const IN_DOUBT_RESEND = 'b5f6a7b8-1c2d-4e3f-9041-526374859607';
const PENDING = 'c6a7b8c9-2d3e-4f40-a152-637485960718';

const db = databaseForFile();
test.before(async () => {
  await db.pool.query(`
    insert into templates (template_id, provider, provider_template_name, week_of_month, version)
    values ('d7b8c9d0-3e4f-4051-b263-748596071829', 'ses', 'weekly-2', 2, 1);
    insert into campaigns (campaign_id, campaign_name, week_of_month, generated_date, template_id)
    values ('${CAMPAIGN}', 'week 2, 2026-10-12', 2, '2026-10-12', 'd7b8c9d0-3e4f-4051-b263-748596071829');
    insert into customers (customer_id, email) values
      ('${IN_DOUBT_SENT}', 'dora@example.com'), ('${IN_DOUBT_RESEND}', 'ed@example.com'),
      ('${PENDING}', 'carl@example.com');
    insert into campaign_recipients (campaign_id, customer_id, email, recipient_status, attempt_count, last_attempt_at)
    values ('${CAMPAIGN}', '${IN_DOUBT_SENT}', 'dora@example.com', 'in_doubt', 1, now() - interval '1 hour'),
           ('${CAMPAIGN}', '${IN_DOUBT_RESEND}', 'ed@example.com', 'in_doubt', 1, now() - interval '1 hour'),
           ('${CAMPAIGN}', '${PENDING}', 'carl@example.com', 'pending', 0, null);
  `);
  const failed = await db.pool.query<{ id: string }>(
    `select id from graphile_worker.add_job('send_recipient', json_build_object('campaign_id', 'x'))`,
  );
  await db.pool.query(
    "select graphile_worker.permanently_fail_jobs(array[$1::bigint], 'malformed payload')",
    [failed.rows[0]?.id],
  );
});

function hasPsql(): boolean {
  return spawnSync('psql', ['--version']).status === 0;
}

async function runVerbatim(t: import('ava').ExecutionContext): Promise<void> {
  if (hasPsql()) {
    const result = spawnSync('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', db.url, '-f', '-'], {
      input: README_PSQL,
      encoding: 'utf8',
    });
    t.log('ran through psql');
    if (result.status !== 0) throw new Error(`psql failed:\n${result.stderr}\n${result.stdout}`);
    t.regex(result.stdout, /queued/);
    return;
  }
  // No psql on this machine: the same text as one simple-protocol query, statement by statement.
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    t.log('psql not installed: ran through node-postgres');
    await client.query(README_PSQL);
  } finally {
    await client.end();
  }
}

test('the README psql lines run verbatim and do what they say', async (t) => {
  await runVerbatim(t);
  const q = async <T>(sql: string) => (await db.pool.query(sql)).rows as T[];

  const [campaign] = await q<{ status: string }>(
    `select status from campaigns where campaign_id = '${CAMPAIGN}'`,
  );
  t.is(campaign?.status, 'queued');
  const recipients = await q<{ customer_id: string; recipient_status: string }>(
    `select customer_id, recipient_status from campaign_recipients
      where campaign_id = '${CAMPAIGN}' order by customer_id`,
  );
  t.deepEqual(
    recipients.map((r) => [r.customer_id, r.recipient_status]),
    [
      [IN_DOUBT_SENT, 'sent'],
      [IN_DOUBT_RESEND, 'pending'],
      [PENDING, 'pending'],
    ],
  );

  const suppressed = await q<{ email: string; reason: string }>(
    "select email, reason from suppression_list where email in ('ann@example.com', 'bob@example.com')",
  );
  t.deepEqual(suppressed, [{ email: 'bob@example.com', reason: 'unsubscribe' }]);

  const jobs = await q<{ task_identifier: string; n: number; failed: number }>(
    `select task_identifier, count(*)::int as n,
            (count(*) filter (where attempts >= max_attempts))::int as failed
       from graphile_worker.jobs group by 1 order by 1`,
  );
  t.deepEqual(jobs, [
    { task_identifier: 'generate_campaign', n: 1, failed: 0 },
    { task_identifier: 'process_ses_event', n: 1, failed: 0 },
    // The retried malformed job, and one per pending recipient (job keys: the raw add_job added
    // one without a key for carl; queue and resend keyed ones for carl and ed).
    { task_identifier: 'send_recipient', n: 4, failed: 0 },
  ]);

  const actions = await q<{ action: string }>(
    'select action from operator_actions order by action_id',
  );
  t.deepEqual(
    actions.map((a) => a.action),
    [
      'enqueue_generate_campaign',
      'queue_campaign',
      'pause_campaign',
      'resume_campaign',
      'suppress',
      'suppress',
      'unsuppress',
      'retry_jobs',
      'resolve_in_doubt',
      'resolve_in_doubt',
    ],
  );
});
