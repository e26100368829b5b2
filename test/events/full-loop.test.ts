// The whole loop in one process, every part real: a worker sends a generated campaign through the
// local SES endpoint; its event publisher posts signed SNS notifications to the HTTP webhook;
// process_ses_event applies them; next week's campaign skips whoever bounced or complained.
import test from 'ava';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { waitFor } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';
import { startWorkerInProcess } from '../helpers/worker.ts';
import { startEventWebhook, suppressionList } from './helpers.ts';

const SIMULATOR = ['success', 'bounce', 'complaint', 'suppressionlist'].map(
  (box) => `${box}@simulator.amazonses.com`,
);
const READER = 'reader@example.com';

test('bounce and complaint addresses end suppressed and are skipped by next week’s campaign', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  for (const email of [...SIMULATOR, READER]) await createCustomer(db.pool, { email });
  await createTemplate(db.pool, { week_of_month: 1 });
  await createTemplate(db.pool, { week_of_month: 2 });

  const publisher = await startEventWebhook(t, db.pool);
  const ses = await startLocalSes({ onSend: publisher.publish });
  t.teardown(() => ses.close());
  await startWorkerInProcess(t, db.url, ses.url);

  async function runCampaign(week: number, date: string): Promise<string> {
    await db.pool.query(
      `select graphile_worker.add_job('generate_campaign',
         json_build_object('week_of_month', $1::int, 'generated_date', $2::text))`,
      [week, date],
    );
    const campaignId = await waitFor(
      async () =>
        (
          await db.pool.query<{ campaign_id: string }>(
            `select campaign_id from campaigns
              where week_of_month = $1 and generated_date = $2 and status = 'done'`,
            [week, date],
          )
        ).rows[0]?.campaign_id,
      { what: `week ${week} campaign to be sent`, timeoutMs: 60_000 },
    );
    await publisher.drain();
    await waitFor(
      async () =>
        (
          await db.pool.query(
            `select 1 from graphile_worker.jobs where task_identifier = 'process_ses_event'`,
          )
        ).rowCount === 0,
      { what: 'SES events to be processed', timeoutMs: 60_000 },
    );
    return campaignId;
  }

  async function statuses(campaignId: string): Promise<Record<string, string>> {
    const { rows } = await db.pool.query<{ email: string; recipient_status: string }>(
      'select email, recipient_status from campaign_recipients where campaign_id = $1',
      [campaignId],
    );
    return Object.fromEntries(rows.map((r) => [r.email, r.recipient_status]));
  }

  const week1 = await runCampaign(1, '2030-06-03');
  t.deepEqual(await statuses(week1), {
    'success@simulator.amazonses.com': 'sent',
    'bounce@simulator.amazonses.com': 'bounced',
    'complaint@simulator.amazonses.com': 'complained',
    'suppressionlist@simulator.amazonses.com': 'bounced',
    [READER]: 'sent',
  });
  t.deepEqual(await suppressionList(db.pool), [
    { email: 'bounce@simulator.amazonses.com', reason: 'bounce_hard', source: 'ses' },
    { email: 'complaint@simulator.amazonses.com', reason: 'complaint', source: 'ses' },
    { email: 'suppressionlist@simulator.amazonses.com', reason: 'bounce_hard', source: 'ses' },
  ]);
  const { rows: events } = await db.pool.query<{ event_type: string; n: number }>(
    `select event_type, count(*)::int as n from email_events_op
      where campaign_id = $1 and customer_id is not null group by event_type order by event_type`,
    [week1],
  );
  t.deepEqual(events, [
    { event_type: 'bounce', n: 2 },
    { event_type: 'complaint', n: 1 },
    { event_type: 'delivery', n: 3 },
    { event_type: 'send', n: 5 },
  ]);

  const sentBefore = ses.sent().length;
  const week2 = await runCampaign(2, '2030-06-10');
  t.deepEqual(await statuses(week2), {
    'success@simulator.amazonses.com': 'sent',
    'bounce@simulator.amazonses.com': 'suppressed',
    'complaint@simulator.amazonses.com': 'suppressed',
    'suppressionlist@simulator.amazonses.com': 'suppressed',
    [READER]: 'sent',
  });
  t.deepEqual(
    ses
      .sent()
      .slice(sentBefore)
      .flatMap((m) => m.to)
      .sort(),
    ['reader@example.com', 'success@simulator.amazonses.com'],
  );
});
