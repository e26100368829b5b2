// What process_ses_event accepts: the SNS Notification envelope the webhook stored (its Message is
// the SES event as a JSON string), or a bare SES event, so an operator can replay one from psql.
// Only what the SQL relies on is checked (type, mail.messageId, the detail fields that drive an
// effect, timestamps); everything else is kept as it came and stored raw.
import { z } from 'zod';
import { describeIssues } from '../worker/define.ts';

/** Every event type SES documents, as it spells them (eventType or notificationType). */
export const SES_EVENT_TYPES = [
  'Send',
  'Delivery',
  'Bounce',
  'Complaint',
  'Reject',
  'Open',
  'Click',
  'Rendering Failure',
  'DeliveryDelay',
  'Subscription',
] as const;
export type SesEventType = (typeof SES_EVENT_TYPES)[number];

// SES publishes this once to a topic that becomes an identity's notification topic; it is not
// about any email.
const SUBSCRIPTION_SUCCEEDED = 'AmazonSnsSubscriptionSucceeded';

const timestamp = z.iso.datetime({ offset: true }).optional();
// Addresses and message ids end up in B-tree indexes (suppression_list, email_events_op,
// campaign_recipients), whose entries cannot exceed ~2.7 kB: a longer value would fail the insert
// on every retry. SES never sends such values (a mailbox is at most 254 characters, its message
// ids about 60), so an event carrying one is refused at once, saying which field.
const address = z.string().max(1000);
const messageId = z.string().min(1).max(512);
const recipients = z.array(z.looseObject({ emailAddress: address }));

// The detail object each type carries, under the key SES gives it.
const details: Record<SesEventType, [key: string, schema: z.ZodType]> = {
  Send: ['send', z.looseObject({ timestamp })],
  Delivery: ['delivery', z.looseObject({ timestamp, recipients: z.array(address).optional() })],
  Bounce: [
    'bounce',
    z.looseObject({
      bounceType: z.enum(['Permanent', 'Transient', 'Undetermined']),
      bounceSubType: z.string().optional(),
      bouncedRecipients: recipients,
      timestamp,
    }),
  ],
  Complaint: ['complaint', z.looseObject({ complainedRecipients: recipients, timestamp })],
  Reject: ['reject', z.looseObject({ reason: z.string().optional(), timestamp })],
  Open: ['open', z.looseObject({ timestamp })],
  Click: ['click', z.looseObject({ timestamp })],
  'Rendering Failure': [
    'failure',
    z.looseObject({ errorMessage: z.string().optional(), timestamp }),
  ],
  DeliveryDelay: [
    'deliveryDelay',
    z.looseObject({ timestamp, delayedRecipients: recipients.optional() }),
  ],
  Subscription: ['subscription', z.looseObject({ timestamp })],
};

const sesEventSchema = z
  .looseObject({
    eventType: z.enum(SES_EVENT_TYPES).optional(),
    notificationType: z.enum(SES_EVENT_TYPES).optional(),
    mail: z.looseObject({
      messageId,
      timestamp,
      destination: z.array(address).optional(),
      // Configuration-set tags: SES sends every value as an array; a hand-written replay may not.
      tags: z.record(z.string(), z.union([z.array(z.string()), z.string()])).optional(),
    }),
  })
  .superRefine((event, ctx) => {
    const type = event.eventType ?? event.notificationType;
    if (type === undefined) {
      ctx.addIssue({ code: 'custom', message: 'eventType or notificationType is required' });
      return;
    }
    const [key, schema] = details[type];
    // Bounces and complaints cannot be applied without their detail; the others are only recorded.
    if (event[key] === undefined && type !== 'Bounce' && type !== 'Complaint') return;
    const detail = schema.safeParse(event[key]);
    if (!detail.success) {
      ctx.addIssue({ code: 'custom', path: [key], message: describeIssues(detail.error) });
    }
  });

const envelopeSchema = z.object({
  Type: z.literal('Notification'),
  MessageId: z.string().min(1),
  Message: z.string(),
});

export type SesEventPayload =
  | { kind: 'event'; type: SesEventType; event: Record<string, unknown>; snsMessageId?: string }
  | { kind: 'subscription_succeeded'; snsMessageId?: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The task payload: an envelope is unwrapped, then the event is checked. */
export const sesEventPayloadSchema = z.unknown().transform((payload, ctx): SesEventPayload => {
  const fail = (message: string) => {
    ctx.issues.push({ code: 'custom', message, input: payload });
    return z.NEVER;
  };
  let value: unknown = payload;
  let snsMessageId: string | undefined;
  if (isObject(payload) && 'Type' in payload) {
    const envelope = envelopeSchema.safeParse(payload);
    if (!envelope.success)
      return fail(`not an SNS Notification: ${describeIssues(envelope.error)}`);
    snsMessageId = envelope.data.MessageId;
    try {
      value = JSON.parse(envelope.data.Message);
    } catch {
      return fail('SNS Message is not JSON');
    }
  }
  if (!isObject(value)) return fail('not an SES event object');
  if (value.notificationType === SUBSCRIPTION_SUCCEEDED) {
    return { kind: 'subscription_succeeded', snsMessageId };
  }
  const parsed = sesEventSchema.safeParse(value);
  if (!parsed.success) return fail(`not an SES event: ${describeIssues(parsed.error)}`);
  const type = (parsed.data.eventType ?? parsed.data.notificationType) as SesEventType;
  // The raw object, not zod's copy: email_events_op keeps the event exactly as SES sent it.
  return { kind: 'event', type, event: value, snsMessageId };
});
