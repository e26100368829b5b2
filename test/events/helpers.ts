// SES events as SES formats them (from the AWS "Examples of event data" pages), and recipients in
// a given sending state to apply them to.
import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { SesEventType } from '../../src/events/ses-event.ts';
import { createCampaign, createCustomer, createTemplate } from '../helpers/factories.ts';

type Db = pg.Pool | pg.PoolClient;

export interface EventTarget {
  messageId: string;
  email: string;
  campaignId?: string;
  customerId?: string;
}

const TS = '2030-06-01T12:00:00.000Z';

function detailFor(type: SesEventType, email: string): [string, Record<string, unknown>] {
  switch (type) {
    case 'Send':
      return ['send', {}];
    case 'Delivery':
      return [
        'delivery',
        {
          timestamp: '2030-06-01T12:00:01.000Z',
          processingTimeMillis: 546,
          recipients: [email],
          smtpResponse: '250 ok:  Message 64111812 accepted',
          reportingMTA: 'a8-70.smtp-out.amazonses.com',
        },
      ];
    case 'Bounce':
      return [
        'bounce',
        {
          bounceType: 'Permanent',
          bounceSubType: 'General',
          bouncedRecipients: [
            {
              emailAddress: email,
              action: 'failed',
              status: '5.1.1',
              diagnosticCode: 'smtp; 550 5.1.1 user unknown',
            },
          ],
          timestamp: '2030-06-01T12:00:02.000Z',
          feedbackId: '01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000',
          reportingMTA: 'dsn; mta.example.com',
        },
      ];
    case 'Complaint':
      return [
        'complaint',
        {
          complainedRecipients: [{ emailAddress: email }],
          timestamp: '2030-06-01T12:00:03.000Z',
          feedbackId: '01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000',
          userAgent: 'Mozilla/5.0',
          complaintFeedbackType: 'abuse',
          arrivalDate: '2030-06-01T12:00:03.000Z',
        },
      ];
    case 'Reject':
      return ['reject', { reason: 'Bad content' }];
    case 'Open':
      return [
        'open',
        { ipAddress: '192.0.2.1', timestamp: '2030-06-01T12:00:04.000Z', userAgent: 'Mozilla/5.0' },
      ];
    case 'Click':
      return [
        'click',
        {
          ipAddress: '192.0.2.1',
          link: 'https://example.com/offer',
          linkTags: { samplekey0: ['samplevalue0'] },
          timestamp: '2030-06-01T12:00:05.000Z',
          userAgent: 'Mozilla/5.0',
        },
      ];
    case 'Rendering Failure':
      return [
        'failure',
        {
          errorMessage: "Attribute 'attributeName' is not present in the rendering data.",
          templateName: 'MyTemplate',
        },
      ];
    case 'DeliveryDelay':
      return [
        'deliveryDelay',
        {
          timestamp: '2030-06-01T12:00:06.000Z',
          delayType: 'TransientCommunicationFailure',
          expirationTime: '2030-06-01T18:00:00.000Z',
          delayedRecipients: [
            {
              emailAddress: email,
              status: '4.4.1',
              diagnosticCode: 'smtp; 421 4.4.1 Unable to connect',
            },
          ],
        },
      ];
    case 'Subscription':
      return [
        'subscription',
        {
          contactList: 'weekly',
          timestamp: '2030-06-01T12:00:07.000Z',
          source: 'UnsubscribeHeader',
          newTopicPreferences: {
            unsubscribeAll: true,
            topicSubscriptionStatus: [{ topicName: 'news', subscriptionStatus: 'OptOut' }],
          },
          oldTopicPreferences: {
            unsubscribeAll: false,
            topicSubscriptionStatus: [{ topicName: 'news', subscriptionStatus: 'OptIn' }],
          },
        },
      ];
  }
}

/**
 * An SES event about `target`. `shape: 'notificationType'` gives the identity-notification form,
 * which carries no tags. `detail` is merged into the type's detail object.
 */
