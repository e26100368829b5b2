// public.reconcile_in_doubt settles an in-doubt recipient only with its own evidence: an event
// whose EmailTags name it (or whose message id it holds), or an untagged event for its address
// that no other recipient can claim, sent inside its attempt's window. Events reach the database
// through apply_ses_event, as process_ses_event stores them. Serial: reconcile_in_doubt settles
// every in-doubt recipient in the database, so each test sees only its own being settled.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { applySesEvent } from '../../src/events/queries.ts';
import type { SesEventType } from '../../src/events/ses-event.ts';
import { LIMITS, sesEvent } from '../events/helpers.ts';
import { databaseForFile } from '../helpers/db.ts';
import {
  createCustomer,
  createRecipient,
  createSendingCampaign,
  type Recipient,
  recipientRow,
} from '../helpers/factories.ts';

const db = databaseForFile();

/** The customer as a recipient of `campaignId` in `status`, last attempted at `attemptAt`. */
function recipient(
  campaignId: string,
  customer: { customer_id: string; email: string },
  options: { status?: string; attemptAt: Date; messageId?: string },
): Promise<Recipient> {
  return createRecipient(db.pool, campaignId, options.status ?? 'in_doubt', {
    customer,
    attemptAt: options.attemptAt,
    messageId: options.messageId,
  });
}

/**
 * Applies an SES event about `target`'s address. `tags`: the campaign_id/customer_id EmailTags
 * it carries (none: an identity notification, which has no tags). `sentAt`: mail.timestamp,
 * when SES accepted the message.
 */
async function deliver(
  type: SesEventType,
  target: { email: string },
  options: { messageId: string; sentAt: Date; tags?: { campaignId: string; customerId: string } },
) {
  const event = sesEvent(
    type,
    {
      email: target.email,
      messageId: options.messageId,
      campaignId: options.tags?.campaignId,
      customerId: options.tags?.customerId,
    },
    { shape: options.tags ? 'eventType' : 'notificationType' },
  );
  const mail = event.mail as Record<string, unknown>;
  mail.timestamp = options.sentAt.toISOString();
  return applySesEvent(db.pool, event, LIMITS);
}

async function reconcile() {
  const { rows } = await db.pool.query<{ customer_id: string; recipient_status: string }>(
    'select customer_id, recipient_status from reconcile_in_doubt()',
  );
  return rows;
}

const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);

test.serial("an event of another campaign never settles this campaign's recipient", async (t) => {
  const a = await createSendingCampaign(db.pool, 'done');
  const b = await createSendingCampaign(db.pool);
  const attemptAt = minutesAgo(30);

  // Tagged for campaign B (of an installation sharing the SNS topic: nothing here matches the
  // tags, so apply_ses_event stores it with no recipient), same address, right after A's attempt.
  const ann = await createCustomer(db.pool);
  const annA = await recipient(a, ann, { attemptAt });
  await deliver('Delivery', ann, {
    messageId: `ses-${randomUUID()}`,
    sentAt: new Date(attemptAt.getTime() + 5_000),
    tags: { campaignId: randomUUID(), customerId: ann.customer_id },
  });

  // Untagged (an identity notification) for B's message to the same address: B's send outcome
  // was recorded after the event arrived, so the event is stored unmatched, but the message id
  // is B's recipient's.
  const bob = await createCustomer(db.pool);
  const bobA = await recipient(a, bob, { attemptAt });
  const bobMessage = `ses-${randomUUID()}`;
  await deliver('Delivery', bob, {
    messageId: bobMessage,
    sentAt: new Date(attemptAt.getTime() + 5_000),
  });
  await recipient(b, bob, { status: 'sent', attemptAt, messageId: bobMessage });

  t.deepEqual(await reconcile(), []);
  t.like(await recipientRow(db.pool, annA), { recipient_status: 'in_doubt', ses_message_id: null });
  t.like(await recipientRow(db.pool, bobA), { recipient_status: 'in_doubt', ses_message_id: null });
});

