import test from 'ava';
import { databaseForFile } from '../helpers/db.ts';
import { createCampaign, createRecipient, createTemplate } from '../helpers/factories.ts';
import { taskRunner } from '../helpers/tasks.ts';

const db = databaseForFile();

test('deletes tokens expired longer ago than the grace period, in batches, and keeps the rest', async (t) => {
  const template = await createTemplate(db.pool);
  const campaign = await createCampaign(db.pool, { template_id: template.template_id });
  // 10,001 long expired (more than one batch), one inside the 30-day grace, one still valid.
  await db.pool.query(
    `insert into unsubscribe_tokens (email, campaign_id, expires_at)
     select 'old' || g || '@example.com', $1::uuid, now() - interval '31 days' from generate_series(1, 10001) g
     union all select 'recent@example.com', $1::uuid, now() - interval '29 days'
     union all select 'valid@example.com', $1::uuid, now() + interval '60 days'`,
    [campaign.campaign_id],
  );
  const task = await taskRunner('expire_unsubscribe_tokens', db.pool, {
    UNSUBSCRIBE_TOKEN_PURGE_AFTER_DAYS: '30',
  });
  await task.run({ _cron: { ts: new Date().toISOString(), backfilled: false } });
  const { rows } = await db.pool.query<{ email: string }>(
    'select email from unsubscribe_tokens order by email',
  );
  t.deepEqual(
    rows.map((r) => r.email),
    ['recent@example.com', 'valid@example.com'],
  );
  t.true(task.logs.some((l) => l.deleted === 10_001));

  await task.run();
  t.true(
    task.logs.some((l) => l.deleted === 0),
    'a second run finds nothing to do',
  );
});

// Serial, and its campaign removed after: the test above counts every token in the table.
test.serial(
  'keeps every token whose email went out or may still go out; only unsent ones go',
  async (t) => {
    const template = await createTemplate(db.pool, { version: 2 });
    const campaign = await createCampaign(db.pool, { template_id: template.template_id });
    t.teardown(() =>
      db.pool.query('delete from campaigns where campaign_id = $1', [campaign.campaign_id]),
    );
    const statuses = [
      'sent',
      'bounced',
      'complained',
      'unsubscribed',
      'in_doubt',
      'failed',
      'pending',
    ];
    const kept: string[] = [];
    for (const status of [...statuses, 'suppressed']) {
      const customer = await createRecipient(db.pool, campaign.campaign_id, status);
      if (status !== 'suppressed') kept.push(customer.email);
      await db.pool.query(
        `insert into unsubscribe_tokens (email, campaign_id, expires_at)
       values ($1, $2, now() - interval '31 days')`,
        [customer.email, campaign.campaign_id],
      );
    }
    const task = await taskRunner('expire_unsubscribe_tokens', db.pool, {
      UNSUBSCRIBE_TOKEN_PURGE_AFTER_DAYS: '30',
    });
    await task.run();
    const { rows } = await db.pool.query<{ email: string }>(
      'select email from unsubscribe_tokens where campaign_id = $1 order by email',
      [campaign.campaign_id],
    );
    t.deepEqual(
      rows.map((r) => r.email),
      kept.sort(),
    );
  },
);
