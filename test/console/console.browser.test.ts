// The console in a real browser: Debian's Chromium (no browser download) driven by
// playwright-core, against `mailer serve` with CONSOLE_PORT, real `mailer worker` processes and
// the local SES. Skipped, with the reason, only where chromium is not installed (.ci/run
// installs it). CONSOLE_SCREENSHOTS=1 writes docs/console/*.png from these pages.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { hashPassword } from '../../src/console/passwords.ts';
import { freePort } from '../../src/free-port.ts';
import { type LongRunning, startCli, waitFor } from '../helpers/cli.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createCustomer, createSendingCampaign, createTemplate } from '../helpers/factories.ts';
import { campaignStatus, generate, seedCustomers, startPipeline } from '../pipeline/harness.ts';
import { available, browserTests, CHROMIUM, docs, screenshots } from './browser-helpers.ts';

const browserTest = browserTests('console');
const XSS = '<script>alert(1)</script>';
const OPERATOR_PASSWORD = 'operator password 1';
const VIEWER_PASSWORD = 'viewer password 12';

const db = databaseForFile();
let browser: Browser | undefined;
const servers: LongRunning[] = [];

test.serial.before(async () => {
  if (!available) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // launch() gives every run a fresh temporary profile (the --user-data-dir).
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

test.after.always(async () => {
  await browser?.close();
  for (const server of servers) server.child.kill('SIGTERM');
  await Promise.all(servers.map((s) => s.exited));
});

async function addUsers(database: TestDatabase): Promise<void> {
  await database.pool.query(
    `select console_user_add('olivia', 'operator', true, $1),
            console_user_add('victor', 'viewer', false, $2)`,
    [await hashPassword(OPERATOR_PASSWORD), await hashPassword(VIEWER_PASSWORD)],
  );
}

/** `mailer serve` with the console on a port of its own; returns the console's URL. */
async function startConsole(env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const server = startCli(['serve', '-p', '0'], {
    ...env,
    CONSOLE_PORT: String(port),
    LOG_LEVEL: 'info',
  });
  servers.push(server);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () =>
      server.child.exitCode !== null ||
      (await fetch(`${url}/login`).then(
        (r) => r.ok,
        () => false,
      )),
    { what: 'the console listening', timeoutMs: 30_000 },
  );
  if (server.child.exitCode !== null) throw new Error(`serve exited:\n${server.output()}`);
  return url;
}

interface Session {
  context: BrowserContext;
  page: Page;
  dialogs: string[];
}

async function logIn(base: string, username: string, password: string): Promise<Session> {
  if (!browser) throw new Error('no browser');
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  const dialogs: string[] = [];
  // Confirm dialogs are the console's own (Pause?): accept them. Anything else is recorded.
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void (dialog.type() === 'confirm' ? dialog.accept() : dialog.dismiss());
  });
  await page.goto(`${base}/`);
  await page.waitForURL(/\/login/);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(/\/campaigns$/), page.click('button[type=submit]')]);
  return { context, page, dialogs };
}

async function shot(page: Page, name: string): Promise<void> {
  if (!screenshots) return;
  mkdirSync(docs, { recursive: true });
  await page.screenshot({ path: join(docs, `${name}.png`), fullPage: true });
}

function shownDone(page: Page, campaignId: string): Promise<number> {
  return page
    .locator(`#campaign-${campaignId} [data-field="done"]`)
    .textContent({ timeout: 1_000 })
    .then(
      (text) => Number((text ?? '').replaceAll(',', '')),
      () => -1,
    );
}

