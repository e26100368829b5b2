// `mailer campaign test`: the week's template, rendered for a customer or sample data, sent with
// the real SESv2 client to the local SES, to the given addresses only, marked as a test, with no
// campaign or campaign_recipients row; recorded in operator_actions.
import test from 'ava';
import { runCli } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';
import { createSesWeekTemplate, localSesForFile } from '../ses-local/helpers.ts';

const db = databaseForFile();
const ses = localSesForFile();
test.before(async () => {
  await createTemplate(db.pool, {
    week_of_month: 1,
    subject: 'Week 1 for {{greeting_name}}',
    html: '<p>Hi {{greeting_name}} of {{company}}</p>',
    text: 'Hi {{greeting_name}}, from {{country}}. Stop: {{unsubscribe_url}}',
  });
  await createSesWeekTemplate(db.pool, ses.url, 2, 'weekly-2', {
    Subject: 'Week 2 for {{greeting_name}}',
    Html: '<p>Hi {{greeting_name_html}}</p>',
    Text: 'Hi {{greeting_name}} at {{company}}',
  });
  await createCustomer(db.pool, { email: 'ann@example.com', name: 'Ann <Admin>', company: 'Acme' });
  await db.pool.query(
    "insert into customers (email, name, company, country) values ('noname@example.com', null, 'Initech', 'DE')",
  );
});

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db.url,
  SES_ENDPOINT: ses.url,
  LOG_LEVEL: 'warn',
  PUBLIC_URL: 'https://mail.example.test',
  MAIL_FROM: 'News <news@example.test>',
  ...extra,
});

async function noCampaignRows(t: import('ava').ExecutionContext) {
  const { rows } = await db.pool.query<{ campaigns: number; recipients: number }>(
    `select (select count(*)::int from campaigns) as campaigns,
            (select count(*)::int from campaign_recipients) as recipients`,
  );
  t.deepEqual(rows[0], { campaigns: 0, recipients: 0 });
}

test.serial('sends an internal template for a customer to the given addresses only', async (t) => {
  ses.clear();
  const result = await runCli(
    [
      'campaign',
      'test',
      '--week',
      '1',
      '--to',
      'qa@example.test',
      '--to',
      'Lead@Example.test',
      '--customer',
      'noname@example.com',
    ],
    env(),
  );
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /test of week 1 sent to qa@example.test \(0100/);
  const sent = ses.sent();
  t.deepEqual(
    sent.map((m) => m.to),
    [['qa@example.test'], ['lead@example.test']],
  );
  const message = sent[0];
  // No name: the fallback, never "Hi ,".
  t.is(message?.subject, '[TEST] Week 1 for there');
  t.is(
    message?.text,
    'Hi there, from DE. Stop: https://mail.example.test/unsubscribe/00000000-0000-0000-0000-000000000000',
  );
  t.is(message?.html, '<p>Hi there of Initech</p>');
  t.like(message?.tags, { mailer_test: '1', campaign_id: 'test' });
  t.true(message?.headers.some((h) => h.name === 'X-Mailer-Test' && h.value === '1'));
  t.true(message?.headers.some((h) => h.name === 'List-Unsubscribe-Post'));
  t.is(message?.from, 'News <news@example.test>');
  await noCampaignRows(t);

  const { rows } = await db.pool.query(
    `select action, customer_id is not null as has_customer, details->'to' as to,
            jsonb_array_length(details->'message_ids') as ids
       from operator_actions where action = 'test_send'`,
  );
  t.deepEqual(rows, [
    {
      action: 'test_send',
      has_customer: true,
      to: ['qa@example.test', 'lead@example.test'],
      ids: 2,
    },
  ]);
});

test.serial('sends an SES template, rendered by SES, marked in its subject', async (t) => {
  ses.clear();
  const result = await runCli(
    ['campaign', 'test', '--week', '2', '--customer', 'ann@example.com', '--json'],
    env({ TEST_RECIPIENTS: 'team@example.test' }),
  );
  t.is(result.code, 0, result.stderr);
  const answer = JSON.parse(result.stdout) as { sent: { to: string }[] };
  t.deepEqual(
    answer.sent.map((s) => s.to),
    ['team@example.test'],
  );
  const [message] = ses.sent();
  t.deepEqual(message?.to, ['team@example.test']);
  t.is(message?.subject, '[TEST] Week 2 for Ann <Admin>');
  t.is(message?.html, '<p>Hi Ann &lt;Admin&gt;</p>');
  t.is(message?.text, 'Hi Ann <Admin> at Acme');
  t.like(message?.tags, { mailer_test: '1', campaign_id: 'test' });
  await noCampaignRows(t);
});

test.serial(
  'refuses without addresses, with a suppressed one, or an unknown customer',
  async (t) => {
    ses.clear();
    const none = await runCli(['campaign', 'test', '--week', '1'], env());
    t.is(none.code, 2);
    t.regex(none.stderr, /give --to ADDRESS .* or set TEST_RECIPIENTS/);
    await db.pool.query("select suppress_email('gone@example.test')");
    const suppressed = await runCli(
      ['campaign', 'test', '--week', '1', '--to', 'qa@example.test', '--to', 'gone@example.test'],
      env(),
    );
    t.is(suppressed.code, 1);
    t.regex(suppressed.stderr, /gone@example.test on the suppression list; nothing sent/);
    const unknown = await runCli(
      [
        'campaign',
        'test',
        '--week',
        '1',
        '--to',
        'qa@example.test',
        '--customer',
        'x@nowhere.test',
      ],
      env(),
    );
    t.is(unknown.code, 1);
    t.regex(unknown.stderr, /no customer x@nowhere.test/);
    const noTemplate = await runCli(
      ['campaign', 'test', '--week', '3', '--to', 'qa@example.test'],
      env(),
    );
    t.is(noTemplate.code, 1);
    t.regex(noTemplate.stderr, /no active template for week 3/);
    t.is(ses.sent().length, 0);
  },
);
