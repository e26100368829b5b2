// Generation in lanes (plan_campaign_generation, generate_campaign_chunk's p_lane): the customers
// split into customer_id ranges written at the same time, and the feeder, which queues
// recipients in customer_id order behind one cursor, never passing a recipient a lane has yet to
// write. The tests run one after the other: a campaign takes every customer of the database.
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { generateCampaign } from '../../src/queries/campaigns.ts';
import { connectClient, databaseForFile, uuidMillisecondsSql } from '../helpers/db.ts';
import { createTemplate } from '../helpers/factories.ts';

const db = databaseForFile();
const URL = 'https://mail.example.test';
const CUSTOMERS = 1_000;
let active = 0;
let suppressed = 0;

test.before(async () => {
  await createTemplate(db.pool, { week_of_month: 1 });
  await db.pool.query(
    `insert into customers (email, name, is_active)
     select 'lane-' || g || '@example.com', 'Customer ' || g, g % 10 <> 0
       from generate_series(1, $1::int) g`,
    [CUSTOMERS],
  );
  await db.pool.query(
    `insert into suppression_list (email, reason, source)
     select email, 'manual', 'ops' from customers where is_active and right(email, 14) like '7@%'`,
  );
  const { rows } = await db.pool.query<{ active: number; suppressed: number }>(
    `select count(*) filter (where is_active)::int as active,
            count(*) filter (where is_active and email in (select email from suppression_list))::int
              as suppressed
       from customers`,
  );
  active = rows[0]?.active ?? 0;
  suppressed = rows[0]?.suppressed ?? 0;
});

async function session(t: ExecutionContext) {
  const client = await connectClient(t, db.url);
  await client.query(
    `set mailer.generation_lanes = 2; set mailer.generation_chunk = 50;
     set mailer.generation_first_chunk = 20; set mailer.feed_first_batch = 1000`,
  );
  return client;
}

async function lanes(campaignId: string) {
  const { rows } = await db.pool.query<{
    lane: number;
    lower_bound: string | null;
    upper_bound: string | null;
    done: boolean;
    recipients: number;
  }>(
    `select l.lane, l.lower_bound, l.upper_bound, l.done,
            (select count(*)::int from campaign_recipients r
              where r.campaign_id = l.campaign_id
                and (l.lower_bound is null or r.customer_id >= l.lower_bound)
                and (l.upper_bound is null or r.customer_id < l.upper_bound)) as recipients
       from campaign_generation_lanes l where l.campaign_id = $1 order by l.lane`,
    [campaignId],
  );
  return rows;
}

async function generating(campaignId: string): Promise<boolean | undefined> {
  const { rows } = await db.pool.query<{ generating: boolean }>(
    'select generating from campaigns where campaign_id = $1',
    [campaignId],
  );
  return rows[0]?.generating;
}

test.serial('three lanes write every active customer once, each with its token', async (t) => {
  await db.pool.query(
    `do $$ begin
       execute format('alter database %I set mailer.generation_lanes = 3', current_database());
       execute format('alter database %I set mailer.generation_chunk = 50', current_database());
     end $$`,
  );
  // New connections read the database's settings.
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  t.teardown(async () => {
    await pool.end();
    await db.pool.query(
      `do $$ begin
         execute format('alter database %I reset mailer.generation_lanes', current_database());
         execute format('alter database %I reset mailer.generation_chunk', current_database());
       end $$`,
    );
  });
  const options = {
    weekOfMonth: 1,
    generatedDate: '2031-01-06',
    send: false,
    tokenTtlDays: 30,
    publicUrl: URL,
    force: true,
  };
  const campaign = await generateCampaign(pool, options);

  const split = await lanes(campaign.campaign_id);
  t.deepEqual(
    split.map((l) => [l.lane, l.done]),
    [
      [0, true],
      [1, true],
      [2, true],
    ],
  );
  t.is(split[0]?.lower_bound, null);
  t.is(split[2]?.upper_bound, null);
  t.is(split[0]?.upper_bound, split[1]?.lower_bound);
  t.is(split[1]?.upper_bound, split[2]?.lower_bound);
  for (const lane of split) {
    t.true(
      lane.recipients > active / 3 - 50 && lane.recipients < active / 3 + 50,
      `${lane.recipients}`,
    );
  }
  t.false(await generating(campaign.campaign_id));

  const { rows } = await db.pool.query<{
    recipients: number;
    customers: number;
    tokens: number;
    token_emails: number;
    suppressed: number;
    missing: number;
  }>(
    `select count(*)::int as recipients, count(distinct r.customer_id)::int as customers,
            (select count(*)::int from unsubscribe_tokens t where t.campaign_id = $1) as tokens,
            (select count(distinct t.email)::int from unsubscribe_tokens t
              where t.campaign_id = $1) as token_emails,
            count(*) filter (where r.recipient_status = 'suppressed')::int as suppressed,
            (select count(*)::int from customers c
              where c.is_active and not exists (
                select 1 from campaign_recipients x
                 where x.campaign_id = $1 and x.customer_id = c.customer_id)) as missing
       from campaign_recipients r where r.campaign_id = $1`,
    [campaign.campaign_id],
  );
  t.deepEqual(rows[0], {
    recipients: active,
    customers: active,
    tokens: active,
    token_emails: active,
    suppressed,
    missing: 0,
  });

  // A rerun finds the campaign generated: nothing more.
  const again = await generateCampaign(pool, options);
  t.is(again.campaign_id, campaign.campaign_id);
  t.is(again.recipients, active);
});

