// The feeder's window: paced, a few seconds of sends at the account's rate, never more than
// mailer.feed_window; unpaced, mailer.feed_window.
import test from 'ava';
import pg from 'pg';
import { pacedFeedWindow } from '../../tasks/feed_campaign.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createCampaign, createRecipients, createTemplate } from '../helpers/factories.ts';
import { createTaskDeps, jobHelpers, loadTask } from '../helpers/tasks.ts';

/** A queued campaign of `count` pending recipients: the queue trigger feeds its first batch. */
async function queuedCampaign(pool: pg.Pool, count: number): Promise<string> {
  const template = await createTemplate(pool, { version: 1 });
  const campaign = await createCampaign(pool, { template_id: template.template_id });
  await createRecipients(pool, campaign.campaign_id, count, 'pending');
  await pool.query('select queue_campaign($1)', [campaign.campaign_id]);
  return campaign.campaign_id;
}

async function waitingSendJobs(pool: pg.Pool, campaignId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `select count(*)::int as n from graphile_worker.jobs
      where key like 'send_recipient:' || $1 || ':%'`,
    [campaignId],
  );
  return rows[0]?.n ?? 0;
}

async function feed(pool: pg.Pool, campaignId: string, rate: number | undefined) {
  const deps = { ...createTaskDeps(pool), sendRate: () => rate };
  const task = await loadTask(deps, 'feed_campaign');
  await task({ campaign_id: campaignId }, jobHelpers(deps.logger));
}

test('the paced window is five seconds of sends, at least the first batch', (t) => {
  t.is(pacedFeedWindow(undefined), undefined);
  t.is(pacedFeedWindow(0), undefined);
  t.is(pacedFeedWindow(14), 2_000);
  t.is(pacedFeedWindow(1_000), 5_000);
  t.is(pacedFeedWindow(2_500.5), 12_503);
});

test('paced at 1,000/s a campaign of 8,000 is fed 5,000 jobs; unpaced, all of them', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const campaignId = await queuedCampaign(db.pool, 8_000);
  t.is(await waitingSendJobs(db.pool, campaignId), 2_000, 'the first batch, fed when queued');

  await feed(db.pool, campaignId, 1_000);
  t.is(await waitingSendJobs(db.pool, campaignId), 5_000);
  await feed(db.pool, campaignId, 1_000);
  t.is(await waitingSendJobs(db.pool, campaignId), 5_000, 'a full window gets nothing more');

  await feed(db.pool, campaignId, undefined);
  t.is(await waitingSendJobs(db.pool, campaignId), 8_000);
});

test('mailer.feed_window caps the paced window too', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  await db.pool.query(
    `do $$ begin
       execute format('alter database %I set mailer.feed_window = 3000', current_database());
     end $$`,
  );
  // Sessions read the setting when they start.
  const pool = new pg.Pool({ connectionString: db.url });
  t.teardown(() => pool.end());
  const campaignId = await queuedCampaign(pool, 8_000);
  await feed(pool, campaignId, 1_000);
  t.is(await waitingSendJobs(pool, campaignId), 3_000);
});
