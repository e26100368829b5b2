// The send path's batched writes (src/queries/send-batches.ts) against real PostgreSQL: what each
// caller gets back, how callers share statements, and what a failed batch does to them.
import test from 'ava';
import type pg from 'pg';
import { createSendBatches } from '../../src/queries/send-batches.ts';
import { createTestDatabase, databaseForFile } from '../helpers/db.ts';
import {
  createRecipient,
  createSendingCampaign,
  createSentRecipient,
  recipientRow,
} from '../helpers/factories.ts';

const db = databaseForFile();

type Query = { name: string; text: string; values: unknown[] };

/** The test database's pool, recording each statement sent through it. */
function recordingPool() {
  const statements: Query[] = [];
  const pool = {
    query: (query: Query) => {
      statements.push(query);
      return db.pool.query(query);
    },
  } as unknown as pg.Pool;
  return { pool, statements };
}

const lease = { leaseSeconds: 120 };

async function pendingRecipients(count: number, campaignId?: string, pool = db.pool) {
  const campaign = campaignId ?? (await createSendingCampaign(pool));
  const recipients = [];
  for (let i = 0; i < count; i++) {
    recipients.push(await createRecipient(pool, campaign, 'pending'));
  }
  return recipients;
}

const keyOf = (r: { campaignId: string; customerId: string }) => ({
  campaign_id: r.campaignId,
  customer_id: r.customerId,
});

test('claims asked for in the same turn share one statement; each caller gets its own claim', async (t) => {
  const recipients = await pendingRecipients(5);
  const { pool, statements } = recordingPool();
  const batches = createSendBatches(pool, lease);
  const claims = await Promise.all(recipients.map((r) => batches.claim(keyOf(r), false)));
  t.is(statements.length, 1);
  t.deepEqual(
    claims.map((c) => [c.outcome, c.email]),
    recipients.map((r) => ['claimed', r.email]),
  );
  for (const r of recipients)
    t.like(await recipientRow(db.pool, r), { recipient_status: 'sending' });
});

test('a batch holds at most maxBatch claims', async (t) => {
  const recipients = await pendingRecipients(5);
  const { pool, statements } = recordingPool();
  const batches = createSendBatches(pool, { ...lease, maxBatch: 2, maxInFlight: 4 });
  await Promise.all(recipients.map((r) => batches.claim(keyOf(r), false)));
  t.deepEqual(
    statements.map((s) => (s.values[0] as string[]).length),
    [2, 2, 1],
  );
});

test('a paced claim goes in a batch of its own kind', async (t) => {
  const [unpaced, paced] = await pendingRecipients(2);
  if (!unpaced || !paced) return t.fail();
  const { pool, statements } = recordingPool();
  const batches = createSendBatches(pool, lease);
  const claims = await Promise.all([
    batches.claim(keyOf(unpaced), false),
    batches.claim(keyOf(paced), true),
  ]);
  t.deepEqual(
    claims.map((c) => c.email),
    [unpaced.email, paced.email],
  );
  t.is(statements.length, 2);
});

test('every batch sends its keys sorted by campaign, then customer (the lock order)', async (t) => {
  const first = await pendingRecipients(4);
  const second = await pendingRecipients(4);
  const shuffled = [...first, ...second].sort(() => Math.random() - 0.5);
  const { pool, statements } = recordingPool();
  const batches = createSendBatches(pool, lease);
  const claims = await Promise.all(shuffled.map((r) => batches.claim(keyOf(r), false)));
  t.deepEqual(
    claims.map((c) => c.email),
    shuffled.map((r) => r.email),
    "answers in the callers' order",
  );
  const [campaigns, customers] = (statements[0]?.values ?? []) as [string[], string[]];
  const sent = campaigns.map((c, i) => `${c} ${customers[i]}`);
  t.deepEqual(sent, [...sent].sort());
});

test('a recipient that cannot be claimed is answered with the reason, and left as it was', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const sent = await createSentRecipient(db.pool, campaign);
  const [pending] = await pendingRecipients(1, campaign);
  if (!pending) return t.fail();
  const batches = createSendBatches(db.pool, lease);
  const claims = await Promise.all([
    batches.claim(keyOf(sent), false),
    batches.claim(keyOf(pending), false),
  ]);
  t.deepEqual(
    claims.map((c) => c.outcome),
    ['sent', 'claimed'],
  );
  t.like(await recipientRow(db.pool, sent), { recipient_status: 'sent' });
});