test.serial('the feeder feeds nothing past the lowest lane still generating', async (t) => {
  const client = await session(t);
  const { rows } = await client.query<{ campaign_id: string }>(
    `select begin_campaign_generation(1, '2031-02-03', true, interval '30 days', $1,
                                      p_force => true) as campaign_id`,
    [URL],
  );
  const campaignId = rows[0]?.campaign_id as string;
  const [lane0, lane1] = await lanes(campaignId);
  const lane1Start = lane1?.lower_bound;
  if (!lane0 || !lane1Start) throw new Error('expected two lanes');
  t.is(lane0.recipients, 20, 'the first chunk, in lane 0');

  // Lane 1 writes all of its range while lane 0 has only its first chunk.
  while (
    (
      await client.query<{ n: number }>(
        `select generate_campaign_chunk($1, interval '30 days', $2, p_lane => 1) as n`,
        [campaignId, URL],
      )
    ).rows[0]?.n
  );
  t.true((await lanes(campaignId))[1]?.done);

  const feed = () => client.query('select feed_campaign_sends($1, 100000, 100000)', [campaignId]);
  const jobs = async () =>
    (
      await db.pool.query<{ customer_id: string; n: number }>(
        `select j.payload->>'customer_id' as customer_id, count(*)::int as n
           from graphile_worker._private_jobs j
           join graphile_worker._private_tasks k on k.id = j.task_id
          where k.identifier = 'send_recipient' and j.payload->>'campaign_id' = $1
          group by 1`,
        [campaignId],
      )
    ).rows;

  await feed();
  const early = await jobs();
  t.true(early.length > 0, 'the first chunk is fed');
  t.true(
    early.every((j) => j.customer_id < lane1Start),
    'no job for a recipient of lane 1 while lane 0 generates',
  );

  // Lane 0 ends, then the feeder goes on through lane 1.
  while (
    (
      await client.query<{ n: number }>(
        `select generate_campaign_chunk($1, interval '30 days', $2, p_lane => 0) as n`,
        [campaignId, URL],
      )
    ).rows[0]?.n
  );
  t.false(await generating(campaignId));
  await feed();
  await feed();

  const all = await jobs();
  t.true(
    all.every((j) => j.n === 1),
    'one job per recipient',
  );
  const { rows: pending } = await db.pool.query<{ customer_id: string }>(
    `select customer_id::text from campaign_recipients
      where campaign_id = $1 and recipient_status = 'pending' order by customer_id`,
    [campaignId],
  );
  t.is(pending.length, active - suppressed);
  t.deepEqual(
    all.map((j) => j.customer_id).sort(),
    pending.map((r) => r.customer_id).sort(),
    'every pending recipient has its send job',
  );
  await db.pool.query('select pause_campaign($1)', [campaignId]);
});

