// SES event payloads replayed through process_ses_event (what the webhook enqueues, and what an
// operator can add by hand from psql): unknown and misspelled types, missing and mistyped fields,
// odd timestamps, huge and strange addresses, tags that name nobody or somebody, events for
// messages nobody sent, with and without the SNS envelope. Each one must be either recorded (one
// row in email_events_op) or refused with a PermanentJobError saying why (the runner fails such
// a job once, for good). Any other error means graphile-worker retries the job 25 times over
// about three days: a retry storm for an event that will never apply.
import { createHash, randomUUID } from 'node:crypto';
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import type { Task } from 'graphile-worker';
import { pino } from 'pino';
import { SES_EVENT_TYPES } from '../../src/events/ses-event.ts';
import { PermanentJobError } from '../../src/worker/define.ts';
import { sesEvent } from '../events/helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  createSendingCampaign,
  createSentRecipient,
  type RecipientTarget,
} from '../helpers/factories.ts';
import { createTaskDeps, jobHelpers, loadTask, unreachableSes } from '../helpers/tasks.ts';
import { anyJsonValue } from './arbitraries.ts';
import { runs } from './runs.ts';

const logger = pino({ level: 'silent' });
const ses = unreachableSes();

let db: TestDatabase;
let task: Task;
let recipients: RecipientTarget[];
test.before(async () => {
  db = await createTestDatabase();
  task = await loadTask(
    createTaskDeps(db.pool, { env: { REPUTATION_MIN_SENT: '5' }, logger, ses }),
    'process_ses_event',
  );
  const campaign = await createSendingCampaign(db.pool);
  recipients = [];
  for (const status of ['sent', 'sent', 'in_doubt', 'sending', 'sent', 'bounced']) {
    recipients.push(await createSentRecipient(db.pool, campaign, { status }));
  }
});
test.after.always(async () => {
  ses.destroy();
  await db?.drop();
});

const helpers = () => jobHelpers(logger);

async function events(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'select count(*)::int as n from email_events_op',
  );
  return rows[0]?.n ?? -1;
}

/** `length` hex characters that do not compress (fast-check keeps generated arrays short). */
function noise(length: number): string {
  let out = '';
  for (let i = 0; out.length < length; i++) {
    out += createHash('sha256').update(`${length}:${i}`).digest('hex');
  }
  return out.slice(0, length);
}

// ---------------------------------------------------------------------------------------------
// Generators: mostly well-formed SES events with one or more things wrong or odd.

