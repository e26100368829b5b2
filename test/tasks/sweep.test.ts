// The sweep's fourth step: recipients whose send jobs are gone are queued again, but only once no
// send job is left that could still reach them.
import test from 'ava';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createCampaign, createRecipient, createTemplate } from '../helpers/factories.ts';
import { taskRunner } from '../helpers/tasks.ts';

async function queuedCampaign(db: TestDatabase, version: number, statuses: string[]) {
  const template = await createTemplate(db.pool, { version });
  const campaign = await createCampaign(db.pool, { template_id: template.template_id });
  const recipients = [];
  for (const status of statuses) {
    recipients.push(await createRecipient(db.pool, campaign.campaign_id, status));
  }
  await db.pool.query('select queue_campaign($1)', [campaign.campaign_id]);
  return { id: campaign.campaign_id, recipients };
}

function sendJobKeys(db: TestDatabase, campaignId: string): Promise<string[]> {
  return db.pool
    .query<{ key: string }>(
      `select key from graphile_worker.jobs
        where key like 'send_recipient:' || $1 || ':%' order by key`,
      [campaignId],
    )
    .then((r) => r.rows.map((j) => j.key));
}

/** Deletes the campaign's send jobs the way a finished job is deleted. */
async function loseJobs(db: TestDatabase, campaignId: string): Promise<void> {
  await db.pool.query(
    `select graphile_worker.complete_jobs(array(
       select id from graphile_worker.jobs where key like 'send_recipient:' || $1 || ':%'))`,
    [campaignId],
  );
}

test('the sweep queues pending recipients again once no send job is left, once', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const campaign = await queuedCampaign(db, 1, ['pending', 'pending', 'pending']);
  t.is((await sendJobKeys(db, campaign.id)).length, 3);
  await db.pool.query(
    `update campaign_recipients set recipient_status = 'sent' where customer_id = $1`,
    [campaign.recipients[2]?.customer_id],
  );
  await loseJobs(db, campaign.id);
  t.deepEqual(await sendJobKeys(db, campaign.id), []);

  const sweep = await taskRunner('sweep', db.pool);
  await sweep.run();
  const expected = campaign.recipients
    .slice(0, 2)
    .map((r) => `send_recipient:${campaign.id}:${r.customer_id}`)
    .sort();
  t.deepEqual(await sendJobKeys(db, campaign.id), expected, 'the two pending ones, not the sent');
  t.true(
    sweep.logs.some((l) => /2 pending recipient\(s\).*queued them again/.test(String(l.msg))),
    'said so',
  );

  // Their jobs exist now: the next sweep adds nothing.
  await sweep.run();
  t.deepEqual(await sendJobKeys(db, campaign.id), expected);
});

test('the sweep leaves orphans alone while any send job can still run, and paused campaigns always', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const orphaned = await queuedCampaign(db, 1, ['pending']);
  const paused = await queuedCampaign(db, 2, ['pending']);
  const running = await queuedCampaign(db, 3, ['pending']);
  await loseJobs(db, orphaned.id);
  await db.pool.query('select pause_campaign($1)', [paused.id]);
  await loseJobs(db, paused.id);
  const sweep = await taskRunner('sweep', db.pool);

  // Another campaign's job is still waiting: the orphan may simply not have been reached.
  await sweep.run();
  t.deepEqual(await sendJobKeys(db, orphaned.id), [], 'not while a send job waits');

  // That job failed for good: it will never run, so it no longer counts.
  await db.pool.query(
    `select graphile_worker.permanently_fail_jobs(array(
       select id from graphile_worker.jobs where key like 'send_recipient:' || $1 || ':%'), 'test')`,
    [running.id],
  );
  await sweep.run();
  t.deepEqual(await sendJobKeys(db, orphaned.id), [
    `send_recipient:${orphaned.id}:${orphaned.recipients[0]?.customer_id}`,
  ]);
  t.deepEqual(await sendJobKeys(db, paused.id), [], 'a paused campaign is left alone');
  const { rows: failed } = await db.pool.query<{ n: number; live: number }>(
    `select count(*)::int as n, count(*) filter (where attempts < max_attempts)::int as live
       from graphile_worker.jobs where key like 'send_recipient:' || $1 || ':%'`,
    [running.id],
  );
  t.deepEqual(failed[0], { n: 1, live: 0 }, 'a job failed for good stays as it is');
});
