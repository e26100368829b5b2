// The List-Unsubscribe URL with tokens nobody issued: random path segments, real tokens truncated,
// extended or with a character changed, another campaign's and another person's tokens, expired
// and reused ones, and one token clicked twenty times at once. Never a 5xx; a bad link changes
// nothing; a good one unsubscribes exactly its own address, once.
import { randomUUID } from 'node:crypto';
import { fc, testProp } from '@fast-check/ava';
import test, { type ExecutionContext } from 'ava';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createCustomer, createTemplate, generateMonthCampaign } from '../helpers/factories.ts';
import { PUBLIC_URL, type RunningServer, startServer } from '../http/helpers.ts';
import { runs } from './runs.ts';

let db: TestDatabase;
let server: RunningServer;
let month = 0;
let sample: { token: string; email: string };

test.before(async () => {
  db = await createTestDatabase();
  await createTemplate(db.pool, { week_of_month: 1 });
  server = await startServer(db.pool);
  const customer = await createCustomer(db.pool, { email: `sample-${randomUUID()}@example.com` });
  const { tokens } = await campaign();
  sample = { token: tokens.get(customer.email) ?? '', email: customer.email };
});
test.after.always(async () => {
  await server?.close();
  await db?.drop();
});

/** A fresh campaign for the given customers (and every other active one); its tokens by email. */
async function campaign(): Promise<{ campaignId: string; tokens: Map<string, string> }> {
  month++; // one week-1 campaign per month
  const c = await generateMonthCampaign(db.pool, 2031, month, PUBLIC_URL);
  const { rows } = await db.pool.query<{ email: string; token_id: string }>(
    'select email, token_id from unsubscribe_tokens where campaign_id = $1',
    [c.campaign_id],
  );
  return { campaignId: c.campaign_id, tokens: new Map(rows.map((r) => [r.email, r.token_id])) };
}

async function state(): Promise<string> {
  const { rows } = await db.pool.query(
    `select (select count(*) from suppression_list) as suppressed,
            (select count(*) from unsubscribe_tokens where used_at is not null) as used,
            (select count(*) from email_events_op) as events,
            (select count(*) from campaign_recipients where recipient_status = 'unsubscribed') as unsubscribed`,
  );
  return JSON.stringify(rows[0]);
}

function request(path: string, method: 'GET' | 'POST') {
  return fetch(`${server.url}/unsubscribe/${path}`, {
    method,
    redirect: 'manual',
    ...(method === 'POST'
      ? {
          body: 'List-Unsubscribe=One-Click',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        }
      : {}),
  });
}

async function expectNoEffect(t: ExecutionContext, path: string, allowed: number[]): Promise<void> {
  const before = await state();
  for (const method of ['GET', 'POST'] as const) {
    const response = await request(path, method);
    const html = await response.text();
    t.true(allowed.includes(response.status), `${method} ${path}: ${response.status}`);
    t.false(html.includes('You are unsubscribed'), `${method} ${path} unsubscribed someone`);
  }
  t.is(await state(), before, `${path} changed nothing`);
}

testProp(
  'random path segments get a 4xx page and change nothing',
  [fc.string({ unit: 'binary', maxLength: 80 })],
  async (t, segment) => {
    const path = encodeURIComponent(segment);
    // An empty or slash-only segment is another route (404); everything else is a bad link (400),
    // or by a tiny chance a well-formed token nobody issued (404).
    await expectNoEffect(t, path, [400, 404, 405]);
  },
  { numRuns: runs(150) },
);

const mutation = fc.oneof(
  fc.nat({ max: 35 }).map((n) => (token: string) => token.slice(0, n)),
  fc.string({ minLength: 1, maxLength: 4 }).map((s) => (token: string) => token + s),
  fc.tuple(fc.nat({ max: 35 }), fc.constantFrom(...'0123456789abcdefg-x ')).map(
    ([at, c]) =>
      (token: string) =>
        token.slice(0, at) + c + token.slice(at + 1),
  ),
  fc.constant((token: string) => token.replaceAll('-', '')),
  fc.constant((token: string) => `{${token}}`),
  fc.constant((token: string) => `${token}%00`),
);

