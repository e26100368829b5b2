import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteEmailTemplateCommand,
  GetEmailTemplateCommand,
  type SESv2Client,
  UpdateEmailTemplateCommand,
} from '@aws-sdk/client-sesv2';
import test from 'ava';
import { runCli } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createSesClient, createSesTemplate, localSesForFile } from '../ses-local/helpers.ts';

const db = databaseForFile();
const ses = localSesForFile();
let sesClient: SESv2Client;
let dir: string;
test.before(async () => {
  sesClient = createSesClient(ses.url);
  dir = await mkdtemp(join(tmpdir(), 'mailer-templates-'));
  await writeFile(
    join(dir, 'body.html'),
    '<p>Hello {{name}}</p><a href="{{unsubscribe_url}}">x</a>',
  );
  // The same body for an SES template: SES does not escape, so HTML uses the _html twins.
  await writeFile(
    join(dir, 'ses-body.html'),
    '<p>Hello {{name_html}}</p><a href="{{unsubscribe_url_html}}">x</a>',
  );
  await writeFile(join(dir, 'body.txt'), 'Hello {{name}}');
  await writeFile(join(dir, 'broken.html'), '<p>Hello {{#if name}}</p>');
});
test.after.always(async () => {
  sesClient?.destroy();
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
      join(dir, 'ses-body.html'),
    ],
    env(),
  );
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /created in SES as weekly-2/);
  const stored = await sesClient.send(new GetEmailTemplateCommand({ TemplateName: 'weekly-2' }));
  t.is(stored.TemplateContent?.Subject, 'Week 2, {{name}}');
  t.is(
    stored.TemplateContent?.Html,
    '<p>Hello {{name_html}}</p><a href="{{unsubscribe_url_html}}">x</a>',
  );

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

  // Registering (no files) a template that exists in SES and escapes its HTML.
  await createSesTemplate(sesClient, 'made-in-console', {
    Subject: 'Hi {{name}}',
    Html: '<p>{{name_html}}</p>',
  });
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

// The new tests share week 4 and run at the same time, so they find their rows by SES name.
async function byName(name: string) {
  const { rows } = await db.pool.query<{ is_active: boolean; provider: string }>(
    'select is_active, provider from templates where provider_template_name = $1',
    [name],
  );
  return rows;
}

test('an ses --html file that outputs raw variables is refused, naming their _html twins', async (t) => {
  const html = join(dir, 'raw.html');
  await writeFile(html, '<p>Hello {{name}} of {{{company}}}, {{country_html}}</p>');
  const args = ['templates', 'add', '--provider', 'ses', '--week', '4', '--subject', 'Hi {{name}}'];
  const refused = await runCli([...args, '--name', 'raw-4', '--html', html], env());
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, /--html uses raw variables name, company; .*use name_html, company_html/);
  t.deepEqual(await byName('raw-4'), []);
  await t.throwsAsync(sesClient.send(new GetEmailTemplateCommand({ TemplateName: 'raw-4' })), {
    name: 'NotFoundException',
  });

  const accepted = await runCli(
    [...args, '--name', 'safe-4', '--html', join(dir, 'ses-body.html')],
    env(),
  );
  t.is(accepted.code, 0, accepted.stderr);
  t.regex(accepted.stdout, /week 4 version \d+, active; created in SES as safe-4/);
  t.deepEqual(await byName('safe-4'), [{ is_active: true, provider: 'ses' }]);
});

test('registering or activating an ses template that is missing in SES or unsafe is refused', async (t) => {
  const register = (name: string) =>
    runCli(
      [
        'templates',
        'add',
        '--provider',
        'ses',
        '--week',
        '4',
        '--name',
        name,
        '--inactive',
        '--json',
      ],
      env(),
    );
  const missing = await register('not-in-ses');
  t.is(missing.code, 2, missing.stderr);
  t.regex(missing.stderr, new RegExp(`SES template not-in-ses does not exist in ${ses.url}`));

  await createSesTemplate(sesClient, 'raw-in-ses', {
    Subject: 'Hi {{name}}',
    Html: '<p>{{name}} at {{company}}</p>',
  });
  const raw = await register('raw-in-ses');
  t.is(raw.code, 2, raw.stderr);
  t.regex(
    raw.stderr,
    /SES template raw-in-ses: HtmlPart uses raw variables name, company; use name_html, company_html/,
  );
  t.deepEqual([...(await byName('not-in-ses')), ...(await byName('raw-in-ses'))], []);

  // A template that was fine when registered, then changed or deleted in SES.
  await createSesTemplate(sesClient, 'week-3', {
    Subject: 'Hi {{name}}',
    Html: '<p>{{name_html}}</p>',
  });
  const ok = await register('week-3');
  t.is(ok.code, 0, ok.stderr);
  const { template_id: id } = JSON.parse(ok.stdout) as { template_id: string };
  t.deepEqual(await byName('week-3'), [{ is_active: false, provider: 'ses' }]);

  await sesClient.send(
    new UpdateEmailTemplateCommand({
      TemplateName: 'week-3',
      TemplateContent: { Subject: 'Hi {{name}}', Html: '<p>{{{name}}}</p>' },
    }),
  );
  const unsafe = await runCli(['templates', 'activate', id], env());
  t.is(unsafe.code, 2, unsafe.stderr);
  t.regex(unsafe.stderr, /SES template week-3: HtmlPart uses raw variables name; use name_html/);

  await sesClient.send(new DeleteEmailTemplateCommand({ TemplateName: 'week-3' }));
  const gone = await runCli(['templates', 'activate', id], env());
  t.is(gone.code, 2, gone.stderr);
  t.regex(gone.stderr, /SES template week-3 does not exist/);
  t.deepEqual(await byName('week-3'), [{ is_active: false, provider: 'ses' }]);

  await createSesTemplate(sesClient, 'week-3', {
    Subject: 'Hi {{name}}',
    Html: '<p>{{name_html}}</p>',
  });
  const fixed = await runCli(['templates', 'activate', id], env());
  t.is(fixed.code, 0, fixed.stderr);
  t.deepEqual(await byName('week-3'), [{ is_active: true, provider: 'ses' }]);
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