test.serial(
  'the same address in doubt in two campaigns: each is settled by its own events',
  async (t) => {
    const a = await createSendingCampaign(db.pool, 'done');
    const b = await createSendingCampaign(db.pool, 'done');
    const attemptAt = minutesAgo(30);
    const cat = await createCustomer(db.pool);
    const inA = await recipient(a, cat, { attemptAt });
    const inB = await recipient(b, cat, { attemptAt: new Date(attemptAt.getTime() + 1_000) });
    const [messageA, messageB] = [`ses-${randomUUID()}`, `ses-${randomUUID()}`];
    const sentAt = new Date(attemptAt.getTime() + 2_000);
    // Opens carry the tags but change nothing when applied: the recipients stay in doubt.
    await deliver('Open', cat, { messageId: messageA, sentAt, tags: inA });
    await deliver('Open', cat, { messageId: messageB, sentAt, tags: inB });
    // And B's delivery as an identity notification: untagged, its message id unknown yet.
    await deliver('Delivery', cat, { messageId: messageB, sentAt });

    t.deepEqual((await reconcile()).map((r) => r.recipient_status).sort(), ['sent', 'sent']);
    t.like(await recipientRow(db.pool, inA), {
      recipient_status: 'sent',
      ses_message_id: messageA,
    });
    t.like(await recipientRow(db.pool, inB), {
      recipient_status: 'sent',
      ses_message_id: messageB,
    });
  },
);

test.serial("an untagged event settles a recipient only inside its attempt's window", async (t) => {
  const campaign = await createSendingCampaign(db.pool, 'done');
  const attemptAt = minutesAgo(120);
  // Sent an hour after the attempt: another message (a later campaign, a message sent by hand).
  const late = await createCustomer(db.pool);
  const lateR = await recipient(campaign, late, { attemptAt });
  await deliver('Send', late, { messageId: `ses-${randomUUID()}`, sentAt: minutesAgo(60) });
  // Sent before the attempt.
  const early = await createCustomer(db.pool);
  const earlyR = await recipient(campaign, early, { attemptAt });
  await deliver('Send', early, { messageId: `ses-${randomUUID()}`, sentAt: minutesAgo(180) });
  // Sent seconds after the attempt, nobody else's: this recipient's message.
  const own = await createCustomer(db.pool);
  const ownR = await recipient(campaign, own, { attemptAt });
  const ownMessage = `ses-${randomUUID()}`;
  await deliver('Send', own, {
    messageId: ownMessage,
    sentAt: new Date(attemptAt.getTime() + 3_000),
  });

  t.deepEqual(await reconcile(), [{ customer_id: own.customer_id, recipient_status: 'sent' }]);
  t.like(await recipientRow(db.pool, lateR), { recipient_status: 'in_doubt' });
  t.like(await recipientRow(db.pool, earlyR), { recipient_status: 'in_doubt' });
  t.like(await recipientRow(db.pool, ownR), {
    recipient_status: 'sent',
    ses_message_id: ownMessage,
  });
});

test.serial('a recipient that cannot be settled never stops the others', async (t) => {
  const a = await createSendingCampaign(db.pool, 'done');
  const b = await createSendingCampaign(db.pool, 'done');
  const attemptAt = minutesAgo(30);
  // One address in doubt in two campaigns, and one untagged event for it: either could own it
  // (before, both took it and the unique index on ses_message_id failed the whole statement).
  const dan = await createCustomer(db.pool);
  const danA = await recipient(a, dan, { attemptAt });
  const danB = await recipient(b, dan, { attemptAt });
  await deliver('Delivery', dan, {
    messageId: `ses-${randomUUID()}`,
    sentAt: new Date(attemptAt.getTime() + 2_000),
  });
  // Someone else, with an event of its own.
  const eve = await createCustomer(db.pool);
  const eveA = await recipient(a, eve, { attemptAt });
  const eveMessage = `ses-${randomUUID()}`;
  await deliver('Open', eve, {
    messageId: eveMessage,
    sentAt: new Date(attemptAt.getTime() + 2_000),
    tags: eveA,
  });

  t.deepEqual(await reconcile(), [{ customer_id: eve.customer_id, recipient_status: 'sent' }]);
  t.like(await recipientRow(db.pool, eveA), {
    recipient_status: 'sent',
    ses_message_id: eveMessage,
  });
  t.like(await recipientRow(db.pool, danA), { recipient_status: 'in_doubt' });
  t.like(await recipientRow(db.pool, danB), { recipient_status: 'in_doubt' });
  t.deepEqual(await reconcile(), [], 'a second run changes nothing and does not fail');
});
