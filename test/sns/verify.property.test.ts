import { fc, testProp } from '@fast-check/ava';
import { SnsVerificationError } from '../../src/sns/errors.ts';
import {
  CERT_URL,
  confirmationFields,
  createTestVerifier,
  NOW,
  notificationFields,
  rejectionReason,
  sign,
  TOPIC_ARN,
} from './helpers.ts';

// rejectionReason rethrows anything that is not an SnsVerificationError, failing the property.
const { verifier } = createTestVerifier();

testProp('rejects any random string', [fc.string({ unit: 'binary' })], async (t, body) => {
  t.not(await rejectionReason(verifier.verify(body)), 'accepted');
});

testProp('rejects any random JSON document', [fc.json()], async (t, body) => {
  t.not(await rejectionReason(verifier.verify(body)), 'accepted');
});

const freshTimestamp = fc
  .integer({ min: NOW - 60 * 60 * 1000, max: NOW + 5 * 60 * 1000 })
  .map((ms) => new Date(ms).toISOString());

// Well-formed, fresh envelopes for an allowed topic, so every run reaches the signature check.
const forgedEnvelope = fc.record(
  {
    Type: fc.constantFrom('Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'),
    MessageId: fc.string({ minLength: 1 }),
    TopicArn: fc.constant(TOPIC_ARN),
    Subject: fc.string(),
    Message: fc.string(),
    Timestamp: freshTimestamp,
    SignatureVersion: fc.constantFrom('1', '2'),
    Signature: fc
      .uint8Array({ minLength: 1, maxLength: 256 })
      .map((bytes) => Buffer.from(bytes).toString('base64')),
    SigningCertURL: fc.constant(CERT_URL),
    SubscribeURL: fc.webUrl(),
    Token: fc.string({ minLength: 1 }),
  },
  {
    requiredKeys: [
      'Type',
      'MessageId',
      'TopicArn',
      'Message',
      'Timestamp',
      'SignatureVersion',
      'Signature',
      'SigningCertURL',
      'SubscribeURL',
      'Token',
    ],
  },
);

testProp(
  'rejects well-formed, fresh envelopes with forged signatures as bad_signature',
  [forgedEnvelope],
  async (t, envelope) => {
    t.is(await rejectionReason(verifier.verify(JSON.stringify(envelope))), 'bad_signature');
  },
);

const validEnvelope = fc.constantFrom(
  sign(notificationFields(), { version: '1' }),
  sign(notificationFields(), { version: '2' }),
  sign(confirmationFields('SubscriptionConfirmation')),
  sign(confirmationFields('UnsubscribeConfirmation')),
);

// SigningCertURL is deliberately absent: SNS does not sign it, and variants such as an inserted tab
// normalise to the same URL and the same certificate. Its rules have their own tests.
const commonSignedKeys = ['Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp'] as const;
const signatureKeys = ['SignatureVersion', 'Signature'] as const;
const signedKeysByType: Record<string, readonly string[]> = {
  Notification: [...commonSignedKeys, ...signatureKeys, 'Subject'],
  SubscriptionConfirmation: [...commonSignedKeys, ...signatureKeys, 'SubscribeURL', 'Token'],
  UnsubscribeConfirmation: [...commonSignedKeys, ...signatureKeys, 'SubscribeURL', 'Token'],
};

const editString = (original: string) =>
  fc.oneof(
    fc.string(),
    fc
      .tuple(fc.nat({ max: original.length }), fc.string({ minLength: 1, maxLength: 3 }))
      .map(([at, text]) => original.slice(0, at) + text + original.slice(at)),
    fc
      .tuple(fc.nat({ max: Math.max(0, original.length - 1) }), fc.integer({ min: 1, max: 4 }))
      .map(([at, length]) => original.slice(0, at) + original.slice(at + length)),
  );

const mutation = validEnvelope
  .chain((envelope) =>
    fc.tuple(fc.constant(envelope), fc.constantFrom(...(signedKeysByType[envelope.Type] ?? []))),
  )
  .chain(([envelope, key]) => {
    const original: unknown = (envelope as Record<string, unknown>)[key];
    const replacement = fc.oneof(
      typeof original === 'string' ? editString(original) : fc.string(),
      fc.constant(undefined),
      fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })),
    );
    return fc.tuple(fc.constant(envelope), fc.constant(key), replacement);
  })
  .filter(([envelope, key, value]) => (envelope as Record<string, unknown>)[key] !== value);

testProp(
  'rejects every change to a signed field of a valid envelope',
  [mutation],
  async (t, [envelope, key, value]) => {
    const body: Record<string, unknown> = { ...envelope, [key]: value };
    if (value === undefined) delete body[key];
    const error = await t.throwsAsync(verifier.verify(JSON.stringify(body)));
    t.true(error instanceof SnsVerificationError, String(error));
  },
  { numRuns: 500 },
);

const certUrlCandidate = fc.oneof(
  fc.webUrl({
    validSchemes: ['http', 'https', 'ftp'],
    withQueryParameters: true,
    withFragments: true,
  }),
  fc
    .tuple(fc.constantFrom('https://', 'http://', 'https://u@', ''), fc.domain(), fc.webPath())
    .map(([scheme, host, path]) => `${scheme}sns.${host}${path}.pem`),
  editString(CERT_URL),
);

testProp(
  'only ever fetches certificates over https from sns.<region>.amazonaws.com .pem paths',
  [certUrlCandidate],
  async (t, certUrl) => {
    const { verifier: fresh, calls } = createTestVerifier();
    const envelope = sign(notificationFields(), { certUrl });
    await rejectionReason(fresh.verify(JSON.stringify(envelope)));
    for (const call of calls) {
      const url = new URL(call);
      t.is(url.protocol, 'https:');
      t.is(url.port, '');
      t.is(url.username + url.password, '');
      t.regex(url.hostname, /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/);
      t.regex(url.pathname, /\.pem$/);
    }
    t.pass();
  },
  { numRuns: 300 },
);