browserTest(
  'an operator watches a campaign progress live, pauses it and the workers stop',
  async (t) => {
    const p = await startPipeline(t, { env: { SES_MAX_SEND_RATE: '12' } });
    await addUsers(p.db);
    await seedCustomers(p.db, { active: 240 });
    const base = await startConsole(p.env);
    await Promise.all([p.startWorker(), p.startWorker()]);

    if (screenshots && browser) {
      const anonymous = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      await anonymous.goto(`${base}/login`);
      await shot(anonymous, 'login');
      await anonymous.close();
    }
    // Two more campaigns beside the live one, as a real list has: a draft not queued yet, and one
    // queued and paused in the same transaction (so nothing of it is sent).
    await createTemplate(p.db.pool, { week_of_month: 2 });
    await createTemplate(p.db.pool, { week_of_month: 3 });
    await generate(p.db, { week: 2, date: '2026-11-09', send: false });
    const paused = await generate(p.db, { week: 3, date: '2026-11-16', send: false });
    await waitFor(
      async () =>
        (await p.db.pool.query('select 1 from campaigns where generating')).rowCount === 0,
      { what: 'generation finished' },
    );
    await p.db.pool.query('select queue_campaign($1), pause_campaign($1)', [paused]);
    const { page, dialogs, context } = await logIn(base, 'olivia', OPERATOR_PASSWORD);
    const campaignId = await generate(p.db, { send: true });

    // The page, loaded once, follows the campaign: its count rises with no reload.
    await page.evaluate('window.loadedOnce = true');
    const first = await waitFor(
      async () => {
        const n = await shownDone(page, campaignId);
        return n > 0 ? n : undefined;
      },
      { what: 'the first sends shown', timeoutMs: 30_000, intervalMs: 250 },
    );
    const later = await waitFor(
      async () => {
        const n = await shownDone(page, campaignId);
        return n > first ? n : undefined;
      },
      { what: 'the count rising', timeoutMs: 20_000, intervalMs: 250 },
    );
    t.true(later > first, `${first} then ${later}`);
    t.true(await page.evaluate('window.loadedOnce === true'), 'the same page, not a reload');
    await t.notThrowsAsync(
      page.locator(`#campaign-${campaignId} .badge-sending`).waitFor({ timeout: 5_000 }),
    );
    await shot(page, 'campaigns');

    // Pause from the console (its confirm dialog accepted): the workers stop sending.
    await Promise.all([
      page.waitForURL(/done=paused/),
      page.click(`#campaign-${campaignId} form[action$="/pause"] button`),
    ]);
    t.true(
      dialogs.some((d) => d.startsWith('confirm: Pause')),
      dialogs.join('; '),
    );
    await t.notThrowsAsync(
      page.locator(`#campaign-${campaignId} .badge-paused`).waitFor({ timeout: 5_000 }),
    );
    t.regex((await page.locator('.notice').textContent()) ?? '', /Campaign paused/);
    t.is(await campaignStatus(p.db, campaignId), 'paused');
    // Sends already handed to SES finish; after that the count at SES stays still.
    await new Promise((r) => setTimeout(r, 2_000));
    const atPause = p.ses.sent().length;
    await new Promise((r) => setTimeout(r, 4_000));
    t.is(p.ses.sent().length, atPause, 'SES received nothing after the pause settled');
    t.true(atPause < 240, `${atPause} of 240 sent before the pause`);
    t.regex(
      (await page.locator(`#campaign-${campaignId}`).textContent()) ?? '',
      /paused by operator console:olivia/,
    );

    await page.goto(`${base}/audit`);
    const audit = (await page.locator('table.audit').textContent()) ?? '';
    t.regex(audit, /console:olivia\s*(database login \S+\s*)?pause_campaign/);
    t.regex(audit, /console_login/);
    await shot(page, 'audit');
    await context.close();
  },
);

browserTest('a viewer sees no buttons and is refused a pause with 403', async (t) => {
  await addUsers(db);
  const base = await startConsole({ DATABASE_URL: db.url, SES_ENDPOINT: 'http://127.0.0.1:9' });
  const campaignId = await createSendingCampaign(db.pool);
  const { page, context } = await logIn(base, 'victor', VIEWER_PASSWORD);
  t.is(await page.locator(`#campaign-${campaignId} form[action$="/pause"]`).count(), 0);
  // The form a viewer does not get, posted anyway with a valid CSRF token.
  const token = await page.locator('input[name=_csrf]').first().inputValue();
  const refused = await page.evaluate(
    async ({ id, token }) => {
      const response = await fetch(`/campaigns/${id}/pause`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: token }),
      });
      return { status: response.status, text: await response.text() };
    },
    { id: campaignId, token },
  );
  t.is(refused.status, 403);
  t.regex(refused.text, /Only an operator may do this/);
  const { rows } = await db.pool.query('select status from campaigns where campaign_id = $1', [
    campaignId,
  ]);
  t.is(rows[0]?.status, 'sending');
  await context.close();
});

browserTest('a POST without the CSRF token is refused with 403', async (t) => {
  const base = await startConsole({ DATABASE_URL: db.url, SES_ENDPOINT: 'http://127.0.0.1:9' });
  const campaignId = await createSendingCampaign(db.pool);
  const { page, context } = await logIn(base, 'olivia', OPERATOR_PASSWORD);
  const status = await page.evaluate(async (id) => {
    const response = await fetch(`/campaigns/${id}/pause`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    return response.status;
  }, campaignId);
  t.is(status, 403);
  const { rows } = await db.pool.query('select status from campaigns where campaign_id = $1', [
    campaignId,
  ]);
  t.is(rows[0]?.status, 'sending');
  await context.close();
});

browserTest('a customer named <script>alert(1)</script> is shown as text', async (t) => {
  const base = await startConsole({ DATABASE_URL: db.url, SES_ENDPOINT: 'http://127.0.0.1:9' });
  const customer = await createCustomer(db.pool, { email: 'xss@example.com', name: XSS });
  // Their name reaches the audit log through a note, as an operator might paste it.
  await db.pool.query(
    `insert into operator_actions (action, email, customer_id, note)
     values ('suppress', 'xss@example.com', $1, $2)`,
    [customer.customer_id, `asked by ${XSS}`],
  );
  const { page, dialogs, context } = await logIn(base, 'olivia', OPERATOR_PASSWORD);
  await page.goto(`${base}/audit`);
  await page.waitForTimeout(500);
  t.regex(
    (await page.locator('table.audit').textContent()) ?? '',
    /asked by <script>alert\(1\)<\/script>/,
  );
  // The customers page, where the other page modules provide one.
  const lookup = await page.goto(`${base}/customers?q=xss%40example.com`);
  if (lookup?.status() === 200) {
    await page.waitForTimeout(500);
    t.true(((await page.locator('main').textContent()) ?? '').includes(XSS));
  } else {
    t.log(`/customers answered ${lookup?.status()}: checked on the audit log only`);
  }
  t.deepEqual(dialogs, [], 'no dialog fired');
  await context.close();
});
