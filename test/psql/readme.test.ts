// The README's "Operations with psql" lines, run verbatim (through psql when it is installed) against
// a database holding what they refer to, then a worker runs every job they left behind: the block
// is safe to paste when psql reports no error, no job it added fails for good, and no draft is left.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import pg from 'pg';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { waitFor } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import { startWorkerInProcess } from '../helpers/worker.ts';

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
const TEMPLATE = 'd7b8c9d0-3e4f-4051-b263-748596071829';

const db = databaseForFile();
test.before(async () => {
  // An older, finished campaign first: the block must pick the newest one by itself.
  await db.pool.query(`
    insert into templates (template_id, provider, provider_template_name, week_of_month, version)
    values ('${TEMPLATE}', 'internal', 'weekly-2', 2, 1);
    insert into template_contents (template_id, subject, html_body, text_body)
    values ('${TEMPLATE}', 'Week 2', '<p>Hi {{name}}</p><a href="{{unsubscribe_url}}">unsubscribe</a>',
            'Hi {{name}}. Unsubscribe: {{unsubscribe_url}}');
    insert into campaigns (campaign_name, week_of_month, generated_date, template_id, status, created_at, updated_at)
    values ('week 2, 2026-09-14', 2, '2026-09-14', '${TEMPLATE}', 'done', now() - interval '1 day', now() - interval '1 day');
    insert into campaigns (campaign_id, campaign_name, week_of_month, generated_date, template_id)
    values ('${CAMPAIGN}', 'week 2, 2026-10-12', 2, '2026-10-12', '${TEMPLATE}');
    insert into customers (customer_id, email, name) values
      ('${IN_DOUBT_SENT}', 'dora@example.com', 'Dora'), ('${IN_DOUBT_RESEND}', 'ed@example.com', 'Ed'),
      ('${PENDING}', 'carl@example.com', 'Carl');
    insert into campaign_recipients (campaign_id, customer_id, email, recipient_status, attempt_count, last_attempt_at, template_data)
    values ('${CAMPAIGN}', '${IN_DOUBT_SENT}', 'dora@example.com', 'in_doubt', 1, now() - interval '1 hour', '{"name": "Dora"}'),
           ('${CAMPAIGN}', '${IN_DOUBT_RESEND}', 'ed@example.com', 'in_doubt', 1, now() - interval '1 hour', '{"name": "Ed"}'),
           ('${CAMPAIGN}', '${PENDING}', 'carl@example.com', 'pending', 0, null, '{"name": "Carl"}');
    -- A Delivery SES published for carl's message of an earlier attempt, to be applied again.
    insert into email_events_op (event_type, email, campaign_id, customer_id, ses_message_id, payload)
    values ('delivery', 'carl@example.com', '${CAMPAIGN}', '${PENDING}', 'm-carl-1',
            json_build_object('eventType', 'Delivery',
              'mail', json_build_object('messageId', 'm-carl-1', 'timestamp', '2026-10-12T06:00:00Z',
                                        'destination', json_build_array('carl@example.com'),
                                        'tags', json_build_object('campaign_id', json_build_array('${CAMPAIGN}'),
                                                                  'customer_id', json_build_array('${PENDING}'))),
              'delivery', json_build_object('timestamp', '2026-10-12T06:00:01Z',
                                            'recipients', json_build_array('carl@example.com'))));
  `);
  // Two jobs failed for good: one that never can succeed (made by hand, malformed) and one that
  // failed while SES was unreachable, worth running again.
  const failed = await db.pool.query<{ id: string }>(
    `select id from graphile_worker.add_job('send_recipient', json_build_object('campaign_id', 'x'))
     union all
     select id from graphile_worker.add_job('send_recipient',
       json_build_object('campaign_id', '${CAMPAIGN}', 'customer_id', '${PENDING}'))`,
  );
  await db.pool.query(
    `select graphile_worker.permanently_fail_jobs(array[$1::bigint],
       'send_recipient: malformed payload (customer_id: Required)')`,
    [failed.rows[0]?.id],
  );
  await db.pool.query(
    `select graphile_worker.permanently_fail_jobs(array[$1::bigint],
       'send_recipient: SendEmail failed: connect ECONNREFUSED 10.0.0.9:443')`,
    [failed.rows[1]?.id],
  );
});

function hasPsql(): boolean {
  return spawnSync('psql', ['--version']).status === 0;
}

// Without psql, its two meta-commands the block uses, over node-postgres: `\gset` ends a query
// whose one row becomes variables, `:'name'` is a variable as a quoted literal.
async function runWithoutPsql(client: pg.Client, script: string): Promise<void> {
  const vars = new Map<string, string>();
  let sql = '';
  for (const line of script.split('\n')) {
    if (/^\s*(--.*)?$/.test(line)) continue;
    const gset = /\\gset\s*$/.test(line);
    sql += `${line.replace(/\\gset\s*$/, '')}\n`;
    if (!gset && !/;\s*$/.test(line)) continue;
    const text = sql.replace(/:'(\w+)'/g, (_, name: string) => {
      const value = vars.get(name);
      if (value === undefined) throw new Error(`psql variable ${name} is not set`);
      return client.escapeLiteral(value);
    });
    sql = '';
    const result = await client.query(text);
    if (!gset) continue;
    const row = result.rows[0] as Record<string, unknown> | undefined;
    if (!row || result.rows.length > 1) throw new Error(`\\gset wants one row: ${text}`);
    for (const [name, value] of Object.entries(row)) vars.set(name, String(value));
  }
}

