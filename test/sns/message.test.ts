import test from 'ava';
import { SnsVerificationError } from '../../src/sns/errors.ts';
import { canonicalString, parseSnsEnvelope } from '../../src/sns/message.ts';
import { confirmationFields, notificationFields, sign } from './helpers.ts';

const base = {
  Message: 'hello\nworld',
  MessageId: 'm-1',
  Timestamp: '2030-06-01T11:59:59.000Z',
  TopicArn: 'arn:aws:sns:eu-west-1:123456789012:t',
};

test('a notification signs Message, MessageId, Subject, Timestamp, TopicArn, Type in that order', (t) => {
  const text = canonicalString({
    ...base,
    Type: 'Notification',
    Subject: 'Hi',
    UnsubscribeURL: 'u',
  });
  t.is(
    text,
    'Message\nhello\nworld\nMessageId\nm-1\nSubject\nHi\nTimestamp\n2030-06-01T11:59:59.000Z\n' +
      'TopicArn\narn:aws:sns:eu-west-1:123456789012:t\nType\nNotification\n',
  );
});

test('a notification without Subject leaves the Subject key out entirely', (t) => {
  const text = canonicalString({ ...base, Type: 'Notification' });
  t.is(
    text,
    'Message\nhello\nworld\nMessageId\nm-1\nTimestamp\n2030-06-01T11:59:59.000Z\n' +
      'TopicArn\narn:aws:sns:eu-west-1:123456789012:t\nType\nNotification\n',
  );
});

test('an empty Subject is still signed, because it is present', (t) => {
  t.true(canonicalString({ ...base, Type: 'Notification', Subject: '' }).includes('Subject\n\n'));
});

for (const type of ['SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const) {
  test(`a ${type} signs SubscribeURL and Token alongside the common keys`, (t) => {
    const text = canonicalString({ ...base, Type: type, SubscribeURL: 'https://s', Token: 'tok' });
    t.is(
      text,
      'Message\nhello\nworld\nMessageId\nm-1\nSubscribeURL\nhttps://s\n' +
        'Timestamp\n2030-06-01T11:59:59.000Z\nToken\ntok\n' +
        `TopicArn\narn:aws:sns:eu-west-1:123456789012:t\nType\n${type}\n`,
    );
  });
}

test('parsing drops unsigned unknown keys such as MessageAttributes', (t) => {
  const body = JSON.stringify({ ...sign(notificationFields()), MessageAttributes: { a: 1 } });
  t.false('MessageAttributes' in parseSnsEnvelope(body));
});

test('parsing a confirmation without Token is malformed', (t) => {
  const { Token: _, ...withoutToken } = sign(confirmationFields('SubscriptionConfirmation'));
  const error = t.throws(() => parseSnsEnvelope(JSON.stringify(withoutToken)), {
    instanceOf: SnsVerificationError,
  });
  t.is(error?.reason, 'malformed');
});

test('a signature in non-canonical base64 is malformed', (t) => {
  const envelope = sign(notificationFields());
  // 256 signature bytes end in "X==" where X carries 4 unused bits; flipping one keeps the bytes.
  const last = envelope.Signature.at(-3) ?? '';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const sibling = alphabet[alphabet.indexOf(last) ^ 1] ?? '';
  const Signature = `${envelope.Signature.slice(0, -3)}${sibling}==`;
  t.deepEqual(Buffer.from(Signature, 'base64'), Buffer.from(envelope.Signature, 'base64'));
  const error = t.throws(() => parseSnsEnvelope(JSON.stringify({ ...envelope, Signature })), {
    instanceOf: SnsVerificationError,
  });
  t.is(error?.reason, 'malformed');
});
