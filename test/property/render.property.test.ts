// Customer data with HTML, script, quotes, template syntax and line breaks, rendered by the
// internal template renderer (src/ses/render.ts) and sent with the real SESv2 client to the local
// SES endpoint; the checks read the email as SES received it. In the HTML body every value is
// escaped (it decodes back to exactly the customer's data, and no raw <, >, quote or backtick
// from the data survives); the subject never gets a line break (no header injection); the text
// body carries the data as it is; and data is never compiled as template syntax.
// The same data through the `ses` provider (a template stored in the local SES, which like SES
// does not escape): its HtmlPart uses the escaped `_html` twins, so the HTML decodes back to the
// data with no markup from it, and the subject and text show the data as written.
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { loadConfig } from '../../src/config.ts';
import { createSesClient } from '../../src/ses/client.ts';
import { createTemplateRenderer } from '../../src/ses/render.ts';
import { type LocalSes, startLocalSes } from '../../src/ses-local/server.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createTemplate } from '../helpers/factories.ts';
import { createSesTemplate, READER_UNSUBSCRIBE_URL, sendToReader } from '../ses-local/helpers.ts';
import { runs } from './runs.ts';

let db: TestDatabase;
let ses: LocalSes;
let client: ReturnType<typeof createSesClient>;
let render: ReturnType<typeof createTemplateRenderer>;
let templateId: string;

const HTML =
  '<p title="{{name}}">Hello {{name}} from {{company}}</p><a href="{{unsubscribe_url}}">stop</a>';
const SES_HTML =
  '<p title="{{name_html}}">Hello {{name_html}} from {{company_html}}</p>' +
  '<a href="{{unsubscribe_url_html}}">stop</a>';
test.before(async () => {
  db = await createTestDatabase();
  ses = await startLocalSes();
  client = createSesClient(loadConfig({ SES_ENDPOINT: ses.url }), ses.url);
  render = createTemplateRenderer(db.pool);
  const template = await createTemplate(db.pool, {
    subject: 'Hi {{name}} at {{company}}',
    html: HTML,
    text: 'Hello {{name}} from {{company}}',
  });
  templateId = template.template_id;
  await createSesTemplate(client, 'weekly-ses', {
    Subject: 'Hi {{name}} at {{company}}',
    Html: SES_HTML,
    Text: 'Hello {{name}} from {{company}}',
  });
});
test.after.always(async () => {
  client?.destroy();
  await ses?.close();
  await db?.drop();
});

const decode = (html: string) =>
  html.replace(
    /&(amp|lt|gt|quot|#x27|#x60|#x3D|#39);/g,
    (_, entity: string) =>
      ({
        amp: '&',
        lt: '<',
        gt: '>',
        quot: '"',
        '#x27': "'",
        '#x60': '`',
        '#x3D': '=',
        '#39': "'",
      })[entity] ?? '',
  );

const hostile = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.string({ unit: fc.constantFrom(...'<>"\'`=&/{}\\ \r\n\tаé😀'), maxLength: 40 }),
  fc.constantFrom(
    '<script>alert(document.cookie)</script>',
    '"><img src=x onerror=alert(1)>',
    "'; drop table customers; --",
    '{{constructor.constructor "alert(1)"}}',
    '{{{name}}}',
    'Bobby\r\nBcc: victim@example.com',
    '</p><a href="javascript:alert(1)">click</a>',
    '&lt;already escaped&gt;',
  ),
);

testProp(
  'customer data reaches the email escaped in HTML, single-line in the subject, as is in text',
  [hostile, hostile],
  async (t, name, company) => {
    const rendered = await render(templateId, {
      name,
      company,
      unsubscribe_url: READER_UNSUBSCRIBE_URL,
    });
    const message = await sendToReader(client, ses, { kind: 'internal', rendered });
    if (!message) return t.fail('SES received nothing');

    const match =
      /^<p title="([^"]*)">Hello ([^<>"'`]*) from ([^<>"'`]*)<\/p><a href="[^"]*">stop<\/a>$/.exec(
        message.html ?? '',
      );
    t.truthy(match, `the HTML keeps its shape: ${message.html}`);
    t.is(decode(match?.[1] ?? ''), name);
    t.is(decode(match?.[2] ?? ''), name);
    t.is(decode(match?.[3] ?? ''), company);

    t.false(/[\r\n]/.test(message.subject), 'no line break in the subject');
    t.is(message.subject, `Hi ${name} at ${company}`.replace(/[\r\n]+/g, ' ').trim());
    t.is(message.text, `Hello ${name} from ${company}`);
    t.deepEqual(
      message.headers.map((h) => h.name),
      ['List-Unsubscribe', 'List-Unsubscribe-Post'],
      'no header came from the data',
    );
  },
  { numRuns: runs(200) },
);

testProp(
  'through an ses template, customer data is escaped in HTML and as written in subject and text',
  [hostile, hostile],
  async (t, name, company) => {
    const message = await sendToReader(client, ses, {
      kind: 'ses',
      templateName: 'weekly-ses',
      templateData: { name, company, unsubscribe_url: READER_UNSUBSCRIBE_URL },
    });
    if (!message) return t.fail('SES received nothing');

    const match =
      /^<p title="([^<>"'`]*)">Hello ([^<>"'`]*) from ([^<>"'`]*)<\/p><a href="([^"]*)">stop<\/a>$/.exec(
        message.html ?? '',
      );
    t.truthy(match, `the HTML keeps its shape: ${message.html}`);
    t.is(decode(match?.[1] ?? ''), name);
    t.is(decode(match?.[2] ?? ''), name);
    t.is(decode(match?.[3] ?? ''), company);
    t.is(decode(match?.[4] ?? ''), READER_UNSUBSCRIBE_URL);

    t.is(message.subject, `Hi ${name} at ${company}`);
    t.is(message.text, `Hello ${name} from ${company}`);
  },
  { numRuns: runs(200) },
);
