import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetEmailTemplateCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { type LocalSes, startLocalSes } from '../../src/ses-local/server.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
let ses: LocalSes;
let dir: string;
test.before(async () => {
  db = await createTestDatabase();
  ses = await startLocalSes();
  dir = await mkdtemp(join(tmpdir(), 'mailer-templates-'));
  await writeFile(
    join(dir, 'body.html'),
    '<p>Hello {{name}}</p><a href="{{unsubscribe_url}}">x</a>',
  );
  await writeFile(join(dir, 'body.txt'), 'Hello {{name}}');
  await writeFile(join(dir, 'broken.html'), '<p>Hello {{#if name}}</p>');
});
test.after.always(async () => {
  await ses?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const env = () => ({ DATABASE_URL: db.url, SES_ENDPOINT: ses.url });

async function templates(week: number) {
  const { rows } = await db.pool.query<{ version: number; is_active: boolean; provider: string }>(
    'select version, is_active, provider from templates where week_of_month = $1 order by version',
    [week],
  );
  return rows;
}

test('add stores internal content as the next version; list shows which version is in use', async (t) => {
  const html = join(dir, 'body.html');
  const text = join(dir, 'body.txt');
  const base = [
    'templates',
    'add',
    '--provider',
    'internal',
    '--week',
    '1',
    '--subject',
    'Hi {{name}}',
  ];
  const first = await runCli([...base, '--html', html, '--text', text], env());
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /week 1 version 1, active/);
  const second = await runCli([...base, '--text', text, '--name', 'winter'], env());
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /week 1 version 2, active/);
  const content = await db.pool.query(
    `select c.subject, c.html_body, c.text_body from template_contents c
       join templates t using (template_id) where t.week_of_month = 1 and t.version = 1`,
  );
  t.deepEqual(content.rows[0], {
    subject: 'Hi {{name}}',
    html_body: '<p>Hello {{name}}</p><a href="{{unsubscribe_url}}">x</a>',
    text_body: 'Hello {{name}}',
  });

  const list = await runCli(['templates', 'list', '--week', '1'], env());
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /1\s+1\s+internal\s+week 1\s+yes\s+-\s+Hi \{\{name\}\}/);
  t.regex(list.stdout, /1\s+2\s+internal\s+winter\s+yes\s+yes\s+Hi/);

  // Rollback: version 1 becomes the only active one.
  const activate = await runCli(['templates', 'activate', '1/1'], env());
  t.is(activate.code, 0, activate.stderr);
  t.deepEqual(await templates(1), [
    { version: 1, is_active: true, provider: 'internal' },
    { version: 2, is_active: false, provider: 'internal' },
  ]);
  const json = await runCli(['templates', 'list', '--week', '1', '--json'], env());
  const rows = JSON.parse(json.stdout) as Array<{ version: number; in_use: boolean }>;
  t.deepEqual(
    rows.filter((r) => r.in_use).map((r) => r.version),
    [1],
  );

  const deactivate = await runCli(['templates', 'deactivate', '1/1'], env());
  t.is(deactivate.code, 0, deactivate.stderr);
  const none = await runCli(['templates', 'list', '--week', '1'], env());
  t.regex(none.stdout, /no active template for week 1/);
});

test('an ses template is created in SES with its files, or only registered without them', async (t) => {
  const created = await runCli(
    [
      'templates',
      'add',
      '--provider',
      'ses',
      '--week',
      '2',
      '--name',
      'weekly-2',
      '--subject',
      'Week 2, {{name}}',
      '--html',
      join(dir, 'body.html'),
    ],
    env(),
  );
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /created in SES as weekly-2/);
  const client = new SESv2Client({
    region: 'us-east-1',
    endpoint: ses.url,
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  t.teardown(() => client.destroy());
  const stored = await client.send(new GetEmailTemplateCommand({ TemplateName: 'weekly-2' }));
  t.is(stored.TemplateContent?.Subject, 'Week 2, {{name}}');

  // The same SES name again: SES refuses, and no database row is left behind.
  const again = await runCli(
    ['templates', 'add', '--provider', 'ses', '--week', '2', '--name', 'weekly-2'].concat([
      '--subject',
      'x',
      '--text',
      join(dir, 'body.txt'),
    ]),
    env(),
  );
  t.is(again.code, 1);
  t.regex(again.stderr, /CreateEmailTemplate weekly-2/);
  t.is((await templates(2)).length, 1);

  const registered = await runCli(
    [
      'templates',
      'add',
      '--provider',
      'ses',
      '--week',
      '2',
      '--name',
      'made-in-console',
      '--inactive',
    ],
    env(),
  );
  t.is(registered.code, 0, registered.stderr);
  t.regex(registered.stdout, /week 2 version 2, inactive$/m);
});

test('bad input is refused with exit 2 before anything is stored', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--provider', 'internal', '--week', '3', '--subject', 'x'], /needs --subject and --html/],
    [['--provider', 'internal', '--week', '5', '--subject', 'x'], /--week/],
    [['--provider', 'mailchimp', '--week', '3'], /ses or internal/],
    [['--provider', 'ses', '--week', '3'], /needs --name/],
    [
      [
        '--provider',
        'internal',
        '--week',
        '3',
        '--subject',
        'x',
        '--html',
        join(dir, 'broken.html'),
      ],
      /--html is not a valid template/,
    ],
    [
      ['--provider', 'internal', '--week', '3', '--subject', 'x', '--html', join(dir, 'none.html')],
      /--html .*none\.html/,
    ],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(['templates', 'add', ...args], env());
    t.is(result.code, 2, args.join(' '));
    t.regex(result.stderr, message);
  }
  t.deepEqual(await templates(3), []);
  const unknown = await runCli(['templates', 'activate', '3/9'], env());
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /no template 3\/9/);
  const malformed = await runCli(['templates', 'activate', 'latest'], env());
  t.is(malformed.code, 2);
});

for (const command of [
  ['templates'],
  ['templates', 'add'],
  ['templates', 'list'],
  ['templates', 'activate'],
]) {
  test(`mailer ${command.join(' ')} --help prints usage and exits 0`, async (t) => {
    const result = await runCli([...command, '--help']);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /Usage: mailer templates/);
  });
}
