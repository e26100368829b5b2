import { generateKeyPairSync } from 'node:crypto';
import test from 'ava';
import { createSnsVerifier } from '../../src/sns/verify.ts';
import {
  confirmationFields,
  createTestVerifier,
  NOW,
  notificationFields,
  rejectionReason,
  sign,
  TOPIC_ARN,
} from './helpers.ts';

for (const version of ['1', '2'] as const) {
  test(`accepts a v${version} notification with a Subject`, async (t) => {
    const envelope = sign(notificationFields(), { version });
    const { verifier } = createTestVerifier();
    t.deepEqual(await verifier.verify(JSON.stringify(envelope)), envelope);
  });

  test(`accepts a v${version} notification without a Subject`, async (t) => {
    const { Subject: _, ...fields } = notificationFields();
    const envelope = sign(fields, { version });
    const { verifier } = createTestVerifier();
    const verified = await verifier.verify(JSON.stringify(envelope));
    t.is(verified.MessageId, envelope.MessageId);
    t.false('Subject' in verified);
  });
}

for (const type of ['SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const) {
  test(`accepts a signed ${type}`, async (t) => {
    const envelope = sign(confirmationFields(type));
    const { verifier } = createTestVerifier();
    t.deepEqual(await verifier.verify(JSON.stringify(envelope)), envelope);
  });
}

const notificationTampering: Record<string, (body: Record<string, unknown>) => void> = {
  'a changed Message': (body) => {
    body.Message = JSON.stringify({ eventType: 'Bounce', mail: { messageId: 'ses-0001' } });
  },
  'a changed MessageId': (body) => {
    body.MessageId = '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf325';
  },
  'a changed Subject': (body) => {
    body.Subject = 'Amazon SES Email Event Notification!';
  },
  'its Subject removed': (body) => {
    delete body.Subject;
  },
  'a changed Timestamp': (body) => {
    body.Timestamp = new Date(NOW - 2000).toISOString();
  },
  'SignatureVersion switched to 1': (body) => {
    body.SignatureVersion = '1';
  },
};

for (const [what, tamper] of Object.entries(notificationTampering)) {
  test(`rejects a notification with ${what} after signing`, async (t) => {
    const body: Record<string, unknown> = { ...sign(notificationFields()) };
    tamper(body);
    const { verifier } = createTestVerifier();
    t.is(await rejectionReason(verifier.verify(JSON.stringify(body))), 'bad_signature');
  });
}

for (const key of ['Token', 'SubscribeURL'] as const) {
  test(`rejects a SubscriptionConfirmation whose ${key} was changed after signing`, async (t) => {
    const envelope = sign(confirmationFields('SubscriptionConfirmation'));
    const body = { ...envelope, [key]: `${envelope[key]}0` };
    const { verifier } = createTestVerifier();
    t.is(await rejectionReason(verifier.verify(JSON.stringify(body))), 'bad_signature');
  });
}

test('rejects a notification moved to another allowed topic after signing', async (t) => {
  const otherTopic = `${TOPIC_ARN}-other`;
  const body = { ...sign(notificationFields()), TopicArn: otherTopic };
  const { verifier } = createTestVerifier({ allowedTopicArns: [TOPIC_ARN, otherTopic] });
  t.is(await rejectionReason(verifier.verify(JSON.stringify(body))), 'bad_signature');
});

test('rejects a signature made by a key other than the certificate’s', async (t) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const envelope = sign(notificationFields(), { privateKeyPem });
  const { verifier } = createTestVerifier();
  t.is(await rejectionReason(verifier.verify(JSON.stringify(envelope))), 'bad_signature');
});

test('rejects an unknown TopicArn without fetching a certificate', async (t) => {
  const envelope = sign(notificationFields({ TopicArn: `${TOPIC_ARN}-unknown` }));
  const { verifier, calls } = createTestVerifier();
  t.is(await rejectionReason(verifier.verify(JSON.stringify(envelope))), 'topic_not_allowed');
  t.deepEqual(calls, []);
});

const timestamps: Array<[string, number, string]> = [
  ['older than an hour', NOW - 60 * 60 * 1000 - 1, 'stale'],
  ['an hour old', NOW - 60 * 60 * 1000, 'accepted'],
  ['five minutes ahead', NOW + 5 * 60 * 1000, 'accepted'],
  ['more than five minutes ahead', NOW + 5 * 60 * 1000 + 1, 'stale'],
];

for (const [when, sentMs, expected] of timestamps) {
  test(`${expected === 'stale' ? 'rejects' : 'accepts'} a message sent ${when}`, async (t) => {
    const envelope = sign(notificationFields({ Timestamp: new Date(sentMs).toISOString() }));
    const { verifier, calls } = createTestVerifier();
    t.is(await rejectionReason(verifier.verify(JSON.stringify(envelope))), expected);
    t.is(calls.length, expected === 'stale' ? 0 : 1);
  });
}

test('honours a shorter maxAgeMs', async (t) => {
  const envelope = sign(notificationFields({ Timestamp: new Date(NOW - 60_001).toISOString() }));
  const { verifier } = createTestVerifier({ maxAgeMs: 60_000 });
  t.is(await rejectionReason(verifier.verify(JSON.stringify(envelope))), 'stale');
});

const badBodies: Array<[string, string, string]> = [
  ['an empty body', '', 'bad_json'],
  ['truncated JSON', JSON.stringify(sign(notificationFields())).slice(0, -1), 'bad_json'],
  ['a JSON array', '[]', 'malformed'],
  ['JSON null', 'null', 'malformed'],
  [
    'an unknown Type',
    JSON.stringify({ ...sign(notificationFields()), Type: 'Other' }),
    'malformed',
  ],
  [
    'SignatureVersion 3',
    JSON.stringify({ ...sign(notificationFields()), SignatureVersion: '3' }),
    'unsupported_version',
  ],
  [
    'a numeric SignatureVersion',
    JSON.stringify({ ...sign(notificationFields()), SignatureVersion: 2 }),
    'malformed',
  ],
];

for (const [what, body, reason] of badBodies) {
  test(`rejects ${what} as ${reason}`, async (t) => {
    const { verifier, calls } = createTestVerifier();
    t.is(await rejectionReason(verifier.verify(body)), reason);
    t.deepEqual(calls, []);
  });
}

test('refuses to be created with an empty topic allowlist', (t) => {
  t.throws(() => createSnsVerifier({ allowedTopicArns: [] }), { message: /allowedTopicArns/ });
});
