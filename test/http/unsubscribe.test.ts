// The List-Unsubscribe URL through real HTTP, with tokens made by generate_campaign as in production.
import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createCustomer, createTemplate, generateMonthCampaign } from '../helpers/factories.ts';
import { deadPool, PUBLIC_URL, type RunningServer, startServer } from './helpers.ts';

let db: TestDatabase;
let server: RunningServer;
test.before(async () => {
  db = await createTestDatabase();
  await createTemplate(db.pool, { week_of_month: 1 });
  server = await startServer(db.pool);
});
test.after.always(async () => {
  await server?.close();
  await db?.drop();
});

let month = 0;
async function campaignFor(customerId: string, recipientStatus = 'sent') {
  month++; // one week-1 campaign per month
  const campaign = await generateMonthCampaign(db.pool, 2030, month, PUBLIC_URL);
  const { rows } = await db.pool.query<{ url: string }>(
    `update campaign_recipients set recipient_status = $3, last_attempt_at = now()
      where campaign_id = $1 and customer_id = $2
     returning template_data ->> 'unsubscribe_url' as url`,
    [campaign.campaign_id, customerId, recipientStatus],
  );
  const url = rows[0]?.url ?? '';
  return { campaignId: campaign.campaign_id, url, token: url.split('/').pop() ?? '' };
}

/** A customer who received a campaign email, and the unsubscribe link in it. */
async function recipient(email?: string) {
  const customer = await createCustomer(db.pool, email ? { email } : {});
  const campaign = await campaignFor(customer.customer_id);
  return { ...campaign, email: customer.email, customerId: customer.customer_id };
}

type Recipient = Awaited<ReturnType<typeof recipient>>;

function request(token: string, init: RequestInit = {}, base = server.url) {
  return fetch(`${base}/unsubscribe/${token}`, { redirect: 'manual', ...init });
}

const oneClick = (token: string, base?: string) =>
  request(
    token,
    {
      method: 'POST',
      body: 'List-Unsubscribe=One-Click',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    },
    base,
  );

async function state(r: Recipient) {
  const { rows } = await db.pool.query<{
    suppression: string | null;
    suppressed_at: Date | null;
    used: boolean;
    status: string;
    events: Array<{ method: string }>;
  }>(
    `select (select reason || '/' || source from suppression_list where email = $3) as suppression,
            (select created_at from suppression_list where email = $3) as suppressed_at,
            (select used_at is not null from unsubscribe_tokens where token_id = $4::uuid) as used,
            (select recipient_status from campaign_recipients
              where campaign_id = $1 and customer_id = $2) as status,
            (select coalesce(json_agg(payload), '[]') from email_events_op
              where event_type = 'unsubscribe' and email = $3 and campaign_id = $1
                and customer_id = $2) as events`,
    [r.campaignId, r.customerId, r.email, r.token],
  );
  return rows[0];
}

/**
 * A one-click POST with r's token: it answers "You are unsubscribed", and then the address is
 * suppressed as the user's unsubscribe, the token is used, the recipient is unsubscribed, and
 * `event` is the one unsubscribe event recorded.
 */
async function oneClickUnsubscribes(t: ExecutionContext, r: Recipient, event: object) {
  const response = await oneClick(r.token);
  t.is(response.status, 200);
  t.regex(await response.text(), /You are unsubscribed/);
  t.like(await state(r), {
    suppression: 'unsubscribe/user',
    used: true,
    status: 'unsubscribed',
    events: [event],
  });
}

test('the unsubscribe URL in the email is PUBLIC_URL/unsubscribe/<token>', async (t) => {
  const r = await recipient();
  t.is(r.url, `${PUBLIC_URL}/unsubscribe/${r.token}`);
});

test('a one-click POST (RFC 8058) unsubscribes at once', async (t) => {
  const r = await recipient();
  await oneClickUnsubscribes(t, r, { source: 'unsubscribe_link', method: 'one_click' });
});

test('a multipart one-click POST unsubscribes too', async (t) => {
  const r = await recipient();
  const body = new FormData();
  body.set('List-Unsubscribe', 'One-Click');
  const response = await request(r.token, { method: 'POST', body });
  t.is(response.status, 200);
  t.like(await state(r), { suppression: 'unsubscribe/user', status: 'unsubscribed' });
});

