// The templates page: versions per week, a preview rendered for a customer by the code
// `templates preview` uses, and a test send through the real SESv2 client to the local SES by the
// code `campaign test` uses, recorded under the console user.
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { createSesClient } from '../../src/ses/client.ts';
import { type LocalSes, startLocalSes } from '../../src/ses-local/server.ts';
import { actionsOf, databaseForFile } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';
import { getPage, loginAs, pagesApp, pagesConfig, postForm } from './pages-helpers.ts';

const db = databaseForFile();
const XSS = '<script>alert(1)</script>';
let ses: LocalSes;
let client: SESv2Client;
const config = () => pagesConfig({ SES_ENDPOINT: ses.url, TEST_RECIPIENTS: 'qa@example.test' });

test.before(async () => {
  ses = await startLocalSes();
  client = createSesClient(config(), ses.url);
  await createTemplate(db.pool, { week_of_month: 1, version: 1, subject: 'Old week 1' });
  await createTemplate(db.pool, {
    week_of_month: 1,
    version: 2,
    subject: 'Week 1 for {{greeting_name}}',
    html: '<p style="color: #c00">Hi {{greeting_name}} of {{company}}</p>',
    text: 'Hi {{greeting_name}}. Stop: {{unsubscribe_url}}',
  });
  await createCustomer(db.pool, { email: 'xss@example.com', name: XSS, company: 'Acme' });
  await db.pool.query(
    `insert into suppression_list (email, reason, source) values ('gone@example.test', 'manual', 'ops')`,
  );
});
test.after.always(async () => {
  client?.destroy();
  await ses?.close();
});

test.serial(
  'lists versions per week with the one in use marked, and previews for a customer, escaped',
  async (t) => {
    const app = pagesApp(db.pool, { ses: client, config: config() });
    const viewer = await loginAs(db.pool, 'viewer');
    const list = await getPage(app, viewer, '/templates');
    t.is(list.statusCode, 200);
    t.regex(list.body, /<tr class="in-use"><td>1<\/td><td>2<\/td><td>internal<\/td>/);
    t.regex(
      list.body,
      /<tr class=""><td>1<\/td><td>1<\/td><td>internal<\/td><td>Old week 1<\/td><td>active<\/td>/,
    );
    t.false(list.body.includes('action="/templates/test-send"'), 'a viewer gets no test send form');

    const preview = await getPage(app, viewer, '/templates?week=1&customer=XSS%40example.com');
    t.is(preview.statusCode, 200);
    const body = preview.body;
    // The subject and text are not HTML: the name is as written, escaped once by the page.
    t.true(
      body.includes(
        '<span class="subject">Week 1 for &lt;script&gt;alert(1)&lt;/script&gt;</span>',
      ),
    );
    t.true(
      body.includes(
        'Hi &lt;script&gt;alert(1)&lt;/script&gt;. Stop: http://mailer.test/unsubscribe/00000000-0000-0000-0000-000000000000',
      ),
    );
    // The HTML body in a sandboxed frame of its own, under a policy that lets its inline styles
    // apply and nothing else run or load.
    t.true(
      body.includes(
        '<iframe class="preview" sandbox="" width="100%" height="480" title="HTML body" src="/templates/preview.html?week=1&amp;customer=XSS%40example.com">',
      ),
    );
    const frame = await getPage(
      app,
      viewer,
      '/templates/preview.html?week=1&customer=XSS%40example.com',
    );
    t.is(frame.statusCode, 200);
    t.is(frame.body, '<p style="color: #c00">Hi &lt;script&gt;alert(1)&lt;/script&gt; of Acme</p>');
    t.is(
      frame.headers['content-security-policy'],
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox",
    );
    t.is((await getPage(app, viewer, '/templates/preview.html?week=3')).statusCode, 404);
    t.false(body.includes(XSS));
    const none = await getPage(app, viewer, '/templates?week=3');
    t.regex(none.body, /No active template for week 3/);
  },
);

test.serial(
  'an operator sends a test, marked and recorded under their console name; a viewer may not',
  async (t) => {
    ses.clear();
    const app = pagesApp(db.pool, { ses: client, config: config() });
    const viewer = await loginAs(db.pool, 'viewer');
    const refused = await postForm(app, viewer, '/templates/test-send', {
      week: '1',
      to: 'a@example.test',
    });
    t.is(refused.statusCode, 403);
    t.is(ses.sent().length, 0);

    const operator = await loginAs(db.pool, 'operator');
    const res = await postForm(app, operator, '/templates/test-send', {
      week: '1',
      customer: 'xss@example.com',
      to: 'lead@example.test, Other@Example.test',
    });
    t.is(res.statusCode, 303);
    t.is(res.headers.location, '/templates?done=sent&n=2');
    const sent = ses.sent();
    t.deepEqual(
      sent.map((m) => m.to),
      [['lead@example.test'], ['other@example.test']],
    );
    t.is(sent[0]?.subject, `[TEST] Week 1 for ${XSS}`);
    const [action] = await actionsOf(db.pool, 'test_send');
    t.is(action?.actor, `console:${operator.username}`);
    t.deepEqual(action?.details.to, ['lead@example.test', 'other@example.test']);

    // Empty "To": TEST_RECIPIENTS, as in the CLI.
    ses.clear();
    t.is((await postForm(app, operator, '/templates/test-send', { week: '1' })).statusCode, 303);
    t.deepEqual(
      ses.sent().map((m) => m.to),
      [['qa@example.test']],
    );
  },
);

test.serial(
  'a test send is refused for a suppressed address or an unknown customer, as in the CLI',
  async (t) => {
    ses.clear();
    const app = pagesApp(db.pool, { ses: client, config: config() });
    const operator = await loginAs(db.pool, 'operator');
    const suppressed = await postForm(app, operator, '/templates/test-send', {
      week: '1',
      to: 'gone@example.test',
    });
    t.is(suppressed.statusCode, 409);
    t.regex(suppressed.body, /gone@example.test on the suppression list; nothing sent/);
    const unknown = await postForm(app, operator, '/templates/test-send', {
      week: '1',
      to: 'a@example.test',
      customer: 'nobody@example.com',
    });
    t.regex(unknown.body, /no customer nobody@example.com/);
    t.is(ses.sent().length, 0);
  },
);