const weird = anyJsonValue(
  30,
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
);
// Mostly the right thing, so that most events get past validation to the SQL with their oddities.
const maybe = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof(
    { weight: 8, arbitrary: arb },
    { weight: 1, arbitrary: weird },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

const address = fc.oneof(
  fc.emailAddress(),
  fc.constantFrom('Name <a@example.com>', '"Q, R" <q@example.com>', 'no-at-sign', '', ' @ ', 'a@b'),
  fc.string({ unit: 'grapheme', maxLength: 60 }).map((s) => `${s}@example.com`),
  // Longer than any index entry may be (PostgreSQL's B-tree limit is ~2.7 kB), and random, so
  // that compression does not shrink it below that.
  fc.integer({ min: 200, max: 9000 }).map((n) => `${noise(n)}@example.com`),
  fc.string({ unit: 'binary', maxLength: 40 }),
);

const timestamp = fc.oneof(
  fc
    .date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom(
    '0000-01-01T00:00:00Z',
    '9999-12-31T23:59:59Z',
    '2030-02-30T00:00:00Z',
    '2030-06-01T12:00:00+14:00',
    '2030-06-01T12:00:00.123456789Z',
    'yesterday',
    '',
  ),
);

const messageId = fc.oneof(
  fc.uuid(),
  fc.string({ maxLength: 80 }),
  fc.integer({ min: 200, max: 9000 }).map(noise),
  fc.constantFrom(...['ses-nobody-sent-this', '\u0000', ' ']),
);

const known = () =>
  fc.nat({ max: 1_000_000 }).map((i) => recipients[i % recipients.length] as RecipientTarget);

const tags = fc.oneof(
  fc.constant(undefined),
  known().map((r) => ({ campaign_id: [r.campaignId], customer_id: [r.customerId] })),
  known().map((r) => ({ campaign_id: r.campaignId, customer_id: r.customerId })),
  fc.record({
    campaign_id: maybe(fc.array(fc.uuid(), { maxLength: 2 })),
    customer_id: maybe(fc.uuid()),
  }),
  fc.dictionary(fc.string({ maxLength: 10 }), weird, { maxKeys: 4 }),
);

const recipientList = fc.array(
  fc.oneof(
    { weight: 9, arbitrary: fc.record({ emailAddress: address }) },
    { weight: 1, arbitrary: weird },
  ),
  { minLength: 1, maxLength: 3 },
);

const detail = fc.record(
  {
    bounceType: maybe(fc.constantFrom('Permanent', 'Transient', 'Undetermined')),
    bounceSubType: maybe(fc.constantFrom('General', 'NoEmail', 'OnAccountSuppressionList')),
    bouncedRecipients: maybe(recipientList),
    complainedRecipients: maybe(recipientList),
    complaintFeedbackType: maybe(fc.constantFrom('abuse', 'not-spam')),
    recipients: maybe(fc.array(address, { maxLength: 3 })),
    delayedRecipients: maybe(recipientList),
    reason: maybe(fc.string()),
    errorMessage: maybe(fc.string()),
    newTopicPreferences: maybe(fc.record({ unsubscribeAll: fc.oneof(fc.boolean(), weird) })),
    timestamp: maybe(timestamp),
  },
  { requiredKeys: ['bounceType', 'bouncedRecipients', 'complainedRecipients', 'recipients'] },
);

const DETAIL_KEYS: Record<string, string> = {
  Send: 'send',
  Delivery: 'delivery',
  Bounce: 'bounce',
  Complaint: 'complaint',
  Reject: 'reject',
  Open: 'open',
  Click: 'click',
  'Rendering Failure': 'failure',
  DeliveryDelay: 'deliveryDelay',
  Subscription: 'subscription',
};

const sesEventLike = fc
  .record({
    type: fc.oneof(
      { weight: 9, arbitrary: fc.constantFrom(...SES_EVENT_TYPES) },
      { weight: 1, arbitrary: fc.constantFrom('Teleport', 'bounce', 'Rendering failure', '') },
    ),
    shape: fc.constantFrom('eventType', 'notificationType', 'both'),
    mail: fc.record(
      {
        messageId: maybe(
          fc.oneof(
            messageId,
            known().map((r) => r.messageId),
          ),
        ),
        timestamp: maybe(timestamp),
        destination: maybe(fc.array(address, { minLength: 1, maxLength: 3 })),
        tags,
      },
      { requiredKeys: ['messageId', 'timestamp', 'destination', 'tags'] },
    ),
    detail: maybe(detail),
    detailKey: fc.oneof(
      { weight: 9, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
    ),
    extra: fc.dictionary(fc.string({ maxLength: 8 }), weird, { maxKeys: 2 }),
  })
  .map(({ type, shape, mail, detail, detailKey, extra }) => {
    const event: Record<string, unknown> = { ...extra, mail };
    if (shape !== 'notificationType') event.eventType = type;
    if (shape !== 'eventType') event.notificationType = type;
    if (detail !== undefined) event[detailKey ?? DETAIL_KEYS[type] ?? 'detail'] = detail;
    return event;
  });

const envelope = (message: string) => ({
  Type: 'Notification',
  MessageId: randomUUID(),
  TopicArn: 'arn:aws:sns:eu-west-1:123456789012:mailer-ses-events',
  Message: message,
  Timestamp: new Date().toISOString(),
});

const payload = fc.oneof(
  { weight: 4, arbitrary: sesEventLike },
  { weight: 3, arbitrary: sesEventLike.map((e) => envelope(JSON.stringify(e))) },
  { weight: 1, arbitrary: fc.anything() },
  { weight: 1, arbitrary: fc.string().map(envelope) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...SES_EVENT_TYPES), known(), fc.boolean())
      .map(([type, r, wrapped]) => {
        const event = sesEvent(type, r);
        return wrapped ? envelope(JSON.stringify(event)) : event;
      }),
  },
);

// ---------------------------------------------------------------------------------------------

async function outcome(value: unknown): Promise<'recorded' | 'nothing' | 'refused' | string> {
  const before = await events();
  try {
    await task(value, helpers());
  } catch (error) {
    if (error instanceof PermanentJobError) {
      const after = await events();
      return after === before ? 'refused' : `refused but recorded ${after - before}`;
    }
    return `RETRIED: ${(error as Error).message} / ${String((error as { cause?: Error }).cause?.message)}`;
  }
  const after = await events();
  return after - before === 1
    ? 'recorded'
    : after === before
      ? 'nothing'
      : `recorded ${after - before}`;
}

const tally = new Map<string, number>();

testProp.serial(
  'every payload is recorded once or refused for good, never left to retry',
  [payload],
  async (t, value) => {
    const result = await outcome(value);
    tally.set(result, (tally.get(result) ?? 0) + 1);
    t.true(['recorded', 'refused', 'nothing'].includes(result), result);
    if (result === 'nothing') {
      // Only SES's subscription notice is accepted without a row.
      t.regex(JSON.stringify(value), /AmazonSnsSubscriptionSucceeded/);
    }
  },
  { numRuns: runs(600) },
);

test.serial('how the payloads ended', (t) => {
  t.log(JSON.stringify(Object.fromEntries(tally)));
  t.true(tally.size > 0);
});

test.serial(
  'each documented event type for a message nobody sent is recorded, not dropped',
  async (t) => {
    for (const type of SES_EVENT_TYPES) {
      const result = await outcome(
        sesEvent(type, { messageId: `ses-${randomUUID()}`, email: 'x@example.com' }),
      );
      t.is(result, 'recorded', type);
    }
  },
);
