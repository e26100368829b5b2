import { z } from 'zod';
import { SnsVerificationError } from './errors.ts';

export const SIGNATURE_ALGORITHMS = { '1': 'RSA-SHA1', '2': 'RSA-SHA256' } as const;
export type SnsSignatureVersion = keyof typeof SIGNATURE_ALGORITHMS;

// Node's base64 decoder skips characters it does not understand and ignores unused trailing bits, so
// only the canonical encoding is accepted: one signature, one spelling.
const signatureSchema = z
  .base64()
  .min(1)
  .refine((value) => Buffer.from(value, 'base64').toString('base64') === value, {
    message: 'not canonical base64',
  });

const commonFields = {
  MessageId: z.string().min(1),
  TopicArn: z.string().min(1),
  Message: z.string(),
  Timestamp: z.iso.datetime(),
  SignatureVersion: z.enum(['1', '2']),
  Signature: signatureSchema,
  SigningCertURL: z.string().min(1),
};

const confirmationFields = {
  ...commonFields,
  SubscribeURL: z.string().min(1),
  Token: z.string().min(1),
};

// Unknown keys (e.g. MessageAttributes) are stripped: they are not signed, so nothing downstream may read them.
export const snsNotificationSchema = z.object({
  Type: z.literal('Notification'),
  ...commonFields,
  Subject: z.string().optional(),
  UnsubscribeURL: z.string().optional(),
});

export const snsSubscriptionConfirmationSchema = z.object({
  Type: z.literal('SubscriptionConfirmation'),
  ...confirmationFields,
});

export const snsUnsubscribeConfirmationSchema = z.object({
  Type: z.literal('UnsubscribeConfirmation'),
  ...confirmationFields,
});

export const snsEnvelopeSchema = z.discriminatedUnion('Type', [
  snsNotificationSchema,
  snsSubscriptionConfirmationSchema,
  snsUnsubscribeConfirmationSchema,
]);

export type SnsNotification = z.infer<typeof snsNotificationSchema>;
export type SnsSubscriptionConfirmation = z.infer<typeof snsSubscriptionConfirmationSchema>;
export type SnsUnsubscribeConfirmation = z.infer<typeof snsUnsubscribeConfirmationSchema>;
export type SnsEnvelope = z.infer<typeof snsEnvelopeSchema>;

type SignatureKey = 'SignatureVersion' | 'Signature' | 'SigningCertURL';
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An envelope before signing: what `canonicalString` reads and `signSnsEnvelope` takes. */
export type SnsSignedFields = DistributiveOmit<SnsEnvelope, SignatureKey>;

/** The exact string SNS signs: selected keys in this fixed order, each as `Key\nValue\n`. */
export function canonicalString(message: SnsSignedFields): string {
  const pairs: ReadonlyArray<readonly [string, string | undefined]> =
    message.Type === 'Notification'
      ? [
          ['Message', message.Message],
          ['MessageId', message.MessageId],
          ['Subject', message.Subject],
          ['Timestamp', message.Timestamp],
          ['TopicArn', message.TopicArn],
          ['Type', message.Type],
        ]
      : [
          ['Message', message.Message],
          ['MessageId', message.MessageId],
          ['SubscribeURL', message.SubscribeURL],
          ['Timestamp', message.Timestamp],
          ['Token', message.Token],
          ['TopicArn', message.TopicArn],
          ['Type', message.Type],
        ];
  let out = '';
  for (const [key, value] of pairs) {
    if (value !== undefined) out += `${key}\n${value}\n`;
  }
  return out;
}

/** Parses an HTTP body into an envelope; says nothing about authenticity. */
export function parseSnsEnvelope(rawBody: string): SnsEnvelope {
  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch (cause) {
    throw new SnsVerificationError('bad_json', 'body is not JSON', { cause });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SnsVerificationError('malformed', 'body is not a JSON object');
  }
  const version: unknown = (json as Record<string, unknown>).SignatureVersion;
  if (typeof version === 'string' && !Object.hasOwn(SIGNATURE_ALGORITHMS, version)) {
    throw new SnsVerificationError(
      'unsupported_version',
      `SignatureVersion ${JSON.stringify(version.slice(0, 20))}`,
    );
  }
  const parsed = snsEnvelopeSchema.safeParse(json);
  if (!parsed.success) {
    throw new SnsVerificationError('malformed', z.prettifyError(parsed.error), {
      cause: parsed.error,
    });
  }
  return parsed.data;
}
