// The `ses` provider's TemplateData: each value as written plus its HTML-escaped `_html` twin,
// and, end to end through buildSendEmailInput, the real SESv2 client and the local SES (which,
// like SES, does not escape), a hostile customer name that stays text in every part.
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { escapeHtml, sesTemplateData } from '../../src/ses/template-data.ts';
import {
  createSesClient,
  createSesTemplate,
  localSesForFile,
  sendToReader,
} from '../ses-local/helpers.ts';

const HOSTILE = '<a href="https://evil.example/">x</a> & "co"';
const HOSTILE_HTML =
  '&lt;a href&#x3D;&quot;https://evil.example/&quot;&gt;x&lt;/a&gt; &amp; &quot;co&quot;';

test('escapes & < > " \' ` = the way the internal provider does', (t) => {
  t.is(escapeHtml(HOSTILE), HOSTILE_HTML);
  t.is(escapeHtml("it's `x`"), 'it&#x27;s &#x60;x&#x60;');
  t.is(escapeHtml('plain text'), 'plain text');
});

test('adds an escaped _html twin for every string and number and keeps the value as written', (t) => {
  t.deepEqual(
    sesTemplateData({
      name: HOSTILE,
      company: 'Smith & Sons',
      count: 3,
      country: null,
      vip: true,
      address: { city: '<b>' },
    }),
    {
      name: HOSTILE,
      name_html: HOSTILE_HTML,
      company: 'Smith & Sons',
      company_html: 'Smith &amp; Sons',
      count: 3,
      count_html: '3',
      country: null,
      country_html: null,
      vip: true,
      address: { city: '<b>' },
    },
  );
});

test('a key already ending in _html is escaped in place, never doubled, and a twin wins', (t) => {
  t.deepEqual(sesTemplateData({ note_html: '<i>hi</i>' }), { note_html: '&lt;i&gt;hi&lt;/i&gt;' });
  for (const data of [
    { name: 'A & B', name_html: '<script>' },
    { name_html: '<script>', name: 'A & B' },
  ]) {
    const result = sesTemplateData(data);
    t.is(result.name_html, 'A &amp; B');
    t.false('name_html_html' in result);
  }
});

test('a __proto__ key from JSON stays data and gets its twin', (t) => {
  const result = sesTemplateData(JSON.parse('{"__proto__": "<x>"}') as Record<string, unknown>);
  t.is(Object.getPrototypeOf(result), Object.prototype);
  t.deepEqual(Object.entries(result), [
    ['__proto__', '<x>'],
    ['__proto___html', '&lt;x&gt;'],
  ]);
});

const ses = localSesForFile();
let client: SESv2Client;
test.before(async () => {
  client = createSesClient(ses.url);
  await createSesTemplate(client, 'weekly-safe', {
    Subject: 'News for {{name}}',
    Text: 'Hello {{name}} from {{company}}',
    Html: '<p title="{{name_html}}">Hello {{name_html}} from {{company_html}}</p>',
  });
  // What the rule forbids: a raw variable in the HtmlPart.
  await createSesTemplate(client, 'weekly-raw', { Subject: 'x', Html: '<p>Hello {{name}}</p>' });
});
test.after.always(async () => {
  client?.destroy();
});

async function sendThroughSesProvider(templateName: string, data: Record<string, unknown>) {
  const message = await sendToReader(client, ses, {
    kind: 'ses',
    templateName,
    templateData: data,
  });
  if (!message) throw new Error(`SES holds no message to reader@example.com from ${templateName}`);
  return message;
}

test('a hostile name sent through the ses provider is text in the HTML and as written elsewhere', async (t) => {
  const message = await sendThroughSesProvider('weekly-safe', {
    name: HOSTILE,
    company: "O'Reilly & <b>Sons</b>",
  });
  t.is(
    message.html,
    `<p title="${HOSTILE_HTML}">Hello ${HOSTILE_HTML} from O&#x27;Reilly &amp; &lt;b&gt;Sons&lt;/b&gt;</p>`,
  );
  t.notRegex(message.html ?? '', /<a|<b>|href="/, 'no markup from the data');
  t.is(message.subject, `News for ${HOSTILE}`);
  t.is(message.text, `Hello ${HOSTILE} from O'Reilly & <b>Sons</b>`);
});

test('the local SES, like SES, puts a raw variable into the HTML as markup', async (t) => {
  const message = await sendThroughSesProvider('weekly-raw', { name: HOSTILE });
  t.is(message.html, `<p>Hello ${HOSTILE}</p>`);
});
