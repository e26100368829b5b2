import test from 'ava';
import { applySesEvent } from '../../src/events/queries.ts';
import { databaseForFile } from '../helpers/db.ts';
import {
  createRecipient,
  createSendingCampaign,
  createSentRecipient,
  recipientRow,
} from '../helpers/factories.ts';
import { LIMITS, sesEvent, suppressionOf } from './helpers.ts';

const db = databaseForFile();

const apply = (event: Record<string, unknown>) => applySesEvent(db.pool, event, LIMITS);

async function eventsFor(messageId: string) {
  const { rows } = await db.pool.query<{
    event_type: string;
    email: string | null;
    campaign_id: string | null;
    customer_id: string | null;
    event_time: Date;
    payload: Record<string, unknown>;
  }>(
    `select event_type, email, campaign_id, customer_id, event_time, payload
       from email_events_op where ses_message_id = $1 order by created_at`,
    [messageId],
  );
  return rows;
}

test('a Send event resolves an in_doubt recipient, found by its tags, to sent with the message id', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createRecipient(db.pool, campaign, 'in_doubt');
  const outcome = await apply(sesEvent('Send', r));
  t.is(outcome.campaign_id, r.campaignId);
  t.is(outcome.effect, 'recipient sent');
  t.like(await recipientRow(db.pool, r), {
    recipient_status: 'sent',
    ses_message_id: r.messageId,
    last_error: null,
  });
});

test('a Delivery event resolves a sending recipient to sent and leaves a sent one alone', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const sending = await createRecipient(db.pool, campaign, 'sending');
  await apply(sesEvent('Delivery', sending));
  t.like(await recipientRow(db.pool, sending), {
    recipient_status: 'sent',
    ses_message_id: sending.messageId,
  });

  const sent = await createSentRecipient(db.pool, campaign);
  const outcome = await apply(sesEvent('Delivery', sent));
  t.is(outcome.effect, 'none');
  t.like(await recipientRow(db.pool, sent), { recipient_status: 'sent' });
  const [event] = await eventsFor(sent.messageId);
  t.like(event, { event_type: 'delivery', email: sent.email, customer_id: sent.customerId });
  t.deepEqual(event?.event_time, new Date('2030-06-01T12:00:01.000Z'));
});

test('a permanent bounce suppresses the address (bounce_hard, ses) and marks the recipient bounced', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  const event = sesEvent('Bounce', r);
  await apply(event);
  t.like(await recipientRow(db.pool, r), { recipient_status: 'bounced' });
  t.regex((await recipientRow(db.pool, r))?.last_error ?? '', /General.*550 5\.1\.1 user unknown/);
  t.deepEqual(await suppressionOf(db.pool, r.email), { reason: 'bounce_hard', source: 'ses' });
  const [stored] = await eventsFor(r.messageId);
  t.deepEqual(stored?.payload, event, 'the raw event is stored as received');
});

test('a bounce in the identity-notification shape (notificationType, no tags) is found by message id', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  const outcome = await apply(sesEvent('Bounce', r, { shape: 'notificationType' }));
  t.is(outcome.customer_id, r.customerId);
  t.like(await recipientRow(db.pool, r), { recipient_status: 'bounced' });
  t.truthy(await suppressionOf(db.pool, r.email));
});

test('a bounce to an address on the SES account suppression list suppresses it too', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  await apply(sesEvent('Bounce', r, { detail: { bounceSubType: 'OnAccountSuppressionList' } }));
  t.like(await recipientRow(db.pool, r), { recipient_status: 'bounced' });
  t.deepEqual(await suppressionOf(db.pool, r.email), { reason: 'bounce_hard', source: 'ses' });
});

test('transient and undetermined bounces and delivery delays are recorded only', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  for (const [type, detail] of [
    ['Bounce', { bounceType: 'Transient', bounceSubType: 'MailboxFull' }],
    ['Bounce', { bounceType: 'Undetermined', bounceSubType: 'Undetermined' }],
    ['DeliveryDelay', {}],
  ] as const) {
    const r = await createSentRecipient(db.pool, campaign);
    const outcome = await apply(sesEvent(type, r, { detail }));
    t.is(outcome.effect, 'none', `${type} ${JSON.stringify(detail)}`);
    t.like(await recipientRow(db.pool, r), { recipient_status: 'sent' });
    t.is(await suppressionOf(db.pool, r.email), undefined);
    t.is((await eventsFor(r.messageId)).length, 1);
  }
});

test('a complaint suppresses the address (complaint, ses) and marks the recipient complained', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  await apply(sesEvent('Complaint', r));
  t.like(await recipientRow(db.pool, r), {
    recipient_status: 'complained',
    last_error: 'complaint (abuse)',
  });
  t.deepEqual(await suppressionOf(db.pool, r.email), { reason: 'complaint', source: 'ses' });
});

test('a later event keeps the stronger suppression reason: complaint over unsubscribe over bounce', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  await db.pool.query(
    `insert into suppression_list (email, reason, source) values ($1, 'unsubscribe', 'user')`,
    [r.email],
  );
  await apply(sesEvent('Complaint', r));
  t.deepEqual(await suppressionOf(db.pool, r.email), { reason: 'complaint', source: 'ses' });
  t.like(await recipientRow(db.pool, r), { recipient_status: 'complained' });
  await apply(sesEvent('Bounce', r));
  t.deepEqual(await suppressionOf(db.pool, r.email), { reason: 'complaint', source: 'ses' });
});

