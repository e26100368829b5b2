// `templates add` refuses a template that uses a variable mailer never provides, naming it and
// the known ones; an SES template held in SES is checked the same way.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createSesTemplate, localSesForFile } from '../ses-local/helpers.ts';

const db = databaseForFile();
const ses = localSesForFile();
let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailer-variables-'));
  await writeFile(join(dir, 'typo.txt'), 'Hi {{frist_name}}, {{greeting_name}}');
  await writeFile(join(dir, 'good.txt'), 'Hi {{greeting_name}}, {{unsubscribe_url}}');
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const env = () => ({ DATABASE_URL: db.url, SES_ENDPOINT: ses.url, LOG_LEVEL: 'warn' });
const count = async () =>
  (await db.pool.query<{ n: number }>('select count(*)::int as n from templates')).rows[0]?.n;

test('an unknown variable is refused, naming it and the known ones; nothing is stored', async (t) => {
  const add = ['templates', 'add', '--provider', 'internal', '--week', '1'];
  const typo = await runCli([...add, '--subject', 'Hi', '--text', join(dir, 'typo.txt')], env());
  t.is(typo.code, 2);
  t.regex(typo.stderr, /--text uses unknown variables frist_name; known variables: name, company/);
  t.regex(typo.stderr, /greeting_name/);
  const subject = await runCli(
    [...add, '--subject', '{{#if vip}}VIP{{/if}} {{name_html}}', '--text', join(dir, 'good.txt')],
    env(),
  );
  t.is(subject.code, 2);
  t.regex(subject.stderr, /--subject uses unknown variables vip, name_html/);
  t.is(await count(), 0);
  const good = await runCli(
    [...add, '--subject', 'Hi {{greeting_name}}', '--text', join(dir, 'good.txt')],
    env(),
  );
  t.is(good.code, 0, good.stderr);
  t.is(await count(), 1);
});

test('an SES template with an unknown variable is refused, from files or from SES', async (t) => {
  const files = await runCli(
    [
      'templates',
      'add',
      '--provider',
      'ses',
      '--week',
      '2',
      '--name',
      'typo-files',
      '--subject',
      'Hi {{frist_name}}',
      '--text',
      join(dir, 'good.txt'),
    ],
    env(),
  );
  t.is(files.code, 2);
  t.regex(
    files.stderr,
    /--subject uses unknown variables frist_name; known variables: .*_html twins/,
  );
  await createSesTemplate(ses.url, 'typo-in-ses', { Subject: 'Hi', Text: 'Dear {{frist_name}}' });
  const registered = await runCli(
    ['templates', 'add', '--provider', 'ses', '--week', '2', '--name', 'typo-in-ses'],
    env(),
  );
  t.is(registered.code, 2);
  t.regex(registered.stderr, /typo-in-ses: TextPart uses unknown variables frist_name/);
});