export function sesEvent(
  type: SesEventType,
  target: EventTarget,
  options: { shape?: 'eventType' | 'notificationType'; detail?: Record<string, unknown> } = {},
): Record<string, unknown> {
  const [key, detail] = detailFor(type, target.email);
  const shape = options.shape ?? 'eventType';
  const tags: Record<string, string[]> = { 'ses:configuration-set': ['mailer'] };
  if (target.campaignId) tags.campaign_id = [target.campaignId];
  if (target.customerId) tags.customer_id = [target.customerId];
  return {
    [shape]: type,
    [key]: { ...detail, ...options.detail },
    mail: {
      timestamp: TS,
      source: 'Mailer <mailer@example.com>',
      sourceArn: 'arn:aws:ses:us-east-1:123456789012:identity/mailer@example.com',
      sendingAccountId: '123456789012',
      messageId: target.messageId,
      destination: [target.email],
      headersTruncated: false,
      commonHeaders: { from: ['Mailer <mailer@example.com>'], to: [target.email], subject: 'Hi' },
      ...(shape === 'eventType' ? { tags } : {}),
    },
  };
}

let campaignCounter = 0;

/** A campaign in `status` (default sending) on a fresh template. */
export async function createSendingCampaign(db: Db, status = 'sending'): Promise<string> {
  const template = await createTemplate(db, {
    week_of_month: 1,
    version: 1 + Math.floor(Math.random() * 1_000_000_000),
  });
  campaignCounter++;
  const day = new Date(
    Date.UTC(2000, 0, 1) + (campaignCounter * 997 + Math.floor(Math.random() * 5000)) * 86_400_000,
  );
  const campaign = await createCampaign(db, {
    template_id: template.template_id,
    generated_date: day.toISOString().slice(0, 10),
    status,
  });
  return campaign.campaign_id;
}

export interface RecipientTarget extends EventTarget {
  campaignId: string;
  customerId: string;
}

/** A recipient of `campaignId` in `status`; sent-like states get a message id unless told not to. */
export async function addRecipient(
  db: Db,
  campaignId: string,
  options: { status?: string; messageId?: string | null; email?: string } = {},
): Promise<RecipientTarget> {
  const status = options.status ?? 'sent';
  const customer = await createCustomer(db, options.email ? { email: options.email } : {});
  const messageId =
    options.messageId === undefined
      ? ['sent', 'bounced', 'complained', 'failed'].includes(status)
        ? `ses-${randomUUID()}`
        : null
      : options.messageId;
  await db.query(
    `insert into campaign_recipients
       (campaign_id, customer_id, email, recipient_status, ses_message_id, last_attempt_at, attempt_count)
     values ($1, $2, $3, $4, $5, now(), 1)`,
    [campaignId, customer.customer_id, customer.email, status, messageId],
  );
  return {
    campaignId,
    customerId: customer.customer_id,
    email: customer.email,
    // Events always carry a message id; for a recipient that has none recorded, SES's own.
    messageId: messageId ?? `ses-${randomBytes(8).toString('hex')}`,
  };
}

/** `count` recipients already sent (set-based: reputation tests need hundreds). */
export async function addSentRecipients(db: Db, campaignId: string, count: number): Promise<void> {
  await db.query(
    `with c as (
       insert into customers (email)
       select 'bulk-' || $2 || '-' || i || '@example.com' from generate_series(1, $3::int) i
       returning customer_id, email)
     insert into campaign_recipients
       (campaign_id, customer_id, email, recipient_status, ses_message_id, last_attempt_at, attempt_count)
     select $1, c.customer_id, c.email, 'sent', 'ses-' || gen_random_uuid(), now(), 1 from c`,
    [campaignId, randomBytes(4).toString('hex'), count],
  );
}

export async function recipientRow(db: Db, target: { campaignId: string; customerId: string }) {
  const { rows } = await db.query<{
    recipient_status: string;
    ses_message_id: string | null;
    last_error: string | null;
  }>(
    `select recipient_status, ses_message_id, last_error from campaign_recipients
      where campaign_id = $1 and customer_id = $2`,
    [target.campaignId, target.customerId],
  );
  return rows[0];
}

export async function suppressionOf(db: Db, email: string) {
  const { rows } = await db.query<{ reason: string; source: string }>(
    'select reason, source from suppression_list where email = $1',
    [email],
  );
  return rows[0];
}

export const LIMITS = { maxBounceRate: 0.04, maxComplaintRate: 0.0008, minSent: 100 };
