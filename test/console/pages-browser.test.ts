// The support pages in a real browser (Debian's chromium, driven by playwright-core): log in
// through the form, look a bounced customer up and see why they are blocked, and suppress
// another with a note that lands in operator_actions under the console user. The pages run under
// the console's Content-Security-Policy, so a page that needed inline script or style would
// show it here as a console error. Skipped, with the reason, only where chromium is not
// installed (.ci/run installs it). CONSOLE_SCREENSHOTS=1 writes docs/console/ pictures of the
// customer and campaign pages, as console.browser.test.ts does for its pages.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { type Browser, chromium, type Page } from 'playwright-core';
import { hashPassword } from '../../src/console/passwords.ts';
import { actionsOf, databaseForFile } from '../helpers/db.ts';
import {
  createCustomer,
  createRecipient,
  createRecipients,
  createSendingCampaign,
} from '../helpers/factories.ts';
import { available, browserTests, CHROMIUM, docs, screenshots } from './browser-helpers.ts';
import { bouncedCustomer, pagesApp } from './pages-helpers.ts';

const browserTest = browserTests('pages');
const db = databaseForFile();
let browser: Browser;
let base: string;
let close: () => Promise<unknown>;

test.serial.before(async () => {
  if (!available) return;
  await db.pool.query(
    `insert into console_users (username, role, can_queue, password_hash)
     values ('olivia', 'operator', false, $1)`,
    [await hashPassword('correct horse battery staple')],
  );
  const app = pagesApp(db.pool);
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  close = () => app.close();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
test.after.always(async () => {
  await browser?.close();
  await close?.();
});

/** For the picture: 40 minutes of a campaign sending, with failures and recipients in doubt. */
async function busyCampaign(): Promise<string> {
  const campaignId = await createSendingCampaign(db.pool);
  await createRecipients(db.pool, campaignId, 1200, 'sent');
  await db.pool.query(
    `update campaign_recipients r
        set recipient_status = case when n % 97 = 0 then 'bounced' when n % 401 = 0
                                    then 'complained' else 'sent' end,
            last_attempt_at = now() - make_interval(secs => 2 * n)
       from (select customer_id, row_number() over (order by customer_id) as n
               from campaign_recipients where campaign_id = $1) x
      where r.campaign_id = $1 and r.customer_id = x.customer_id`,
    [campaignId],
  );
  await db.pool.query(
    `insert into email_events_op (event_type, campaign_id, customer_id, email, event_time)
     select t, r.campaign_id, r.customer_id, r.email, r.last_attempt_at + d
       from campaign_recipients r
       cross join lateral (values ('send', interval '1 second'), ('delivery', interval '3 seconds'),
                                  ('bounce', interval '5 seconds'), ('complaint', interval '1 minute')) v(t, d)
      where r.campaign_id = $1
        and (t in ('send', 'delivery') or (t = 'bounce' and r.recipient_status = 'bounced')
             or (t = 'complaint' and r.recipient_status = 'complained'))`,
    [campaignId],
  );
  for (let i = 0; i < 3; i++) {
    await createRecipient(db.pool, campaignId, 'failed', {
      lastError: 'MessageRejected: Email address is not verified. (HTTP 400)',
    });
    await createRecipient(db.pool, campaignId, 'in_doubt', {
      lastError: 'TimeoutError: socket hang up',
    });
  }
  await createRecipients(db.pool, campaignId, 300, 'pending');
  return campaignId;
}

/** A logged-in page; `errors` collects what the browser's console reports (CSP refusals too). */
async function loggedIn(): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/customers`);
  await page.fill('input[name="username"]', 'olivia');
  await page.fill('input[name="password"]', 'correct horse battery staple');
  await Promise.all([page.waitForURL(`${base}/customers`), page.click('button[type="submit"]')]);
  return { page, errors };
}

browserTest('looks a bounced customer up and sees why the address is blocked', async (t) => {
  const { customer } = await bouncedCustomer(db.pool, '<script>alert(1)</script>');
  const { page, errors } = await loggedIn();
  let dialogs = 0;
  page.on('dialog', async (d) => {
    dialogs++;
    await d.dismiss();
  });
  await page.fill('input[name="email"]', customer.email.toUpperCase());
  await Promise.all([page.waitForURL(/\/customers\?email=/), page.click('text=Look up')]);
  t.is(await page.locator('h1').textContent(), `<script>alert(1)</script> <${customer.email}>`);
  const suppression = page.locator('section', { hasText: 'Why: what was recorded' });
  t.regex(
    String(await suppression.textContent()),
    /Suppressed: bounce_hard, by ses \(an SES event\)/,
  );
  t.regex(
    String(await suppression.textContent()),
    /SES bounce event: Permanent \/General smtp; 550 5\.1\.1 user unknown/,
  );
  const history = page.locator('section', { hasText: 'Recent campaigns' });
  t.regex(String(await history.textContent()), /bounced/);
  t.is(dialogs, 0, 'the name is text, not a script');
  t.deepEqual(errors, []);
  if (screenshots) {
    mkdirSync(docs, { recursive: true });
    await page.screenshot({ path: join(docs, 'customer.png'), fullPage: true });
    const busy = await busyCampaign();
    await page.goto(`${base}/campaigns/${busy}`);
    await page.screenshot({ path: join(docs, 'campaign-page.png'), fullPage: true });
    t.deepEqual(errors, []);
  }
});

browserTest('suppresses an address with the note recorded under the console user', async (t) => {
  const customer = await createCustomer(db.pool, { email: `ann-${randomUUID()}@example.com` });
  const { page, errors } = await loggedIn();
  await page.goto(`${base}/customers/${customer.customer_id}`);
  t.regex(
    String(await page.locator('section', { hasText: 'Suppression' }).first().textContent()),
    /Not suppressed/,
  );
  const form = page.locator('form[action="/customers/suppress"]');
  // The note is required: the browser does not submit the form without it.
  await form.locator('button').click();
  t.is(page.url(), `${base}/customers/${customer.customer_id}`);
  await form.locator('select[name="reason"]').selectOption('unsubscribe');
  await form.locator('input[name="note"]').fill('asked by phone, ticket 4711');
  await Promise.all([page.waitForURL(/done=suppressed/), form.locator('button').click()]);
  t.regex(
    String(await page.locator('.notice').textContent()),
    /Suppressed: the address is not mailed/,
  );
  t.regex(
    String(await page.locator('section', { hasText: 'Why: what was recorded' }).textContent()),
    /suppress by console:olivia \(unsubscribe\): “asked by phone, ticket 4711”/,
  );
  const [action] = (await actionsOf(db.pool, 'suppress')).filter((a) => a.email === customer.email);
  t.is(action?.actor, 'console:olivia');
  t.is(action?.note, 'asked by phone, ticket 4711');
  const { rows } = await db.pool.query(
    'select reason, source from suppression_list where email = $1',
    [customer.email],
  );
  t.deepEqual(rows, [{ reason: 'unsubscribe', source: 'ops' }]);
  t.deepEqual(errors, []);
});
