import { randomUUID } from 'node:crypto';
import test from 'ava';
import { actionsOf, databaseForFile } from '../helpers/db.ts';
import { createCustomer } from '../helpers/factories.ts';
import {
  bouncedCustomer as bouncedCustomerOf,
  getPage,
  loginAs,
  pagesApp,
  postForm,
} from './pages-helpers.ts';

const db = databaseForFile();
const XSS = '<script>alert(1)</script>';

/** A customer whose campaign bounced, named with markup to be escaped. */
function bouncedCustomer() {
  return bouncedCustomerOf(db.pool, XSS);
}

async function suppression(email: string) {
  const { rows } = await db.pool.query<{ reason: string; source: string }>(
    'select reason, source from suppression_list where email = $1',
    [email],
  );
  return rows[0];
}

test('a viewer looks a bounced customer up and sees why, escaped, without action forms', async (t) => {
  const { customer, campaignId } = await bouncedCustomer();
  const app = pagesApp(db.pool);
  const viewer = await loginAs(db.pool, 'viewer');
  const res = await getPage(
    app,
    viewer,
    `/customers?email=${encodeURIComponent(customer.email.toUpperCase())}`,
  );
  t.is(res.statusCode, 200);
  const body = res.body;
  t.regex(body, /<strong>Suppressed<\/strong>: bounce_hard, by ses \(an SES event\)/);
  t.regex(
    body,
    /SES <strong>bounce<\/strong> event: Permanent \/General smtp; 550 5\.1\.1 user unknown/,
  );
  t.true(body.includes(`href="/campaigns/${campaignId}"`));
  t.regex(body, /<td>bounced<\/td><td>bounced<\/td>/);
  t.false(body.includes(XSS));
  t.true(body.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  t.false(body.includes('action="/customers/suppress"'));
  t.false(body.includes('action="/customers/unsuppress"'));
  const byId = await getPage(app, viewer, `/customers/${customer.customer_id}`);
  t.is(byId.statusCode, 200);
  t.true(byId.body.includes('bounce_hard'));
  t.is((await getPage(app, viewer, `/customers/${randomUUID()}`)).statusCode, 404);
  // As the audit page links it (?q=), one campaign at a time, with a link to older ones.
  const one = await getPage(
    app,
    viewer,
    `/customers?q=${encodeURIComponent(customer.email)}&campaigns=1`,
  );
  t.regex(one.body, /Recent campaigns \(1\)/);
  t.true(one.body.includes(`&amp;campaigns=5">Older campaigns</a>`));
});

test('an address nobody has: shown as no customer; a partial address lists candidates', async (t) => {
  const { customer } = await bouncedCustomer();
  const app = pagesApp(db.pool);
  const viewer = await loginAs(db.pool, 'viewer');
  const none = await getPage(app, viewer, '/customers?email=nobody%40example.com');
  t.is(none.statusCode, 200);
  t.regex(none.body, /No customer has this address/);
  t.regex(none.body, /<strong>Not suppressed<\/strong>/);
  const partial = await getPage(app, viewer, `/customers?email=${customer.email.slice(0, 20)}`);
  t.true(partial.body.includes(`href="/customers?email=${encodeURIComponent(customer.email)}"`));
});

test('a viewer may not suppress or lift: 403 and the list is unchanged', async (t) => {
  const { customer } = await bouncedCustomer();
  const app = pagesApp(db.pool);
  const viewer = await loginAs(db.pool, 'viewer');
  const lift = await postForm(app, viewer, '/customers/unsuppress', {
    email: customer.email,
    note: 'please',
  });
  t.is(lift.statusCode, 403);
  const other = `other-${randomUUID()}@example.com`;
  const add = await postForm(app, viewer, '/customers/suppress', { email: other, note: 'x' });
  t.is(add.statusCode, 403);
  t.is((await suppression(customer.email))?.reason, 'bounce_hard');
  t.is(await suppression(other), undefined);
});

test('an operator suppresses with a required note, recorded under their console name', async (t) => {
  const customer = await createCustomer(db.pool, { email: `ann-${randomUUID()}@example.com` });
  const app = pagesApp(db.pool);
  const operator = await loginAs(db.pool, 'operator');
  const page = await getPage(app, operator, `/customers/${customer.customer_id}`);
  t.true(page.body.includes('action="/customers/suppress"'));
  const noNote = await postForm(app, operator, '/customers/suppress', { email: customer.email });
  t.is(noNote.statusCode, 409);
  t.regex(noNote.body, /Say why in the note/);
  t.is(await suppression(customer.email), undefined);
  const res = await postForm(app, operator, '/customers/suppress', {
    email: customer.email,
    reason: 'unsubscribe',
    note: 'asked by phone, ticket 4711',
  });
  t.is(res.statusCode, 303);
  t.deepEqual(await suppression(customer.email), { reason: 'unsubscribe', source: 'ops' });
  const [action] = (await actionsOf(db.pool, 'suppress')).filter((a) => a.email === customer.email);
  t.is(action?.actor, `console:${operator.username}`);
  t.is(action?.note, 'asked by phone, ticket 4711');
  const after = await getPage(app, operator, res.headers.location as string);
  t.regex(after.body, /Suppressed: the address is not mailed/);
  t.regex(after.body, /<strong>suppress<\/strong> by console:/);
});

test('lifting an opt-out needs force, as in the CLI; a bounce does not', async (t) => {
  const app = pagesApp(db.pool);
  const operator = await loginAs(db.pool, 'operator');
  const email = `optout-${randomUUID()}@example.com`;
  await db.pool.query(
    `insert into suppression_list (email, reason, source) values ($1, 'unsubscribe', 'user')`,
    [email],
  );
  const page = await getPage(app, operator, `/customers?email=${encodeURIComponent(email)}`);
  t.true(page.body.includes('name="force"'));
  t.regex(page.body, /Nothing behind this entry is kept any more/);
  const refused = await postForm(app, operator, '/customers/unsuppress', {
    email,
    note: 'wants the newsletter again',
  });
  t.is(refused.statusCode, 409);
  t.regex(refused.body, /removing that needs p_force =&gt; true/);
  t.is((await suppression(email))?.reason, 'unsubscribe');
  const forced = await postForm(app, operator, '/customers/unsuppress', {
    email,
    note: 'renewed consent by email, ticket 4714',
    force: 'yes',
  });
  t.is(forced.statusCode, 303);
  t.is(await suppression(email), undefined);
  const [action] = (await actionsOf(db.pool, 'unsuppress')).filter((a) => a.email === email);
  t.is(action?.actor, `console:${operator.username}`);
  t.is(action?.details.forced, true);

  const { customer } = await bouncedCustomer();
  const lifted = await postForm(app, operator, '/customers/unsuppress', {
    email: customer.email,
    note: 'mailbox fixed, ticket 4712',
  });
  t.is(lifted.statusCode, 303);
  t.is(await suppression(customer.email), undefined);
});
