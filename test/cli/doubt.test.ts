import test from 'ava';
import { runCli } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createRecipient, createSendingCampaign } from '../helpers/factories.ts';

const db = databaseForFile();
let campaignId: string;
test.before(async () => {
  campaignId = await createSendingCampaign(db.pool);
});

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db.url,
  LOG_LEVEL: 'warn',
  ...extra,
});

function inDoubt(email: string) {
  return createRecipient(db.pool, campaignId, 'in_doubt', {
    email,
    attemptAt: new Date(Date.now() - 3 * 3_600_000),
    lastError: 'SendEmail timed out',
  });
}

async function recipient(customerId: string) {
  const { rows } = await db.pool.query<{ recipient_status: string; last_error: string }>(
    'select recipient_status, last_error from campaign_recipients where campaign_id = $1 and customer_id = $2',
    [campaignId, customerId],
  );
  return rows[0];
}

test('doubt list shows in-doubt recipients; resolve --sent marks one sent, with the act recorded', async (t) => {
  const una = await inDoubt('una@example.com');
  const list = await runCli(['doubt', 'list', '--campaign', campaignId], env());
  t.is(list.code, 0, list.stderr);
  t.regex(
    list.stdout,
    new RegExp(
      `${campaignId}\\s+${una.customer_id}\\s+una@example\\.com\\s+1\\s+\\S+ \\S+\\s+3h\\s+0\\s+SendEmail timed out`,
    ),
  );

  const resolved = await runCli(
    ['doubt', 'resolve', campaignId, 'una@example.com', '--sent', '--note', 'in the SES console'],
    env({ LOG_LEVEL: 'info' }),
  );
  t.is(resolved.code, 0, resolved.stderr);
  t.regex(resolved.stdout, /: sent$/m);
  t.like(await recipient(una.customer_id), { recipient_status: 'sent' });
  const log = resolved.stderr.split('\n').find((l) => l.includes('resolved an in-doubt recipient'));
  t.truthy(log);
  t.notRegex(log ?? '', /una@example\.com/);
  const audit = await db.pool.query(
    "select note, details->>'decision' as decision from operator_actions where action = 'resolve_in_doubt' and customer_id = $1",
    [una.customer_id],
  );
  t.deepEqual(audit.rows, [{ note: 'in the SES console', decision: 'sent' }]);

  const twice = await runCli(['doubt', 'resolve', campaignId, una.customer_id, '--sent'], env());
  t.is(twice.code, 1);
  t.regex(twice.stderr, /is sent, not in_doubt; nothing changed/);
});

test('resolve --resend sets the recipient pending and enqueues exactly one send', async (t) => {
  const vic = await inDoubt('vic@example.com');
  const result = await runCli(['doubt', 'resolve', campaignId, vic.customer_id, '--resend'], env());
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /pending; send_recipient job added/);
  t.like(await recipient(vic.customer_id), { recipient_status: 'pending' });
  const jobs = await db.pool.query(
    `select count(*)::int as n from graphile_worker.jobs where task_identifier = 'send_recipient'
        and key = 'send_recipient:' || $1 || ':' || $2`,
    [campaignId, vic.customer_id],
  );
  t.is(jobs.rows[0]?.n, 1);
});

test('resolve --failed marks the recipient failed and sends nothing', async (t) => {
  const uma = await inDoubt('uma@example.com');
  const result = await runCli(
    ['doubt', 'resolve', campaignId, 'uma@example.com', '--failed', '--note', 'refused (503)'],
    env(),
  );
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /: failed$/m);
  t.like(await recipient(uma.customer_id), { recipient_status: 'failed' });
  const jobs = await db.pool.query(
    `select count(*)::int as n from graphile_worker.jobs where task_identifier = 'send_recipient'
        and key = 'send_recipient:' || $1 || ':' || $2`,
    [campaignId, uma.customer_id],
  );
  t.is(jobs.rows[0]?.n, 0, 'no send');
});

test('resolve needs one explicit decision; unknown recipients exit 1', async (t) => {
  const wes = await inDoubt('wes@example.com');
  for (const flags of [[], ['--sent', '--resend'], ['--resend', '--failed']]) {
    const result = await runCli(['doubt', 'resolve', campaignId, wes.customer_id, ...flags], env());
    t.is(result.code, 2, flags.join(' '));
    t.regex(result.stderr, /--sent .*--resend .* or --failed/);
  }
  t.is((await runCli(['doubt', 'resolve', 'x', wes.customer_id, '--sent'], env())).code, 2);
  const unknown = await runCli(
    ['doubt', 'resolve', campaignId, 'xan@example.com', '--sent'],
    env(),
  );
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /no customer xan@example\.com/);
  t.like(await recipient(wes.customer_id), { recipient_status: 'in_doubt' });
});

for (const command of [['doubt'], ['doubt', 'list'], ['doubt', 'resolve']]) {
  test(`mailer ${command.join(' ')} --help prints usage and exits 0`, async (t) => {
    const result = await runCli([...command, '--help']);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /Usage: mailer doubt/);
  });
}
