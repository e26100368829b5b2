import test from 'ava';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createCampaign, createRecipient, createTemplate } from '../helpers/factories.ts';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => {
  await db?.drop();
});

const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: db.url, ...extra });

async function entry(email: string) {
  const { rows } = await db.pool.query(
    'select reason, source from suppression_list where email = $1',
    [email],
  );
  return rows[0];
}

test('add suppresses an address (and its pending recipients); check and list show it', async (t) => {
  const template = await createTemplate(db.pool);
  const campaign = await createCampaign(db.pool, { template_id: template.template_id });
  const customer = await createRecipient(db.pool, campaign.campaign_id, 'pending', {
    email: 'pat@example.com',
    attempts: 0,
    attemptAt: null,
  });

  const added = await runCli(
    ['suppress', 'add', 'Pat@Example.com', '--note', 'asked by phone'],
    env(),
  );
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /pat@example\.com suppressed \(manual, ops\)/);
  t.deepEqual(await entry('pat@example.com'), { reason: 'manual', source: 'ops' });
  const recipient = await db.pool.query(
    'select recipient_status from campaign_recipients where customer_id = $1',
    [customer.customer_id],
  );
  t.is(recipient.rows[0]?.recipient_status, 'suppressed');

  const again = await runCli(['suppress', 'add', 'pat@example.com', '--reason', 'manual'], env());
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /already suppressed \(manual, by ops since .*\); unchanged/);

  const check = await runCli(['suppress', 'check', 'PAT@example.com'], env());
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, /pat@example\.com: SUPPRESSED\n\s+reason\s+manual\n\s+source\s+ops/);
  const clear = await runCli(['suppress', 'check', 'quinn@example.com', '--json'], env());
  t.deepEqual(JSON.parse(clear.stdout), {
    email: 'quinn@example.com',
    suppressed: false,
    entry: null,
  });

  const list = await runCli(['suppress', 'list', '--reason', 'manual'], env());
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /pat@example\.com\s+manual\s+ops/);
  const json = await runCli(['suppress', 'list', '--source', 'ses', '--json'], env());
  t.is((JSON.parse(json.stdout) as { total: number }).total, 0);
});

test('remove is an explicit, recorded act: a note always, --force for an unsubscribe', async (t) => {
  await db.pool.query(
    `insert into suppression_list (email, reason, source)
     values ('rae@example.com', 'bounce_hard', 'ses'), ('sam@example.com', 'unsubscribe', 'user')`,
  );
  const noNote = await runCli(['suppress', 'remove', 'rae@example.com'], env());
  t.is(noNote.code, 2);
  t.regex(noNote.stderr, /--note/);

  const removed = await runCli(
    ['suppress', 'remove', 'rae@example.com', '--note', 'mailbox fixed, ticket 42'],
    env({ LOG_LEVEL: 'info' }),
  );
  t.is(removed.code, 0, removed.stderr);
  t.regex(removed.stdout, /removed from the suppression list \(was bounce_hard, by ses since/);
  t.is(await entry('rae@example.com'), undefined);
  const log = (removed.stdout + removed.stderr)
    .split('\n')
    .find((l) => l.includes('removed an address from the suppression list'));
  t.truthy(log, 'the act is logged');
  t.notRegex(log ?? '', /rae@example\.com/, 'without the address');

  const refused = await runCli(['suppress', 'remove', 'sam@example.com', '--note', 'oops'], env());
  t.is(refused.code, 1);
  t.regex(refused.stderr, /suppressed for unsubscribe: removing that needs p_force/);
  t.deepEqual(await entry('sam@example.com'), { reason: 'unsubscribe', source: 'user' });
  const forced = await runCli(
    ['suppress', 'remove', 'sam@example.com', '--note', 'resubscribed on the website', '--force'],
    env(),
  );
  t.is(forced.code, 0, forced.stderr);
  t.is(await entry('sam@example.com'), undefined);

  const audit = await db.pool.query<{
    email: string;
    note: string;
    details: Record<string, unknown>;
    application_name: string;
  }>(
    `select email, note, details, application_name from operator_actions
      where action = 'unsuppress' and email in ('rae@example.com', 'sam@example.com') order by action_id`,
  );
  t.deepEqual(
    audit.rows.map((a) => [a.email, a.note, a.details.reason, a.details.forced]),
    [
      ['rae@example.com', 'mailbox fixed, ticket 42', 'bounce_hard', false],
      ['sam@example.com', 'resubscribed on the website', 'unsubscribe', true],
    ],
  );
  t.regex(audit.rows[0]?.application_name ?? '', /^mailer-cli:/);

  const absent = await runCli(['suppress', 'remove', 'tom@example.com', '--note', 'x'], env());
  t.is(absent.code, 0, absent.stderr);
  t.regex(absent.stdout, /not suppressed; nothing changed/);
});

test('a stronger reason replaces a weaker entry, and remove needs --force once an unsubscribe was recorded', async (t) => {
  await db.pool.query(
    `insert into suppression_list (email, reason, source) values ('val@example.com', 'manual', 'ops')`,
  );
  const stronger = await runCli(
    ['suppress', 'add', 'val@example.com', '--reason', 'unsubscribe', '--note', 'asked by phone'],
    env(),
  );
  t.is(stronger.code, 0, stronger.stderr);
  t.regex(stronger.stdout, /val@example\.com was suppressed for manual; now unsubscribe \(ops\)/);
  t.deepEqual(await entry('val@example.com'), { reason: 'unsubscribe', source: 'ops' });

  // Lifted with her consent, later suppressed by hand for another reason: the unsubscribe she
  // once made still needs --force to lift.
  const lifted = await runCli(
    ['suppress', 'remove', 'val@example.com', '--note', 'resubscribed, ticket 50', '--force'],
    env(),
  );
  t.is(lifted.code, 0, lifted.stderr);
  await runCli(['suppress', 'add', 'val@example.com', '--note', 'mailbox full'], env());
  t.deepEqual(await entry('val@example.com'), { reason: 'manual', source: 'ops' });
  const refused = await runCli(
    ['suppress', 'remove', 'val@example.com', '--note', 'mailbox fixed'],
    env(),
  );
  t.is(refused.code, 1);
  t.regex(
    refused.stderr,
    /val@example\.com is suppressed for manual, but an unsubscribe was recorded for it on \d{4}-\d\d-\d\d \(operator_actions #\d+ \(unsuppress\)\): removing it needs p_force/,
  );
  t.deepEqual(await entry('val@example.com'), { reason: 'manual', source: 'ops' });
  const forced = await runCli(
    [
      'suppress',
      'remove',
      'val@example.com',
      '--note',
      'mailbox fixed, consent on file',
      '--force',
    ],
    env(),
  );
  t.is(forced.code, 0, forced.stderr);
  t.is(await entry('val@example.com'), undefined);
});

test('an address that is not one is bad usage', async (t) => {
  for (const args of [
    ['suppress', 'add', 'nobody'],
    ['suppress', 'add', 'a@localhost'],
    ['suppress', 'add', 'x@example.com', '--reason', 'annoying'],
    ['suppress', 'check', 'nobody'],
  ]) {
    const result = await runCli(args, env());
    t.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
  }
});

for (const command of [['suppress'], ['suppress', 'remove'], ['suppress', 'list']]) {
  test(`mailer ${command.join(' ')} --help prints usage and exits 0`, async (t) => {
    const result = await runCli([...command, '--help']);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /Usage: mailer suppress/);
  });
}
