import { randomBytes } from 'node:crypto';
import test from 'ava';
import { searchSuppressions } from '../../src/queries/suppressions.ts';
import { actionsOf, databaseForFile } from '../helpers/db.ts';
import { getPage, loginAs, pagesApp } from './pages-helpers.ts';

const db = databaseForFile();

// Serial: multi-row inserts into suppression_list running at once can deadlock on the
// keep_strongest trigger's per-address advisory locks, taken in each statement's row order.

/** Three entries under a prefix of their own: a (complaint, ses), b (manual, ops), c (unsubscribe, user). */
async function entries() {
  const prefix = `sup-${randomBytes(4).toString('hex')}-`;
  await db.pool.query(
    `insert into suppression_list (email, reason, source)
     values ($1 || 'a@example.com', 'complaint', 'ses'), ($1 || 'b@example.com', 'manual', 'ops'),
            ($1 || 'c<script>alert(1)</script>@example.com', 'unsubscribe', 'user')`,
    [prefix],
  );
  return prefix;
}

test.serial(
  'searches by the start of the address, filters by reason and source, escaped',
  async (t) => {
    const prefix = await entries();
    const app = pagesApp(db.pool);
    const viewer = await loginAs(db.pool, 'viewer');
    const all = await getPage(app, viewer, `/suppressions?email=${prefix.toUpperCase()}`);
    t.is(all.statusCode, 200);
    t.is(all.body.match(new RegExp(`<td><a href="/customers\\?email=${prefix}`, 'g'))?.length, 3);
    t.false(all.body.includes('<script>alert(1)</script>'));
    t.true(all.body.includes(`${prefix}c&lt;script&gt;alert(1)&lt;/script&gt;@example.com`));
    const complaints = await getPage(app, viewer, `/suppressions?email=${prefix}&reason=complaint`);
    t.true(complaints.body.includes(`${prefix}a@example.com`));
    t.false(complaints.body.includes(`${prefix}b@example.com`));
    const ops = await getPage(app, viewer, `/suppressions?email=${prefix}&source=ops`);
    t.true(ops.body.includes(`${prefix}b@example.com`));
    t.false(ops.body.includes(`${prefix}a@example.com`));
    // A prefix is text, not a pattern: % and _ match only themselves.
    const pattern = await getPage(app, viewer, `/suppressions?email=${prefix.slice(0, -1)}%25`);
    t.false(pattern.body.includes(`${prefix}a@example.com`));
  },
);

test.serial(
  'pages through the list by address, each page after the last address of the one before',
  async (t) => {
    const prefix = await entries();
    const filter = { prefix, reason: undefined, source: undefined };
    const first = await searchSuppressions(db.pool, filter, undefined, 2);
    t.deepEqual(
      first.rows.map((r) => r.email),
      [`${prefix}a@example.com`, `${prefix}b@example.com`],
    );
    t.is(first.next, `${prefix}b@example.com`);
    const second = await searchSuppressions(db.pool, filter, first.next, 2);
    t.is(second.rows.length, 1);
    t.is(second.next, undefined);
    const app = pagesApp(db.pool);
    const viewer = await loginAs(db.pool, 'viewer');
    const page = await getPage(
      app,
      viewer,
      `/suppressions?email=${prefix}&after=${encodeURIComponent(first.next ?? '')}`,
    );
    t.true(page.body.includes(`${prefix}c&lt;script`));
    t.false(page.body.includes(`${prefix}a@example.com`));
  },
);

test.serial(
  'exports the filtered list as CSV, recorded in operator_actions under the console user',
  async (t) => {
    const prefix = await entries();
    const app = pagesApp(db.pool);
    const viewer = await loginAs(db.pool, 'viewer');
    const res = await getPage(app, viewer, `/suppressions.csv?email=${prefix}&source=ses`);
    t.is(res.statusCode, 200);
    t.regex(String(res.headers['content-type']), /^text\/csv/);
    t.regex(String(res.headers['content-disposition']), /^attachment; filename="suppressions-/);
    const lines = res.body.trimEnd().split('\r\n');
    t.is(lines[0], 'email,reason,source,created_at,updated_at');
    t.is(lines.length, 2);
    t.regex(lines[1] as string, new RegExp(`^${prefix}a@example.com,complaint,ses,\\d{4}-`));
    const [action] = (await actionsOf(db.pool, 'export_suppressions')).filter(
      (a) => a.details.prefix === prefix,
    );
    t.is(action?.actor, `console:${viewer.username}`);
    t.deepEqual(action?.details, { prefix, reason: null, source: 'ses', rows: 1 });
  },
);

test.serial('a large export streams every entry once, in address order', async (t) => {
  const prefix = `bulk-${randomBytes(4).toString('hex')}-`;
  await db.pool.query(
    `insert into suppression_list (email, reason, source)
     select $1 || lpad(i::text, 5, '0') || '@example.com', 'bounce_hard', 'ses'
       from generate_series(1, 12000) i`,
    [prefix],
  );
  const app = pagesApp(db.pool);
  const operator = await loginAs(db.pool, 'operator');
  const res = await getPage(app, operator, `/suppressions.csv?email=${prefix}`);
  const emails = res.body
    .trimEnd()
    .split('\r\n')
    .slice(1)
    .map((l) => l.split(',')[0]);
  t.is(emails.length, 12000);
  t.is(new Set(emails).size, 12000);
  t.is(emails[0], `${prefix}00001@example.com`);
  t.is(emails[11999], `${prefix}12000@example.com`);
});
