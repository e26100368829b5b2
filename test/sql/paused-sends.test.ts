// A paused campaign spends no send slots and leaves no waiting jobs in front of other campaigns.
import test from 'ava';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createCampaign, createRecipient, createTemplate } from '../helpers/factories.ts';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => {
  await db?.drop();
});

let version = 0;
async function queuedCampaign(recipients: number): Promise<string> {
  const { template_id } = await createTemplate(db.pool, { version: ++version });
  const campaign = await createCampaign(db.pool, { template_id });
  for (let i = 0; i < recipients; i++) {
    await createRecipient(db.pool, campaign.campaign_id, 'pending');
  }
  await db.pool.query('select queue_campaign($1)', [campaign.campaign_id]);
  return campaign.campaign_id;
}

async function waitingJobs(campaignId: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from graphile_worker.jobs
      where task_identifier = 'send_recipient' and key like $1`,
    [`send_recipient:${campaignId}:%`],
  );
  return rows[0]?.n ?? 0;
}

test('pausing removes the waiting send jobs of that campaign only; resuming queues them again', async (t) => {
  const paused = await queuedCampaign(5);
  const other = await queuedCampaign(3);
  t.is(await waitingJobs(paused), 5);
  await db.pool.query('select pause_campaign($1)', [paused]);
  t.is(await waitingJobs(paused), 0);
  t.is(await waitingJobs(other), 3);
  await db.pool.query('select resume_campaign($1)', [paused]);
  t.is(await waitingJobs(paused), 5);
});

test('no send slot for a paused campaign or a recipient that is not pending', async (t) => {
  const campaignId = await queuedCampaign(2);
  const { rows } = await db.pool.query<{ customer_id: string }>(
    'select customer_id from campaign_recipients where campaign_id = $1 order by customer_id',
    [campaignId],
  );
  const [first, second] = rows.map((r) => r.customer_id);
  const pacer = async () =>
    (
      await db.pool.query<{ next_slot: Date | null }>(
        'select max(next_slot) as next_slot from send_pacer',
      )
    ).rows[0]?.next_slot?.getTime() ?? 0;
  const slot = async (customerId: string | undefined) =>
    (
      await db.pool.query<{ slot: Date | null }>(
        'select slot from reserve_send_slots_for(10, array[$1]::uuid[], array[$2]::uuid[])',
        [campaignId, customerId],
      )
    ).rows[0]?.slot;

  t.truthy(await slot(first), 'a pending recipient of a queued campaign gets a slot');
  await db.pool.query(
    `update campaign_recipients set recipient_status = 'sent' where campaign_id = $1 and customer_id = $2`,
    [campaignId, first],
  );
  const before = await pacer();
  t.is(await slot(first), null, 'a recipient already sent gets none');
  await db.pool.query('select pause_campaign($1)', [campaignId]);
  t.is(await slot(second), null, 'a paused campaign gets none');
  t.is(await pacer(), before, 'and the pacer did not move');
});

test.serial(
  'a batch of slots: consecutive at the rate for the sendable recipients, none for the rest',
  async (t) => {
    const campaignId = await queuedCampaign(3);
    const { rows } = await db.pool.query<{ customer_id: string }>(
      'select customer_id from campaign_recipients where campaign_id = $1 order by customer_id',
      [campaignId],
    );
    const ids = rows.map((r) => r.customer_id);
    await db.pool.query(
      `update campaign_recipients set recipient_status = 'sent' where campaign_id = $1 and customer_id = $2`,
      [campaignId, ids[1]],
    );
    const reserve = async () =>
      (
        await db.pool.query<{ ord: number; slot: Date | null }>(
          'select * from reserve_send_slots_for(10, $1::uuid[], $2::uuid[])',
          [ids.map(() => campaignId), ids],
        )
      ).rows;
    const batch = await reserve();
    t.deepEqual(
      batch.map((r) => r.ord),
      [1, 2, 3],
    );
    t.is(batch[1]?.slot, null, 'the recipient already sent gets none');
    const first = batch[0]?.slot?.getTime() ?? 0;
    const third = batch[2]?.slot?.getTime() ?? 0;
    t.is(third - first, 100, 'the next slot, 1/10 s later');
    const next = await reserve();
    t.is((next[0]?.slot?.getTime() ?? 0) - third, 100, 'the pacer moved on by two slots');
    await db.pool.query('select pause_campaign($1)', [campaignId]);
    t.true(
      (await reserve()).every((r) => r.slot === null),
      'a paused campaign gets none',
    );
  },
);

test.serial('slots taken again in a batch: the pacer moves on by as many', async (t) => {
  const first = async (count: number) =>
    (
      await db.pool.query<{ first: Date }>('select reserve_send_slots(10, $1) as first', [count])
    ).rows[0]?.first.getTime() ?? 0;
  const a = await first(3);
  const b = await first(1);
  t.is(b - a, 300, 'three slots of 100 ms, then the next');
});