test.serial('two lanes that end at the same moment end the generation', async (t) => {
  const first = await session(t);
  const second = await session(t);
  const { rows } = await first.query<{ campaign_id: string }>(
    `select begin_campaign_generation(1, '2031-03-03', false, interval '30 days', $1,
                                      p_force => true, p_first_chunk => 0) as campaign_id`,
    [URL],
  );
  const campaignId = rows[0]?.campaign_id as string;
  const chunk = (client: pg.Client, lane: number, limit: number) =>
    client.query<{ n: number }>(
      `select generate_campaign_chunk($1, interval '30 days', $2, $3, $4) as n`,
      [campaignId, URL, limit, lane],
    );
  // Each lane written but for its last chunk, which finds fewer than it could hold.
  await chunk(first, 0, 100);
  await chunk(second, 1, 100);

  await first.query('begin');
  await chunk(first, 0, 10_000);
  // Lane 1's last chunk runs while lane 0's is not committed: it must wait to see it.
  const secondEnds = chunk(second, 1, 10_000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.true(await generating(campaignId), 'nothing ended before lane 0 commits');
  await first.query('commit');
  await secondEnds;

  t.deepEqual(
    (await lanes(campaignId)).map((l) => l.done),
    [true, true],
  );
  t.false(await generating(campaignId), 'the lane that ended last ended the generation');
  t.is(
    (
      await db.pool.query<{ n: number }>(
        'select count(*)::int as n from campaign_recipients where campaign_id = $1',
        [campaignId],
      )
    ).rows[0]?.n,
    active,
  );
});

test.serial('token ids follow the order they were written in (version 7)', async (t) => {
  // Lane after lane in one transaction: lane 0 holds the lowest customer ids, and each lane
  // writes its customers in customer_id order, so that is the order the tokens were written in.
  const client = await db.pool.connect();
  t.teardown(() => client.release());
  await client.query(
    `begin; set local mailer.generation_lanes = 2; set local mailer.generation_chunk = 50;
     set local mailer.generation_first_chunk = 20`,
  );
  const campaign = await generateCampaign(client, {
    weekOfMonth: 1,
    generatedDate: '2031-01-27',
    send: false,
    tokenTtlDays: 30,
    publicUrl: URL,
    force: true,
  });
  await client.query('commit');
  const { rows } = await db.pool.query<{
    tokens: number;
    version_7: boolean;
    variant: boolean;
    backwards: number;
    milliseconds: number;
    clock_skew_ms: number;
    in_urls: number;
  }>(
    `with t as (
       select t.token_id, t.email, r.customer_id,
              ${uuidMillisecondsSql('t.token_id')} as ms
         from unsubscribe_tokens t
         join campaign_recipients r on r.campaign_id = t.campaign_id and r.email = t.email
        where t.campaign_id = $1
     ), walked as (
       select t.*, lag(ms) over (order by customer_id) as previous from t
     )
     select count(*)::int as tokens,
            bool_and(substr(token_id::text, 15, 1) = '7') as version_7,
            bool_and(substr(token_id::text, 20, 1) in ('8', '9', 'a', 'b')) as variant,
            count(*) filter (where ms < previous)::int as backwards,
            count(distinct ms)::int as milliseconds,
            max(abs(extract(epoch from clock_timestamp()) * 1000 - ms))::float8 as clock_skew_ms,
            (select count(*)::int from campaign_recipients r join walked w using (email)
              where r.campaign_id = $1
                and r.template_data->>'unsubscribe_url' = $2 || '/unsubscribe/' || w.token_id)
              as in_urls
       from walked`,
    [campaign.campaign_id, URL],
  );
  const r = rows[0];
  t.is(r?.tokens, active);
  t.true(r?.version_7);
  t.true(r?.variant);
  // Each chunk's tokens carry its millisecond; random ids would go back about every other row.
  t.is(r?.backwards, 0);
  t.true((r?.milliseconds ?? 0) > 1, `${r?.milliseconds} distinct milliseconds over the chunks`);
  t.true((r?.clock_skew_ms ?? Infinity) < 60_000, `token time ${r?.clock_skew_ms} ms from now`);
  t.is(r?.in_urls, active, 'every recipient links its own token');
});