test('records each outcome on the claim it names, batched', async (t) => {
  const [ok, refused] = await pendingRecipients(2);
  if (!ok || !refused) return t.fail();
  const { pool, statements } = recordingPool();
  const batches = createSendBatches(pool, lease);
  const [okClaim, refusedClaim] = await Promise.all([
    batches.claim(keyOf(ok), false),
    batches.claim(keyOf(refused), false),
  ]);
  const recorded = await Promise.all([
    batches.record(keyOf(ok), okClaim?.attempt_count ?? -1, {
      outcome: 'sent',
      messageId: 'ses-batch-ok',
    }),
    batches.record(keyOf(refused), refusedClaim?.attempt_count ?? -1, {
      outcome: 'failed',
      error: 'MessageRejected: address refused',
    }),
  ]);
  t.is(statements.length, 2, 'one statement for the claims, one for the outcomes');
  // The campaign has nobody pending left: the caller must check whether it is done.
  t.deepEqual(recorded, ['recorded_check', 'recorded_check']);
  t.deepEqual(await recipientRow(db.pool, ok), {
    recipient_status: 'sent',
    ses_message_id: 'ses-batch-ok',
    last_error: null,
  });
  t.like(await recipientRow(db.pool, refused), {
    recipient_status: 'failed',
    last_error: 'MessageRejected: address refused',
  });
});

test('an outcome for an earlier attempt is stale and changes nothing', async (t) => {
  const [recipient] = await pendingRecipients(1);
  if (!recipient) return t.fail();
  const batches = createSendBatches(db.pool, lease);
  const claim = await batches.claim(keyOf(recipient), false);
  const attempt = claim.attempt_count ?? -1;
  t.is(
    await batches.record(keyOf(recipient), attempt - 1, { outcome: 'sent', messageId: 'ses-old' }),
    'stale',
  );
  t.like(await recipientRow(db.pool, recipient), {
    recipient_status: 'sending',
    ses_message_id: null,
  });
});

test('reserves consecutive slots 1/rate apart for pending recipients, none for the others', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const pending = await pendingRecipients(3, campaign);
  const sent = await createSentRecipient(db.pool, campaign);
  const { pool, statements } = recordingPool();
  const batches = createSendBatches(pool, lease);
  const before = Date.now();
  // A lead no slot is due within: reservations only.
  const reservations = await Promise.all(
    [...pending, sent].map((r) => batches.reserve(keyOf(r), 10, -60_000)),
  );
  t.is(statements.length, 1);
  t.true(reservations.every((r) => r.claim === undefined));
  const slots = reservations.map((r) => r.at);
  t.is(slots[3], undefined, 'no slot for a recipient already sent');
  const given = slots
    .slice(0, 3)
    .map(Number)
    .sort((a, b) => a - b);
  t.true((given[0] as number) >= before - 1000, 'slots start now or later');
  t.deepEqual(
    given.map((s) => s - (given[0] as number)),
    [0, 100, 200],
  );
  const { rows } = await db.pool.query<{ rate: number }>('select rate from send_pacer');
  t.is(rows[0]?.rate, 10, 'the pacer records the rate, for the ETA of campaign status');
});

test('no slot for a recipient of a campaign that is not sending', async (t) => {
  const campaign = await createSendingCampaign(db.pool, 'paused');
  const [recipient] = await pendingRecipients(1, campaign);
  if (!recipient) return t.fail();
  const batches = createSendBatches(db.pool, lease);
  t.deepEqual(await batches.reserve(keyOf(recipient), 10, 60_000), { at: undefined });
});

test('claims with the reservation the recipients whose slots are due, committed durably', async (t) => {
  // A database of its own: the pacer row is shared, and the other tests move it.
  const own = await createTestDatabase();
  t.teardown(() => own.drop());
  const campaign = await createSendingCampaign(own.pool);
  const sent = await createSentRecipient(own.pool, campaign);
  const batches = createSendBatches(own.pool, lease);
  const pending = await pendingRecipients(3, campaign, own.pool);
  // One every 10 s: the first slot is due within the 5 s lead, the next two are not.
  const reservations = await Promise.all(
    [...pending, sent].map((r) => batches.reserve(keyOf(r), 0.1, 5_000)),
  );
  // Slots go in key order; the first (the lowest customer id) is the one claimed.
  const claimed = reservations.map((r) => r.claim?.outcome ?? null);
  t.deepEqual(claimed, ['claimed', null, null, null]);
  t.like(reservations[0]?.claim, { email: pending[0]?.email });
  t.deepEqual(reservations[3], { at: undefined }, 'no slot, no claim for one already sent');
  const statuses = [];
  for (const r of pending) statuses.push((await recipientRow(own.pool, r))?.recipient_status);
  t.deepEqual(statuses, ['sending', 'pending', 'pending']);
  const { rows } = await own.pool.query<{ attempt_count: number }>(
    'select attempt_count from campaign_recipients where customer_id = $1',
    [pending[0]?.customerId],
  );
  t.is(
    reservations[0]?.claim?.attempt_count,
    rows[0]?.attempt_count,
    'the claim names its attempt',
  );

  // A claim is committed with the session's synchronous_commit; a reservation alone, without.
  const client = await own.pool.connect();
  t.teardown(() => client.release());
  const setting = async (lead: string) => {
    await client.query('begin');
    const [r] = await pendingRecipients(1, campaign, own.pool);
    await client.query(
      `select * from reserve_send_slots_and_claim(1000, array[$1::uuid], array[$2::uuid],
                                                 interval '120 s', interval '${lead}')`,
      [r?.campaignId, r?.customerId],
    );
    const { rows } = await client.query<{ s: string }>(
      `select current_setting('synchronous_commit') as s`,
    );
    await client.query('rollback');
    return rows[0]?.s;
  };
  t.is(await setting('1 hour'), 'on');
  t.is(await setting('-1 hour'), 'off');
});