test('GET shows a confirmation page and changes nothing; its button unsubscribes', async (t) => {
  const r = await recipient();
  const page = await request(r.token);
  t.is(page.status, 200);
  const html = await page.text();
  t.true(html.includes(`<form method="post" action="${PUBLIC_URL}/unsubscribe/${r.token}">`));
  t.true(html.includes(r.email));
  t.like(await state(r), { suppression: null, used: false, status: 'sent', events: [] });

  const confirmed = await request(r.token, {
    method: 'POST',
    body: 'confirm=yes',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.is(confirmed.status, 200);
  t.like(await state(r), {
    suppression: 'unsubscribe/user',
    used: true,
    status: 'unsubscribed',
    events: [{ method: 'form' }],
  });
});

test('using the link again is harmless and says so', async (t) => {
  const r = await recipient();
  await oneClick(r.token);
  const first = await state(r);
  const again = await oneClick(r.token);
  t.is(again.status, 200);
  t.regex(await again.text(), /already unsubscribed/);
  const page = await request(r.token);
  t.is(page.status, 200);
  const html = await page.text();
  t.regex(html, /already unsubscribed/);
  t.false(html.includes('<form'));
  t.deepEqual(await state(r), first, 'one suppression, one event, nothing moved');
});

test('a link older than its TTL still unsubscribes with one click; its page says it is old', async (t) => {
  const r = await recipient();
  await db.pool.query(
    `update unsubscribe_tokens set expires_at = now() - interval '200 days' where token_id = $1`,
    [r.token],
  );
  const page = await request(r.token);
  t.is(page.status, 200);
  const html = await page.text();
  t.regex(html, /more than 90 days old; it still works/);
  t.true(html.includes(`<form method="post" action="${PUBLIC_URL}/unsubscribe/${r.token}">`));
  t.like(await state(r), { suppression: null, used: false, status: 'sent' }, 'GET changes nothing');

  await oneClickUnsubscribes(t, r, {
    source: 'unsubscribe_link',
    method: 'one_click',
    token_expired: true,
  });
});

test('the daily purge keeps the tokens of sent mail, so their one-click POST works long after', async (t) => {
  const r = await recipient();
  // A customer suppressed before the campaign: the email with this token never went out.
  const never = await createCustomer(db.pool);
  await db.pool.query("select suppress_email($1, 'manual')", [never.email]);
  const unsent = await campaignFor(never.customer_id, 'suppressed');
  await db.pool.query(
    `update unsubscribe_tokens set expires_at = now() - interval '31 days'
      where token_id in ($1::uuid, $2::uuid)`,
    [r.token, unsent.token],
  );
  await db.pool.query(`select expire_unsubscribe_tokens(interval '30 days', 10000)`);
  const { rows } = await db.pool.query<{ token_id: string }>(
    'select token_id from unsubscribe_tokens where token_id in ($1::uuid, $2::uuid)',
    [r.token, unsent.token],
  );
  t.deepEqual(
    rows.map((row) => row.token_id),
    [r.token],
  );
  t.is((await oneClick(unsent.token)).status, 404, 'a token no email carried is gone');
  const response = await oneClick(r.token);
  t.is(response.status, 200);
  t.like(await state(r), { suppression: 'unsubscribe/user', status: 'unsubscribed' });
});

test('a used link unsubscribes again once its suppression was lifted', async (t) => {
  const r = await recipient();
  await oneClick(r.token);
  await db.pool.query("select unsuppress_email($1, 'signed up again, ticket 9', true)", [r.email]);
  const page = await request(r.token);
  t.regex(await page.text(), /Press the button to stop receiving/);
  const again = await oneClick(r.token);
  t.is(again.status, 200);
  t.regex(await again.text(), /You are unsubscribed/);
  t.like(await state(r), { suppression: 'unsubscribe/user', used: true, status: 'unsubscribed' });
});

test('a malformed token gets a 400 page, an unknown one a 404 page, never a 500', async (t) => {
  const cases: Array<[string, number]> = [
    ['not-a-token', 400],
    [encodeURIComponent("1' or '1'='1"), 400],
    [encodeURIComponent('<script>alert(1)</script>'), 400],
    [`${randomUUID()}x`, 400],
    ['', 400],
    [randomUUID(), 404],
  ];
  for (const [token, status] of cases) {
    for (const response of [await request(token), await oneClick(token)]) {
      t.is(response.status, status, `${response.url}`);
      const html = await response.text();
      t.regex(html, /This unsubscribe link is not valid/);
      t.false(html.includes('<script>'));
    }
  }
});

test('a POST without a confirmation changes nothing and offers the button', async (t) => {
  const r = await recipient();
  const response = await request(r.token, { method: 'POST', body: 'hello=1' });
  t.is(response.status, 400);
  t.regex(await response.text(), /Nothing was changed[\s\S]*<button/);
  t.like(await state(r), { suppression: null, used: false, status: 'sent' });
});

test('the pages escape the address and forbid framing, caching and referrers', async (t) => {
  const r = await recipient(`x<b>"o'k"&${randomUUID().slice(0, 8)}@example.com`);
  const response = await request(r.token);
  const html = await response.text();
  t.false(html.includes('<b>'));
  t.true(html.includes('x&lt;b&gt;&quot;o&#39;k&quot;&amp;'));
  t.is(response.headers.get('x-frame-options'), 'DENY');
  t.is(response.headers.get('referrer-policy'), 'no-referrer');
  t.is(response.headers.get('cache-control'), 'no-store');
  t.regex(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  t.regex(response.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
});

test('a customer whose address changed since the campaign unsubscribes the address it went to', async (t) => {
  const r = await recipient();
  await db.pool.query(`update customers set email = 'moved-' || email where customer_id = $1`, [
    r.customerId,
  ]);
  await oneClickUnsubscribes(t, r, { source: 'unsubscribe_link', method: 'one_click' });
});

test("unsubscribing stops the address's pending recipients in later campaigns", async (t) => {
  const r = await recipient();
  const next = await campaignFor(r.customerId, 'pending');
  await oneClick(r.token);
  const { rows } = await db.pool.query(
    'select recipient_status from campaign_recipients where campaign_id = $1 and customer_id = $2',
    [next.campaignId, r.customerId],
  );
  t.deepEqual(rows, [{ recipient_status: 'suppressed' }]);
});

test('with the database down both GET and POST answer a 503 page', async (t) => {
  const pool = deadPool();
  const down = await startServer(pool);
  t.teardown(async () => {
    await down.close();
    await pool.end();
  });
  const token = randomUUID();
  for (const response of [await request(token, {}, down.url), await oneClick(token, down.url)]) {
    t.is(response.status, 503);
    t.regex(await response.text(), /try again in a few minutes/);
  }
});