async function runVerbatim(t: import('ava').ExecutionContext): Promise<string> {
  if (hasPsql()) {
    const result = spawnSync('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', db.url, '-f', '-'], {
      input: README_PSQL,
      encoding: 'utf8',
    });
    t.log('ran through psql');
    if (result.status !== 0) throw new Error(`psql failed:\n${result.stderr}\n${result.stdout}`);
    t.is(result.stderr.trim(), '', 'psql printed no error or warning');
    return result.stdout;
  }
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    t.log('psql not installed: ran through node-postgres');
    await runWithoutPsql(client, README_PSQL);
  } finally {
    await client.end();
  }
  return '';
}

test('the README psql block pastes without an error, a failed job or a draft left behind', async (t) => {
  t.regex(README_PSQL, /\\gset/, 'the ids come from a query, not from placeholders');
  t.notRegex(
    README_PSQL,
    /'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'/,
    'no made-up uuid to replace',
  );
  // Reads first; then every statement that changes data follows a comment saying "changes:".
  const CHANGES =
    /^select (queue_|pause_|resume_|retry_|resolve_|suppress_|unsuppress_|enqueue_|graphile_worker\.|count\(\*\) from graphile_worker\.)/;
  let comment: string[] = [];
  let changing = false;
  for (const line of README_PSQL.split('\n')) {
    if (line.startsWith('--')) {
      if (!changing && line.includes('from here on changes data')) changing = true;
      comment.push(line);
      continue;
    }
    if (!line.startsWith('select')) {
      comment = [];
      continue;
    }
    if (CHANGES.test(line)) {
      t.true(changing, `a change among the reads: ${line}`);
      t.true(comment.join(' ').includes('changes:'), `no "changes:" comment above ${line}`);
    } else {
      t.false(changing, `a read among the changes: ${line}`);
    }
  }

  const output = await runVerbatim(t);
  if (output) t.regex(output, /queued/);
  const q = async <T>(sql: string) => (await db.pool.query(sql)).rows as T[];

  // What the lines did, on the newest campaign (the block chose it; the older one is untouched).
  const campaigns = await q<{ campaign_name: string; status: string }>(
    'select campaign_name, status from campaigns order by generated_date',
  );
  t.deepEqual(campaigns, [
    { campaign_name: 'week 2, 2026-09-14', status: 'done' },
    { campaign_name: 'week 2, 2026-10-12', status: 'queued' },
  ]);
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
    // The malformed job is gone; the one SES refused runs again; queue and resend added keyed
    // jobs for carl and ed, and the raw add_job one more for carl.
    { task_identifier: 'send_recipient', n: 4, failed: 0 },
  ]);
  const actions = await q<{ action: string }>(
    'select action from operator_actions order by action_id',
  );
  t.deepEqual(
    actions.map((a) => a.action),
    [
      'queue_campaign',
      'pause_campaign',
      'resume_campaign',
      'resolve_in_doubt',
      'resolve_in_doubt',
      'suppress',
      'suppress',
      'unsuppress',
      'retry_jobs',
      'enqueue_generate_campaign',
    ],
  );

  // Then a worker runs every job the block left: none fails, both campaigns end done.
  const ses = await startLocalSes();
  t.teardown(() => ses.close());
  await startWorkerInProcess(t, db.url, ses.url);
  await waitFor(
    async () =>
      (
        await q<{ n: number }>(
          `select count(*)::int as n from graphile_worker.jobs where attempts < max_attempts
              and (locked_at is not null or run_at <= now() + interval '1 second')`,
        )
      )[0]?.n === 0 &&
      (await q<{ n: number }>("select count(*)::int as n from campaigns where status <> 'done'"))[0]
        ?.n === 0,
    { what: 'the jobs the block left to run, and both campaigns to finish', timeoutMs: 60_000 },
  );
  t.deepEqual(await q('select id, task_identifier, last_error from failed_jobs()'), []);
  t.deepEqual(await q("select campaign_name from campaigns where status = 'draft'"), []);
  t.deepEqual(
    await q<{ campaign_name: string; status: string }>(
      'select campaign_name, status from campaigns order by generated_date',
    ),
    [
      { campaign_name: 'week 2, 2026-09-14', status: 'done' },
      { campaign_name: 'week 2, 2026-10-12', status: 'done' },
      { campaign_name: 'week 2, 2026-11-09', status: 'done' },
    ],
  );
  // carl and ed of the queued campaign, and the three customers of the generated one.
  t.deepEqual(
    ses
      .sent()
      .flatMap((m) => m.to)
      .sort(),
    [
      'carl@example.com',
      'carl@example.com',
      'dora@example.com',
      'ed@example.com',
      'ed@example.com',
    ],
  );
});