testProp(
  'a real token truncated, extended or with a character changed changes nothing',
  [mutation],
  async (t, mutate) => {
    const changed = mutate(sample.token);
    if (changed.toLowerCase() === sample.token) return t.pass(); // the same token after all
    await expectNoEffect(t, encodeURIComponent(changed), [400, 404]);
  },
  { numRuns: runs(150) },
);

test.serial(
  'a token only ever unsubscribes the address it was made for, from any campaign',
  async (t) => {
    const ann = await createCustomer(db.pool, { email: `ann-${randomUUID()}@example.com` });
    const bob = await createCustomer(db.pool, { email: `bob-${randomUUID()}@example.com` });
    const first = await campaign();
    const second = await campaign();
    // Ann uses the first campaign's link: she is suppressed everywhere, Bob is untouched.
    const response = await request(first.tokens.get(ann.email) ?? '', 'POST');
    t.is(response.status, 200);
    const { rows } = await db.pool.query<{
      email: string;
      campaign_id: string;
      recipient_status: string;
    }>(
      `select email, campaign_id, recipient_status from campaign_recipients
      where customer_id = any($1::uuid[]) and campaign_id = any($2::uuid[]) order by email, campaign_id`,
      [
        [ann.customer_id, bob.customer_id],
        [first.campaignId, second.campaignId],
      ],
    );
    const status = (email: string, campaignId: string) =>
      rows.find((r) => r.email === email && r.campaign_id === campaignId)?.recipient_status;
    t.is(status(ann.email, first.campaignId), 'unsubscribed');
    t.is(
      status(ann.email, second.campaignId),
      'suppressed',
      'her pending recipient elsewhere stops',
    );
    t.is(status(bob.email, first.campaignId), 'pending');
    t.is(status(bob.email, second.campaignId), 'pending');
    const { rows: suppressed } = await db.pool.query(
      'select email from suppression_list where email = any($1)',
      [[ann.email, bob.email]],
    );
    t.deepEqual(suppressed, [{ email: ann.email }]);
    // Her link from the other campaign is harmless now, and so is hers from the first.
    t.is((await request(second.tokens.get(ann.email) ?? '', 'POST')).status, 200);
    const again = await request(first.tokens.get(ann.email) ?? '', 'POST');
    t.regex(await again.text(), /already unsubscribed/);
  },
);

test.serial('one link clicked twenty times at once unsubscribes once', async (t) => {
  const carol = await createCustomer(db.pool, { email: `carol-${randomUUID()}@example.com` });
  const { tokens } = await campaign();
  const token = tokens.get(carol.email) ?? '';
  const answers = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const response = await request(token, 'POST');
      return { status: response.status, html: await response.text() };
    }),
  );
  t.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
  t.is(answers.filter((a) => a.html.includes('You are unsubscribed')).length, 1);
  const { rows } = await db.pool.query<{ events: number; suppressions: number }>(
    `select (select count(*)::int from email_events_op where email = $1 and event_type = 'unsubscribe') as events,
            (select count(*)::int from suppression_list where email = $1) as suppressions`,
    [carol.email],
  );
  t.deepEqual(rows[0], { events: 1, suppressions: 1 });
});

test.serial(
  'a used link stays harmless after it expires, and a purged one is unknown',
  async (t) => {
    const dan = await createCustomer(db.pool, { email: `dan-${randomUUID()}@example.com` });
    const { tokens } = await campaign();
    const token = tokens.get(dan.email) ?? '';
    t.is((await request(token, 'POST')).status, 200);
    await db.pool.query(
      `update unsubscribe_tokens set expires_at = now() - interval '1 day' where token_id = $1`,
      [token],
    );
    const used = await request(token, 'POST');
    t.is(used.status, 200);
    t.regex(await used.text(), /already unsubscribed/);
    await db.pool.query('delete from unsubscribe_tokens where token_id = $1', [token]);
    await expectNoEffect(t, token, [404]);
  },
);
