// `mailer templates preview`: the subject and a body as the customer would get them; an internal
// template by the worker's renderer, an SES template by the local SES's TestRenderEmailTemplate,
// through the real SESv2 client.
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
    subject: 'Hi {{greeting_name}}',
    html: '<p>Hello {{name}} from {{company}}</p>',
    text: 'Hello {{greeting_name}},\nnews for {{country}}.\nStop: {{unsubscribe_url}}',
  });
  await createSesWeekTemplate(db.pool, ses.url, 2, 'weekly-2', {
    Subject: 'Grüße, {{greeting_name}}',
    Html: '<p>Hi {{name_html}} at {{company_html}}</p>',
    Text: 'Hi {{greeting_name}} at {{company}}',
  });
  await createTemplate(db.pool, { week_of_month: 3, html: '<p>{{name}}</p>', text: undefined });
  await db.pool.query(
    'update template_contents set text_body = null where template_id = (select template_id from templates where week_of_month = 3)',
  );
  await createCustomer(db.pool, {
    email: 'zoe@example.com',
    name: 'Zoë <b>',
    company: 'A & B',
    country: 'FR',
  });
  await db.pool.query(
    "insert into customers (email, name, company, country) values ('noname@example.com', null, 'Initech', 'DE')",
  );
});

const env = () => ({
  DATABASE_URL: db.url,
  SES_ENDPOINT: ses.url,
  LOG_LEVEL: 'warn',
  PUBLIC_URL: 'https://mail.example.test',
});

test('an internal template for a customer without a name greets "there"', async (t) => {
  const text = await runCli(
    ['templates', 'preview', '--week', '1', '--customer', 'NoName@example.com'],
    env(),
  );
  t.is(text.code, 0, text.stderr);
  t.is(
    text.stdout,
    'Subject: Hi there\n\nHello there,\nnews for DE.\n' +
      'Stop: https://mail.example.test/unsubscribe/00000000-0000-0000-0000-000000000000\n',
  );
  t.regex(text.stderr, /template version 1 \(internal\), for NoName@example.com/);
  const html = await runCli(
    ['templates', 'preview', '--week', '1', '--customer', 'zoe@example.com', '--format', 'html'],
    env(),
  );
  t.is(html.code, 0, html.stderr);
  t.is(html.stdout, 'Subject: Hi Zoë <b>\n\n<p>Hello Zoë &lt;b&gt; from A &amp; B</p>\n');
});

test('sample data without --customer', async (t) => {
  const result = await runCli(['templates', 'preview', '--week', '1', '--json'], env());
  t.is(result.code, 0, result.stderr);
  t.like(JSON.parse(result.stdout), { customer_id: null, subject: 'Hi Ada Lovelace' });
});

test('an SES template is rendered by SES with the data a send carries', async (t) => {
  const text = await runCli(
    ['templates', 'preview', '--week', '2', '--customer', 'zoe@example.com'],
    env(),
  );
  t.is(text.code, 0, text.stderr);
  t.is(text.stdout, 'Subject: Grüße, Zoë <b>\n\nHi Zoë <b> at A & B\n');
  t.regex(text.stderr, /\(ses weekly-2, rendered by SES\)/);
  const html = await runCli(
    ['templates', 'preview', '--week', '2', '--customer', 'zoe@example.com', '--format', 'html'],
    env(),
  );
  t.is(html.stdout, 'Subject: Grüße, Zoë <b>\n\n<p>Hi Zoë &lt;b&gt; at A &amp; B</p>\n');
});

test('no such week, customer or part is one line and exit 1', async (t) => {
  const week = await runCli(['templates', 'preview', '--week', '4'], env());
  t.is(week.code, 1);
  t.regex(week.stderr, /no active template for week 4/);
  const customer = await runCli(
    ['templates', 'preview', '--week', '1', '--customer', 'who@example.com'],
    env(),
  );
  t.is(customer.code, 1);
  t.regex(customer.stderr, /no customer who@example.com/);
  const part = await runCli(['templates', 'preview', '--week', '3'], env());
  t.is(part.code, 1);
  t.regex(part.stderr, /has no text part; try --format html/);
  const format = await runCli(['templates', 'preview', '--week', '1', '--format', 'pdf'], env());
  t.is(format.code, 2);
});
