// The rule for SES templates (an HtmlPart outputs only escaped `_html` variables) and
// checkSesTemplate, run with the real SESv2 client against the local SES.
import { DeleteEmailTemplateCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { checkSesTemplate } from '../../src/ses/template-check.ts';
import { rawHtmlVariables } from '../../src/ses/template-variables.ts';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { createSesClient, createSesTemplate, localSesForFile } from '../ses-local/helpers.ts';

test('finds raw variables in double and triple braces, in order, once each', (t) => {
  t.deepEqual(rawHtmlVariables('<p>{{name}} {{{company}}} {{ name }} {{~country~}} {{a.b}}</p>'), [
    'name',
    'company',
    'country',
    'a.b',
  ]);
});

test('allows _html twins, values that only steer a block, data variables and comments', (t) => {
  t.deepEqual(
    rawHtmlVariables(
      '{{name_html}}{{{company_html}}}{{#if name}}{{#each items}}{{@index}}{{/each}}{{/if}}' +
        '{{! {{name}} }}{{a.b_html}}',
    ),
    [],
  );
});

test('finds raw variables inside blocks, their else branches and helper arguments', (t) => {
  t.deepEqual(
    rawHtmlVariables(
      '{{#if vip}}{{name}}{{else}}{{company}}{{/if}}{{#each items}}{{this}}{{/each}}' +
        '{{lookup data key_html}}{{concat (upper country) " " email_html}}',
    ),
    ['name', 'company', 'this', 'data', 'country'],
  );
});

test('an invalid template throws the parse error', (t) => {
  t.throws(() => rawHtmlVariables('<p>{{#if name}}</p>'));
});

const ses = localSesForFile();
let client: SESv2Client;
test.before(async () => {
  client = createSesClient(ses.url);
});
test.after.always(async () => {
  client?.destroy();
});

test('a template that escapes its HTML, or has no HTML, has no problems', async (t) => {
  await createSesTemplate(client, 'safe', {
    Subject: 'Hi {{name}}',
    Html: '<p>{{name_html}}</p><a href="{{unsubscribe_url_html}}">stop</a>',
    Text: 'Hi {{name}}',
  });
  await createSesTemplate(client, 'text-only', { Subject: 'Hi {{name}}', Text: 'Hi {{name}}' });
  t.deepEqual(await checkSesTemplate(client, 'safe'), []);
  t.deepEqual(await checkSesTemplate(client, 'text-only'), []);
});

test('a missing template is one line naming the SES it was looked for in', async (t) => {
  t.deepEqual(await checkSesTemplate(client, 'nowhere'), [
    `SES template nowhere does not exist in ${ses.url}`,
  ]);
  await createSesTemplate(client, 'deleted', { Subject: 'x', Html: '{{name_html}}' });
  await client.send(new DeleteEmailTemplateCommand({ TemplateName: 'deleted' }));
  t.regex((await checkSesTemplate(client, 'deleted')).join('\n'), /deleted does not exist/);
});

test('raw HTML variables are one line naming each and its _html twin', async (t) => {
  await createSesTemplate(client, 'raw', {
    Subject: 'Hi {{name}}',
    Html: '<p>{{name}} at {{{company}}}</p>{{name_html}}',
  });
  t.deepEqual(await checkSesTemplate(client, 'raw'), [
    'SES template raw: HtmlPart uses raw variables name, company; use name_html, company_html',
  ]);
});

test('an HtmlPart SES holds that is not a valid template is a problem, not a crash', async (t) => {
  await createSesTemplate(client, 'broken', { Subject: 'x', Html: '<p>{{#if name}}</p>' });
  const problems = await checkSesTemplate(client, 'broken');
  t.is(problems.length, 1);
  t.regex(problems[0] ?? '', /^SES template broken: HtmlPart is not a valid template: /);
});

test('an SES that cannot be asked is a problem line with the error', async (t) => {
  const closed = await startLocalSes();
  const unreachable = new SESv2Client({
    region: 'us-east-1',
    endpoint: closed.url,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  t.teardown(() => unreachable.destroy());
  await closed.close();
  const problems = await checkSesTemplate(unreachable, 'safe');
  t.is(problems.length, 1);
  t.regex(problems[0] ?? '', /^SES template safe: GetEmailTemplate failed: /);
});
