// SES events as SES formats them (from the AWS "Examples of event data" pages), about recipients
// made by test/helpers/factories.ts, and what applying them leaves behind.
import type { ExecutionContext } from 'ava';
import type pg from 'pg';
import type { Db } from '../../src/db/pool.ts';
import type { SesEventType } from '../../src/events/ses-event.ts';
import {
  createEventPublisher,
  type EventPublisher,
  LOCAL_TOPIC_ARN,
} from '../../src/ses-local/event-publisher.ts';
import { startServer, testLogger } from '../http/helpers.ts';

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

export async function suppressionOf(db: Db, email: string) {
  const { rows } = await db.query<{ reason: string; source: string }>(
    'select reason, source from suppression_list where email = $1',
    [email],
  );
  return rows[0];
}

/** The whole suppression list, by address. */
export async function suppressionList(db: Db) {
  const { rows } = await db.query<{ email: string; reason: string; source: string }>(
    'select email, reason, source from suppression_list order by email',
  );
  return rows;
}

export const LIMITS = { maxBounceRate: 0.04, maxComplaintRate: 0.0008, minSent: 100 };

/**
 * The HTTP webhook on `pool`, trusting the local SNS signer, and a publisher posting the local
 * SES's events to it (pass `publisher.publish` as the endpoint's onSend). The server closes when
 * the test ends, after whatever the test starts later.
 */
export async function startEventWebhook(
  t: ExecutionContext,
  pool: pg.Pool,
): Promise<EventPublisher> {
  const http = await startServer(pool, {
    SNS_TOPIC_ARNS: LOCAL_TOPIC_ARN,
    SNS_TRUST_LOCAL_CERT: 'true',
  });
  t.teardown(() => http.close());
  return createEventPublisher({ webhookUrl: `${http.url}/webhooks/ses`, logger: testLogger });
}
