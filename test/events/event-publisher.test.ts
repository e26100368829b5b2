import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendEmailCommand } from '@aws-sdk/client-sesv2';
import test from 'ava';
import {
  createEventPublisher,
  LOCAL_TOPIC_ARN,
  simulateSesEvents,
} from '../../src/ses-local/event-publisher.ts';
import type { SentMessage } from '../../src/ses-local/server.ts';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { LOCAL_SIGNING_CERT_URL, loadLocalSigningKeys } from '../../src/sns/local-signing.ts';
import { createSnsVerifier } from '../../src/sns/verify.ts';
import { createSesClient } from '../ses-local/helpers.ts';

const keys = await loadLocalSigningKeys();
const verifier = createSnsVerifier({
  allowedTopicArns: [LOCAL_TOPIC_ARN],
  fetchCertificate: async () => Promise.reject(new Error('no certificate downloads in this test')),
  localCertificate: { url: LOCAL_SIGNING_CERT_URL, pem: keys.certPem },
});

function sentMessage(to: string, overrides: Partial<SentMessage> = {}): SentMessage {
  return {
    messageId: '0100018f-test-message',
    from: 'Mailer <mailer@example.com>',
    to: [to],
    cc: [],
    bcc: [],
    subject: 'Weekly news',
    headers: [{ name: 'List-Unsubscribe', value: '<https://mail.example.com/unsubscribe/x>' }],
    tags: { campaign_id: 'c-1', customer_id: 'u-1' },
    acceptedAt: Date.parse('2030-06-01T12:00:00.000Z'),
    ...overrides,
  };
}

const shapes = (to: string) =>
  simulateSesEvents(sentMessage(to)).map((e) => {
    const bounce = e.bounce as { bounceType: string; bounceSubType: string } | undefined;
    return bounce ? `Bounce ${bounce.bounceType}/${bounce.bounceSubType}` : String(e.eventType);
  });

test('the simulator addresses get the events SES mailbox simulator publishes', (t) => {
  t.deepEqual(shapes('success@simulator.amazonses.com'), ['Send', 'Delivery']);
  t.deepEqual(shapes('bounce@simulator.amazonses.com'), ['Send', 'Bounce Permanent/General']);
  t.deepEqual(shapes('Bounce+week2@Simulator.AmazonSES.com'), ['Send', 'Bounce Permanent/General']);
  t.deepEqual(shapes('complaint@simulator.amazonses.com'), ['Send', 'Delivery', 'Complaint']);
  t.deepEqual(shapes('suppressionlist@simulator.amazonses.com'), [
    'Send',
    'Bounce Permanent/OnAccountSuppressionList',
  ]);
  t.deepEqual(shapes('reader@example.com'), ['Send', 'Delivery']);
});

test('events carry the message id, destination, timestamps and tags as arrays', (t) => {
  const [send, delivery] = simulateSesEvents(sentMessage('reader@example.com'));
  const mail = send?.mail as Record<string, unknown>;
  t.is(mail.messageId, '0100018f-test-message');
  t.deepEqual(mail.destination, ['reader@example.com']);
  t.is(mail.timestamp, '2030-06-01T12:00:00.000Z');
  t.like(mail.tags, { campaign_id: ['c-1'], customer_id: ['u-1'] });
  t.like(delivery?.delivery, { recipients: ['reader@example.com'] });
});

interface Receiver {
  url: string;
  bodies: string[];
  statuses: number[];
  close(): Promise<void>;
}

async function startReceiver(answer: (n: number) => number = () => 200): Promise<Receiver> {
  const bodies: string[] = [];
  const statuses: number[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const status = answer(bodies.length);
      bodies.push(body);
      statuses.push(status);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/ses`,
    bodies,
    statuses,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

for (const version of ['1', '2'] as const) {
  test(`publishes signed SNS notifications (v${version}) that the verifier accepts, in order`, async (t) => {
    const receiver = await startReceiver();
    t.teardown(() => receiver.close());
    const publisher = createEventPublisher({ webhookUrl: receiver.url, signatureVersion: version });
    publisher.publish(sentMessage('complaint@simulator.amazonses.com'));
    await publisher.drain();
    const envelopes = await Promise.all(receiver.bodies.map((b) => verifier.verify(b)));
    t.true(envelopes.every((e) => e.Type === 'Notification' && e.TopicArn === LOCAL_TOPIC_ARN));
    t.deepEqual(
      envelopes.map((e) => JSON.parse(e.Message).eventType),
      ['Send', 'Delivery', 'Complaint'],
    );
    t.is(new Set(envelopes.map((e) => e.MessageId)).size, 3);
  });
}

test('retries a webhook answering 5xx, gives up after the attempts, and drain waits for it', async (t) => {
  const receiver = await startReceiver((n) => (n === 0 ? 503 : 200));
  t.teardown(() => receiver.close());
  const publisher = createEventPublisher({ webhookUrl: receiver.url });
  publisher.publish(sentMessage('success@simulator.amazonses.com'));
  await publisher.drain();
  t.deepEqual(receiver.statuses, [503, 200, 200]);

  const failing = await startReceiver(() => 500);
  t.teardown(() => failing.close());
  const giving = createEventPublisher({ webhookUrl: failing.url, attempts: 2 });
  giving.publish(sentMessage('success@simulator.amazonses.com'));
  await giving.drain();
  t.is(failing.statuses.length, 4, 'Send and Delivery, twice each');
});

test('wired into the local SES endpoint, a real SendEmail produces the events', async (t) => {
  const receiver = await startReceiver();
  const publisher = createEventPublisher({ webhookUrl: receiver.url });
  const ses = await startLocalSes({ onSend: publisher.publish });
  const client = createSesClient(ses.url);
  t.teardown(async () => {
    client.destroy();
    await ses.close();
    await receiver.close();
  });
  const { MessageId } = await client.send(
    new SendEmailCommand({
      FromEmailAddress: 'news@example.com',
      Destination: { ToAddresses: ['bounce@simulator.amazonses.com'] },
      Content: { Simple: { Subject: { Data: 'Hi' }, Body: { Text: { Data: 'Hello' } } } },
      EmailTags: [{ Name: 'campaign_id', Value: 'c-9' }],
    }),
  );
  await publisher.drain();
  const events = await Promise.all(
    receiver.bodies.map(async (b) => JSON.parse((await verifier.verify(b)).Message)),
  );
  t.deepEqual(
    events.map((e) => [e.eventType, e.mail.messageId, e.mail.tags.campaign_id]),
    [
      ['Send', MessageId, ['c-9']],
      ['Bounce', MessageId, ['c-9']],
    ],
  );
});