test('Reject and Rendering Failure mark the recipient failed with the reason', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const rejected = await createSentRecipient(db.pool, campaign);
  await apply(sesEvent('Reject', rejected));
  t.like(await recipientRow(db.pool, rejected), {
    recipient_status: 'failed',
    last_error: 'rejected by SES: Bad content',
  });
  const unrendered = await createRecipient(db.pool, campaign, 'in_doubt');
  const outcome = await apply(sesEvent('Rendering Failure', unrendered));
  t.is(outcome.event_type, 'rendering_failure');
  t.like(await recipientRow(db.pool, unrendered), { recipient_status: 'failed' });
  t.regex((await recipientRow(db.pool, unrendered))?.last_error ?? '', /^rendering failure: /);
  t.is(await suppressionOf(db.pool, rejected.email), undefined);
});

test('opens and clicks are recorded with their SES timestamps and change nothing', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  await apply(sesEvent('Open', r));
  await apply(sesEvent('Click', r));
  const events = await eventsFor(r.messageId);
  t.deepEqual(
    events.map((e) => [e.event_type, e.event_time.toISOString(), e.campaign_id]),
    [
      ['open', '2030-06-01T12:00:04.000Z', campaign],
      ['click', '2030-06-01T12:00:05.000Z', campaign],
    ],
  );
  t.like(await recipientRow(db.pool, r), { recipient_status: 'sent' });
});

test('a Subscription event opting out of everything unsubscribes; a topic change is recorded only', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const optOut = await createSentRecipient(db.pool, campaign);
  await apply(sesEvent('Subscription', optOut));
  t.like(await recipientRow(db.pool, optOut), { recipient_status: 'unsubscribed' });
  t.deepEqual(await suppressionOf(db.pool, optOut.email), {
    reason: 'unsubscribe',
    source: 'user',
  });

  const topicOnly = await createSentRecipient(db.pool, campaign);
  await apply(
    sesEvent('Subscription', topicOnly, {
      detail: { newTopicPreferences: { unsubscribeAll: false } },
    }),
  );
  t.like(await recipientRow(db.pool, topicOnly), { recipient_status: 'sent' });
  t.is(await suppressionOf(db.pool, topicOnly.email), undefined);
});

test('an event for an unknown message is kept with null ids, and a hard bounce still suppresses', async (t) => {
  const stranger = { messageId: 'ses-not-ours', email: 'Stranger@Example.com' };
  const outcome = await apply(
    sesEvent('Bounce', {
      ...stranger,
      // Tags that are not ours (or not UUIDs) must not break matching.
      campaignId: 'not-a-uuid',
      customerId: '00000000-0000-0000-0000-000000000000',
    }),
  );
  t.is(outcome.campaign_id, null);
  t.regex(outcome.effect, /^unmatched/);
  const [event] = await eventsFor('ses-not-ours');
  t.like(event, {
    event_type: 'bounce',
    email: 'stranger@example.com',
    campaign_id: null,
    customer_id: null,
  });
  t.truthy(await suppressionOf(db.pool, 'stranger@example.com'));
});

test("a new suppression stops the address's pending recipients in other campaigns", async (t) => {
  const first = await createSendingCampaign(db.pool);
  const next = await createSendingCampaign(db.pool, 'queued');
  const r = await createSentRecipient(db.pool, first);
  await createRecipient(db.pool, next, 'pending', { customer: r, attempts: 0, attemptAt: null });
  await apply(sesEvent('Complaint', r));
  t.like(await recipientRow(db.pool, { campaignId: next, customerId: r.customerId }), {
    recipient_status: 'suppressed',
  });
});

test('applying the same bounce twice changes the recipient once and records it twice', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  const first = await apply(sesEvent('Bounce', r));
  const second = await apply(sesEvent('Bounce', r));
  t.is(first.effect, 'recipient bounced; 1 address(es) newly suppressed');
  t.is(second.effect, 'recipient unchanged; 0 address(es) newly suppressed');
  t.is((await eventsFor(r.messageId)).length, 2);
});

test('an event type SES does not document is refused, naming it', async (t) => {
  const error = await t.throwsAsync(apply({ eventType: 'Teleport', mail: { messageId: 'ses-x' } }));
  t.is((error as { code?: string }).code, '22023');
  t.regex(error?.message ?? '', /unknown SES event type Teleport/);
});

test('an event settles the recipient its tags name, even when another one holds its message id', async (t) => {
  // A recipient of campaign A holding the message id of B's message to the same address, as the
  // reconciliation before issue 15 (item 6) left it when it took B's event as A's evidence.
  const a = await createSendingCampaign(db.pool, 'done');
  const b = await createSendingCampaign(db.pool);
  const inA = await createSentRecipient(db.pool, a);
  await createRecipient(db.pool, b, 'in_doubt', { customer: inA });
  const inB = { ...inA, campaignId: b };
  const outcome = await apply(sesEvent('Delivery', inB));
  t.like(outcome, { campaign_id: b, customer_id: inA.customerId, effect: 'recipient sent' });
  // B is sent; the message id stays where it is (the unique index allows one holder).
  t.like(await recipientRow(db.pool, inB), { recipient_status: 'sent', ses_message_id: null });
  t.like(await recipientRow(db.pool, inA), {
    recipient_status: 'sent',
    ses_message_id: inA.messageId,
  });
  const [event] = await eventsFor(inA.messageId);
  t.like(event, { campaign_id: b, customer_id: inA.customerId });
});
