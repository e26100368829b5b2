// Customer-supplied strings (names, companies) reach SQL and HTML only as data: imported from a
// CSV file with the import the CLI uses, generated into a campaign, sent by a real worker to the
// local SES endpoint. The stored rows hold exactly what the file said, every table is still there,
// and the email SES received shows the text, escaped in HTML, never as markup or as SQL.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { importCustomersCsv } from '../../src/import/customers.ts';
import { createTemplate } from '../helpers/factories.ts';
import { generate, startPipeline, statusCounts, waitForDone } from '../pipeline/harness.ts';

const HOSTILE: Array<{ email: string; name: string; company: string }> = [
  { email: 'obrien@example.com', name: "Dara O'Brien", company: "O'Reilly & Sons" },
  { email: 'bobby@example.com', name: "Robert'); DROP TABLE customers; --", company: 'Tables Inc' },
  {
    email: 'drop@example.com',
    name: "'); drop table customers; --",
    company: "x'; delete from suppression_list where ''='",
  },
  { email: 'quotes@example.com', name: 'Ann "The Quote" Lee', company: 'Acme "Quotes", Inc.' },
  {
    email: 'dollar@example.com',
    name: '$1 $$ $body$ %s %n \\x27',
    company: 'Back\\slash; Semi;colon',
  },
  {
    email: 'script@example.com',
    name: '<script>alert(document.cookie)</script>',
    company: '<b>Bold</b> & <i>Co</i>',
  },
  {
    email: 'attr@example.com',
    name: '"><img src=x onerror=alert(1)>',
    company: "' onmouseover='alert(1)",
  },
  {
    email: 'mustache@example.com',
    name: '{{constructor.constructor "alert(1)"}}',
    company: '{{{company}}}',
  },
  {
    email: 'unicode@example.com',
    name: 'Zoë Ünïcødé 日本語 😀 ‮txt.exe',
    company: 'Ωmega Ltd — “smart quotes”',
  },
  {
    email: 'newline@example.com',
    name: 'Two\nLines',
    company: 'Bcc: victim@example.com\nX-Evil: 1',
  },
  { email: "o'neil@example.com", name: 'Apostrophe In Address', company: 'Local Part' },
];

function csvField(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

const decode = (html: string) =>
  html.replace(
    /&(amp|lt|gt|quot|#x27|#x60|#x3D);/g,
    (_, e: string) =>
      ({ amp: '&', lt: '<', gt: '>', quot: '"', '#x27': "'", '#x60': '`', '#x3D': '=' })[e] ?? '',
  );

test('names and companies with quotes, SQL, HTML and unicode are stored and mailed as data', async (t) => {
  const p = await startPipeline(t);
  const dir = await mkdtemp(join(tmpdir(), 'mailer-hostile-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'customers.csv');
  const lines = ['email,name,company,country'];
  for (const c of HOSTILE) lines.push([c.email, c.name, c.company, 'NL'].map(csvField).join(','));
  await writeFile(file, `${lines.join('\r\n')}\r\n`);

  const problems: unknown[] = [];
  const summary = await importCustomersCsv(p.db.pool, file, {
    apply: 'always',
    onProblem: (problem) => {
      problems.push(problem);
    },
  });
  t.deepEqual(problems, []);
  t.like(summary, { rowsRead: HOSTILE.length, valid: HOSTILE.length, inserted: HOSTILE.length });

  const { rows: stored } = await p.db.pool.query<{ email: string; name: string; company: string }>(
    'select email, name, company from customers order by email',
  );
  t.deepEqual(
    stored,
    [...HOSTILE]
      .sort((a, b) => (a.email < b.email ? -1 : 1))
      .map(({ email, name, company }) => ({ email, name, company })),
    'stored exactly as written in the file',
  );
  const { rows: tables } = await p.db.pool.query<{ n: number }>(
    `select count(*)::int as n from pg_tables where schemaname = 'public'
      and tablename in ('customers', 'suppression_list', 'campaigns', 'campaign_recipients')`,
  );
  t.is(tables[0]?.n, 4, 'every table is still there');

  await createTemplate(p.db.pool, {
    subject: 'For {{name}} of {{company}}',
    html: '<p data-name="{{name}}">Dear {{name}}</p><p>{{company}}</p>',
    text: 'Dear {{name}} of {{company}}',
  });
  await p.startWorker();
  const campaignId = await generate(p.db);
  await waitForDone(p.db, campaignId);
  t.deepEqual(await statusCounts(p.db, campaignId), { sent: HOSTILE.length });

  const { rows: data } = await p.db.pool.query<{ email: string; name: string; company: string }>(
    `select email, template_data ->> 'name' as name, template_data ->> 'company' as company
       from campaign_recipients where campaign_id = $1`,
    [campaignId],
  );
  const { rows: suppressed } = await p.db.pool.query('select 1 from suppression_list');
  t.deepEqual(suppressed, [], 'nothing was deleted from or added to the suppression list');

  for (const customer of HOSTILE) {
    const row = data.find((r) => r.email === customer.email);
    t.like(row, { name: customer.name, company: customer.company }, customer.email);
    const [message, ...more] = p.ses.sent().filter((m) => m.to.includes(customer.email));
    t.is(more.length, 0);
    if (!message) {
      t.fail(`${customer.email} got no email`);
      continue;
    }
    const html = /^<p data-name="([^"]*)">Dear ([^<>"]*)<\/p><p>([^<>"]*)<\/p>$/.exec(
      message.html ?? '',
    );
    t.truthy(html, `${customer.email}: the HTML keeps its shape: ${message.html}`);
    t.is(decode(html?.[1] ?? ''), customer.name);
    t.is(decode(html?.[2] ?? ''), customer.name);
    t.is(decode(html?.[3] ?? ''), customer.company);
    t.is(message.subject, `For ${customer.name} of ${customer.company}`.replace(/[\r\n]+/g, ' '));
    t.is(message.text, `Dear ${customer.name} of ${customer.company}`);
    t.deepEqual(
      message.headers.map((h) => h.name),
      ['List-Unsubscribe', 'List-Unsubscribe-Post'],
    );
  }
});
