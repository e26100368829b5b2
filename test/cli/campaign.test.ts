import { randomUUID } from 'node:crypto';
import test from 'ava';
import { runCli, startCli, waitFor } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';

const db = databaseForFile();
test.before(async () => {
  await createTemplate(db.pool, { week_of_month: 1 });
  await createTemplate(db.pool, { week_of_month: 2 });
  for (let i = 0; i < 4; i++) await createCustomer(db.pool);
  await createCustomer(db.pool, { is_active: false });
});

// A public https PUBLIC_URL: without a local SES, generation refuses a localhost one.
const env = () => ({
  DATABASE_URL: db.url,
  LOG_LEVEL: 'warn',
  PUBLIC_URL: 'https://mail.example.test',
});

async function sendJobs(campaignId: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from graphile_worker.jobs
      where task_identifier = 'send_recipient' and key like 'send_recipient:' || $1 || ':%'`,
    [campaignId],
  );
  return rows[0]?.n ?? 0;
}

test('generate --no-send makes a draft once; queue, pause and resume drive it', async (t) => {
  const generate = ['campaign', 'generate', '--week', '1', '--date', '2030-01-06', '--no-send'];
  const first = await runCli([...generate, '--json'], env());
  t.is(first.code, 0, first.stderr);
  const campaign = JSON.parse(first.stdout) as {
    campaign_id: string;
    status: string;
    recipients: number;
    already_existed: boolean;
  };
  t.like(campaign, { status: 'draft', recipients: 4, already_existed: false });
  const again = await runCli(generate, env());
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, new RegExp(`${campaign.campaign_id}.*already existed; nothing changed`));
  t.is(await sendJobs(campaign.campaign_id), 0);

  const queued = await runCli(['campaign', 'queue', campaign.campaign_id], env());
  t.is(queued.code, 0, queued.stderr);
  t.regex(queued.stdout, /: queued$/m);
  t.is(await sendJobs(campaign.campaign_id), 4);

  const paused = await runCli(['campaign', 'pause', campaign.campaign_id], env());
  t.is(paused.code, 0, paused.stderr);
  t.regex(paused.stdout, /: paused$/m);
  const requeue = await runCli(['campaign', 'queue', campaign.campaign_id], env());
  t.is(requeue.code, 1);
  t.regex(requeue.stderr, /is paused.*resume/);
  const resumed = await runCli(['campaign', 'resume', campaign.campaign_id], env());
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, /: queued$/m);
  t.is(await sendJobs(campaign.campaign_id), 4, 'job keys keep one job per recipient');

  const list = await runCli(['campaign', 'list'], env());
  t.is(list.code, 0, list.stderr);
  t.regex(
    list.stdout,
    new RegExp(
      `${campaign.campaign_id}\\s+week 1, 2030-01-06\\s+1\\s+2030-01-06\\s+v1\\s+queued\\s+4\\s+4\\s+0`,
    ),
  );
});

test('generate queues by default and refuses a week without an active template', async (t) => {
  const sent = await runCli(['campaign', 'generate', '--week', '2', '--date', '2030-01-13'], env());
  t.is(sent.code, 0, sent.stderr);
  t.regex(sent.stdout, /\(week 2, 2030-01-13\): queued, 4 recipients/);
  const missing = await runCli(
    ['campaign', 'generate', '--week', '3', '--date', '2030-01-20'],
    env(),
  );
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no active template for week 3/);
});

test('generate takes the week from --date, and one campaign per week of the month unless --force', async (t) => {
  const derived = await runCli(
    ['campaign', 'generate', '--date', '2030-04-08', '--no-send', '--json'],
    env(),
  );
  t.is(derived.code, 0, derived.stderr);
  const first = JSON.parse(derived.stdout) as { campaign_id: string; campaign_name: string };
  t.is(first.campaign_name, 'week 2, 2030-04-08');

  const contradicts = await runCli(
    ['campaign', 'generate', '--week', '1', '--date', '2030-04-08', '--no-send'],
    env(),
  );
  t.is(contradicts.code, 2, 'a date outside the week is bad usage');
  t.regex(
    contradicts.stderr,
    /2030-04-08 is in week 2 of its month \(days 8-14\), not week 1; week 1 of 2030-04 is 2030-04-01 to 2030-04-07/,
  );
  const fifth = await runCli(['campaign', 'generate', '--date', '2030-04-29'], env());
  t.is(fifth.code, 2);
  t.regex(fifth.stderr, /2030-04-29 is in week 5 of its month .*--force/);

  // Generated on the 8th, then again on Saturday the 13th: the same week of April.
  const second = await runCli(['campaign', 'generate', '--date', '2030-04-13', '--no-send'], env());
  t.is(second.code, 1);
  t.regex(
    second.stderr,
    new RegExp(
      `week 2 of 2030-04 already has campaign ${first.campaign_id} \\(week 2, 2030-04-08, draft\\).*--force`,
    ),
  );
  const forced = await runCli(
    ['campaign', 'generate', '--date', '2030-04-13', '--no-send', '--force', '--json'],
    env(),
  );
  t.is(forced.code, 0, forced.stderr);
  t.like(JSON.parse(forced.stdout), {
    campaign_name: 'week 2, 2030-04-13',
    already_existed: false,
  });
  const { rows } = await db.pool.query(
    `select campaign_name from campaigns where to_char(generated_date, 'YYYY-MM') = '2030-04'
      order by generated_date`,
  );
  t.deepEqual(
    rows.map((r) => r.campaign_name),
    ['week 2, 2030-04-08', 'week 2, 2030-04-13'],
  );
});

test('bad arguments exit 2 and an unknown campaign exits 1', async (t) => {
  for (const args of [
    ['campaign', 'generate', '--week', '5'],
    ['campaign', 'generate', '--week', '1', '--date', '2030-02-30'],
    ['campaign', 'generate'],
    ['campaign', 'pause', 'not-a-uuid'],
    ['campaign', 'status'],
  ]) {
    const result = await runCli(args, env());
    t.is(result.code, 2, args.join(' '));
  }
  const unknown = await runCli(['campaign', 'pause', randomUUID()], env());
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /no campaign/);
  const status = await runCli(['campaign', 'status', randomUUID()], env());
  t.is(status.code, 1);
});

test('status counts recipients per status with send, bounce and complaint rates', async (t) => {
  const generated = await runCli(
    ['campaign', 'generate', '--week', '1', '--date', '2030-03-03', '--no-send', '--json'],
    env(),
  );
  const { campaign_id: id } = JSON.parse(generated.stdout) as { campaign_id: string };
  // Three accepted by SES (one bounced later), one still pending.
  await db.pool.query(
    `update campaign_recipients r set recipient_status = s.status, ses_message_id = s.msg,
            last_attempt_at = now() - interval '10 seconds', attempt_count = 1
       from (select customer_id, row_number() over (order by customer_id) as n
               from campaign_recipients where campaign_id = $1) o,
            (values (1, 'sent', 'm-1'), (2, 'sent', 'm-2'), (3, 'bounced', 'm-3')) s(n, status, msg)
      where r.campaign_id = $1 and r.customer_id = o.customer_id and o.n = s.n`,
    [id],
  );
  const text = await runCli(['campaign', 'status', id], env());
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /recipients 4: pending 1, sent 2, bounced 1/);
  t.regex(
    text.stdout,
    /accepted by SES 3; bounce rate 33\.33% \(1\), complaint rate 0\.000% \(0\)/,
  );
  t.regex(text.stdout, /draft: nothing is sent until it is queued/);
  t.notRegex(text.stdout, /send rate|ETA/, 'a draft sends nothing: no rate, no ETA');
  t.notRegex(text.stdout, /\[#/, 'no progress bar when stdout is not a terminal');

  const json = await runCli(['campaign', 'status', id, '--json'], env());
  const progress = JSON.parse(json.stdout) as {
    counts: Record<string, number>;
    accepted: number;
    bounce_rate: number;
    attempts_last_minute: number;
  };
  t.like(progress, { accepted: 3, attempts_last_minute: 3 });
  t.is(progress.bounce_rate, 0.333333);
  t.is(progress.counts.pending, 1);
});

test('status --watch refreshes until the campaign is done', async (t) => {
  const generated = await runCli(
    ['campaign', 'generate', '--week', '2', '--date', '2030-02-10', '--json'],
    env(),
  );
  const { campaign_id: id } = JSON.parse(generated.stdout) as { campaign_id: string };
  const watch = startCli(['campaign', 'status', id, '--watch', '--interval', '1'], env());
  t.teardown(() => watch.child.kill('SIGKILL'));
  await waitFor(async () => watch.output().includes('pending 4'), { what: 'first refresh' });
  await db.pool.query(
    `update campaign_recipients set recipient_status = 'sent', ses_message_id = gen_random_uuid()::text,
            last_attempt_at = now() where campaign_id = $1`,
    [id],
  );
  await db.pool.query("update campaigns set status = 'done' where campaign_id = $1", [id]);
  const exit = await Promise.race([
    watch.exited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000)),
  ]);
  t.deepEqual(exit, { code: 0, signal: null }, watch.output());
  t.regex(watch.output(), /: done\nrecipients 4: sent 4/);
});

for (const command of [['campaign'], ['campaign', 'generate'], ['campaign', 'status']]) {
  test(`mailer ${command.join(' ')} --help prints usage and exits 0`, async (t) => {
    const result = await runCli([...command, '--help']);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /Usage: mailer campaign/);
  });
}