test('a batch due at once is claimed whole; only the claimed get slots, the rest are given back', async (t) => {
  const own = await createTestDatabase();
  t.teardown(() => own.drop());
  const campaign = await createSendingCampaign(own.pool);
  const sent = await createSentRecipient(own.pool, campaign);
  const pending = await pendingRecipients(3, campaign, own.pool);
  // Pending, its address suppressed since: it would have a slot, but the claim refuses it.
  const email = 'suppressed-since@example.com';
  await own.pool.query(
    `insert into suppression_list (email, reason, source) values ($1, 'manual', 'ops')`,
    [email],
  );
  const suppressed = await createRecipient(own.pool, campaign, 'pending', { email });
  const batches = createSendBatches(own.pool, lease);
  const pacer = async () =>
    (await own.pool.query<{ next_slot: Date }>('select next_slot from send_pacer')).rows[0]
      ?.next_slot;
  // The pacer row exists and is due now: five slots 1 ms apart are all due within 5 s.
  await batches.reserveAgain(1000);
  const before = (await pacer())?.getTime() ?? Number.NaN;
  const reservations = await Promise.all(
    [...pending, sent, suppressed].map((r) => batches.reserve(keyOf(r), 1000, 5_000)),
  );
  t.deepEqual(
    reservations.map((r) => r.claim?.outcome ?? null),
    ['claimed', 'claimed', 'claimed', null, null],
  );
  t.deepEqual(reservations[3], { at: undefined }, 'no slot, no claim for one already sent');
  t.deepEqual(reservations[4], { at: undefined }, 'no slot for one the claim refused');
  t.like(await recipientRow(own.pool, suppressed), { recipient_status: 'suppressed' });
  const [first] = reservations;
  const at = first?.at ?? Number.NaN;
  t.true(at >= before, 'the first slot is the pacer next free one, or later');
  t.deepEqual(
    reservations.slice(0, 3).map((r) => (r.at ?? Number.NaN) - at),
    [0, 1, 2],
  );
  t.is((await pacer())?.getTime(), at + 3, "the refused one's slot is free again");
  for (const r of pending) t.like(await recipientRow(own.pool, r), { recipient_status: 'sending' });
});

test('callers asking again at the same moment get consecutive slots from one reservation', async (t) => {
  const { pool, statements } = recordingPool();
  const batches = createSendBatches(pool, lease);
  const slots = await Promise.all([batches.reserveAgain(20), batches.reserveAgain(20)]);
  const [first] = slots;
  t.is(statements.length, 1);
  t.deepEqual(
    slots.map((s) => s - (first as number)),
    [0, 50],
  );
  const { rows } = await db.pool.query<{ rate: number }>('select rate from send_pacer');
  t.is(rows[0]?.rate, 20);
});

test('a batch the database refuses fails every caller in it; later batches go on', async (t) => {
  const [recipient] = await pendingRecipients(1);
  if (!recipient) return t.fail();
  const batches = createSendBatches(db.pool, lease);
  const bad = { campaign_id: 'not-a-uuid', customer_id: recipient.customerId };
  const results = await Promise.allSettled([
    batches.claim(bad, false),
    batches.claim(keyOf(recipient), false),
  ]);
  t.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  t.regex(
    String((results[1] as PromiseRejectedResult).reason),
    /invalid input syntax for type uuid/,
  );
  t.like(await recipientRow(db.pool, recipient), { recipient_status: 'pending' });
  t.is((await batches.claim(keyOf(recipient), false)).outcome, 'claimed');
});

test('a batch answered with fewer rows than callers fails every caller in it', async (t) => {
  // A stand-in for the database: this is the module's own check, not PostgreSQL's.
  const pool = { query: async () => ({ rows: [{ ord: 1, outcome: 'claimed' }] }) };
  const batches = createSendBatches(pool as unknown as pg.Pool, lease);
  const keys = [
    { campaign_id: 'a', customer_id: '1' },
    { campaign_id: 'a', customer_id: '2' },
  ];
  const results = await Promise.allSettled(keys.map((k) => batches.claim(k, false)));
  for (const result of results) {
    t.is(result.status, 'rejected');
    t.regex(
      String((result as PromiseRejectedResult).reason),
      /claim_recipients: expected 2 rows, got 1/,
    );
  }
});
