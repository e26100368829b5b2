// The console's shared cache of campaign figures: many viewers, one count per refresh interval;
// the same estimate as `campaign status`; the stall flag after a minute with nothing accepted.
import test from 'ava';
import type { Db } from '../../src/db/pool.ts';
import { CampaignFiguresCache, STALL_FLAG_SECONDS } from '../../src/queries/campaign-figures.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createRecipients, createSendingCampaign } from '../helpers/factories.ts';

const db = databaseForFile();

/** The pool, counting the queries that count a campaign's recipients. */
function countingDb(): { db: Db; counts: () => number } {
  let counts = 0;
  const wrapped = {
    query: (...args: Parameters<typeof db.pool.query>) => {
      if (String(args[0]).includes('campaign_progress')) counts++;
      return (db.pool.query as (...a: unknown[]) => unknown)(...args);
    },
  } as unknown as Db;
  return { db: wrapped, counts: () => counts };
}

const state = (campaign_id: string, status = 'sending') => ({
  campaign_id,
  status,
  pause_reason: null,
});

test('twenty viewers at once cost one count; the next interval costs one more', async (t) => {
  const campaignId = await createSendingCampaign(db.pool);
  await createRecipients(db.pool, campaignId, 30, 'sent');
  await createRecipients(db.pool, campaignId, 70, 'pending');
  const counting = countingDb();
  const cache = new CampaignFiguresCache(counting.db, { progressRefreshMs: 300, waitMs: 5_000 });
  const views = await Promise.all(
    Array.from({ length: 20 }, () => cache.getMany([state(campaignId)])),
  );
  t.is(counting.counts(), 1);
  for (const view of views) {
    const f = view.get(campaignId);
    t.is(f?.progress.recipients, 100);
    t.is(f?.progress.counts.sent, 30);
  }
  await cache.getMany([state(campaignId)]);
  t.is(counting.counts(), 1, 'within the interval: from the cache');
  await new Promise((r) => setTimeout(r, 350));
  await createRecipients(db.pool, campaignId, 10, 'sent');
  await cache.getMany([state(campaignId)]); // stale: answered at once, a count starts
  await new Promise((r) => setTimeout(r, 200));
  const later = (await cache.getMany([state(campaignId)])).get(campaignId);
  t.is(counting.counts(), 2);
  t.is(later?.progress.counts.sent, 40);
  await cache.close();
});

test('a campaign not counted yet answers without waiting past waitMs', async (t) => {
  const campaignId = await createSendingCampaign(db.pool);
  const slow = {
    query: async (...args: unknown[]) => {
      if (String(args[0]).includes('campaign_progress'))
        await new Promise((r) => setTimeout(r, 500));
      return (db.pool.query as (...a: unknown[]) => unknown)(...args);
    },
  } as unknown as Db;
  const cache = new CampaignFiguresCache(slow, { waitMs: 50 });
  const started = Date.now();
  const figures = await cache.getMany([state(campaignId)]);
  t.true(Date.now() - started < 300, `${Date.now() - started} ms`);
  t.is(figures.get(campaignId), undefined, 'shown as "counting…"');
  await cache.close();
});

test('a sending campaign with nothing accepted for a minute is flagged as stalled', async (t) => {
  const quiet = await createSendingCampaign(db.pool);
  const busy = await createSendingCampaign(db.pool);
  // Accepted two minutes ago (created_at sets updated_at, what the rate's index reads), and
  // recipients still to send.
  await db.pool.query(
    `with c as (insert into customers (email) values ('stalled@example.com') returning *)
     insert into campaign_recipients (campaign_id, customer_id, email, recipient_status,
                                      ses_message_id, last_attempt_at, attempt_count, created_at)
     select $1, c.customer_id, c.email, 'sent', 'ses-stalled', now() - interval '2 minutes', 1,
            now() - interval '2 minutes' from c`,
    [quiet],
  );
  await createRecipients(db.pool, quiet, 5, 'pending');
  await createRecipients(db.pool, busy, 5, 'sent');
  await createRecipients(db.pool, busy, 5, 'pending');
  const cache = new CampaignFiguresCache(db.pool, { waitMs: 5_000 });
  const figures = await cache.getMany([state(quiet), state(busy)]);
  const stalled = figures.get(quiet)?.stalledSeconds ?? 0;
  t.true(stalled >= 110 && stalled < 200, `${stalled}`);
  t.true(STALL_FLAG_SECONDS === 60);
  t.is(figures.get(quiet)?.estimate.eta_seconds, null, 'no ETA while stalled');
  t.is(figures.get(busy)?.stalledSeconds, null);
  t.true((figures.get(busy)?.estimate.rate_per_second ?? 0) > 0);
  const paused = await cache.getMany([state(quiet, 'paused')]);
  t.is(paused.get(quiet)?.stalledSeconds, null, 'a paused campaign is not stalled');
  await cache.close();
});
