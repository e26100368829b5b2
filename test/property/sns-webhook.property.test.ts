// POST /webhooks/ses through real HTTP with whatever a stranger can send: random text and bytes,
// random JSON, envelope-shaped objects with wrong types, every kind of change to a correctly
// signed envelope, bodies around and far over the size limit. Each one must get a 4xx (SNS does
// not retry a 4xx, and nothing here is worth retrying), never a 5xx or a crash, and leave nothing
// in sns_messages or the job queue. fast-check prints the seed and path of any failing run.
import { fc, testProp } from '@fast-check/ava';
import test, { type ExecutionContext } from 'ava';
import { MAX_WEBHOOK_BODY_BYTES } from '../../src/http/ses-webhook.ts';
import { CertificateNotFoundError } from '../../src/sns/certificate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { type RunningServer, startServer } from '../http/helpers.ts';
import {
  CERT_URL,
  confirmationFields,
  keys,
  NOW,
  notificationFields,
  sign,
  TOPIC_ARN,
} from '../sns/helpers.ts';
import { anyJsonValue } from './arbitraries.ts';
import { runs } from './runs.ts';

let db: TestDatabase;
let server: RunningServer;
const outbound: string[] = [];

test.before(async () => {
  db = await createTestDatabase();
  server = await startServer(
    db.pool,
    { SNS_TOPIC_ARNS: TOPIC_ARN },
    {
      now: () => NOW,
      // What the real fetcher reports when SNS answers 404 for a certificate that does not exist.
      fetchCertificate: async (url) => {
        outbound.push(url.href);
        if (url.href === CERT_URL) return keys.certPem;
        throw new CertificateNotFoundError(`GET ${url.href}: HTTP 404`);
      },
      fetch: async (url) => {
        outbound.push(url.href);
        return new Response('<ConfirmSubscriptionResponse/>');
      },
    },
  );
});
test.after.always(async () => {
  await server?.close();
  await db?.drop();
});

async function post(body: string | Uint8Array): Promise<number> {
  const response = await fetch(`${server.url}/webhooks/ses`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/plain; charset=UTF-8' },
  });
  await response.body?.cancel();
  return response.status;
}

async function storedAnything(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `select (select count(*) from sns_messages)
          + (select count(*) from graphile_worker.jobs) as n`,
  );
  return Number(rows[0]?.n ?? -1);
}

async function refused(t: ExecutionContext, status: number, what: string) {
  t.true(status >= 400 && status < 500, `${what}: answered ${status}`);
  t.is(await storedAnything(), 0, `${what}: nothing stored`);
}

const anyValue = anyJsonValue(
  40,
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
);

const snsishUrl = fc.oneof(
  fc.constant(CERT_URL),
  fc.webUrl({ withQueryParameters: true }),
  fc
    .tuple(fc.constantFrom('us-east-1', 'eu-west-1', 'ap-southeast-2'), fc.webPath())
    .map(([region, path]) => `https://sns.${region}.amazonaws.com${path}.pem`),
);

testProp(
  'random text gets a 4xx and stores nothing',
  [fc.string({ unit: 'binary', maxLength: 3000 })],
  async (t, body) => refused(t, await post(body), 'text'),
  { numRuns: runs(200) },
);

testProp(
  'random bytes (not UTF-8) get a 4xx and store nothing',
  [fc.uint8Array({ maxLength: 3000 })],
  async (t, body) => refused(t, await post(body), 'bytes'),
  { numRuns: runs(200) },
);

testProp(
  'random JSON gets a 4xx and stores nothing',
  [fc.json({ maxDepth: 4 })],
  async (t, body) => refused(t, await post(body), 'json'),
  { numRuns: runs(200) },
);

const envelopeLike = fc.record(
  {
    Type: fc.oneof(
      fc.constantFrom('Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'),
      anyValue,
    ),
    MessageId: fc.oneof(fc.uuid(), anyValue),
    TopicArn: fc.oneof(fc.constant(TOPIC_ARN), anyValue),
    Subject: fc.oneof(fc.string(), anyValue),
    Message: fc.oneof(fc.json(), anyValue),
    Timestamp: fc.oneof(
      fc.constant(new Date(NOW - 1000).toISOString()),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      anyValue,
    ),
    SignatureVersion: fc.oneof(fc.constantFrom('1', '2'), anyValue),
    Signature: fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 256 }).map((b) => Buffer.from(b).toString('base64')),
      anyValue,
    ),
    SigningCertURL: fc.oneof(snsishUrl, anyValue),
    SubscribeURL: fc.oneof(snsishUrl, anyValue),
    Token: fc.oneof(fc.string(), anyValue),
    UnsubscribeURL: fc.oneof(fc.webUrl(), anyValue),
  },
  { requiredKeys: [] },
);

testProp(
  'envelope-shaped objects with missing fields and wrong types get a 4xx and store nothing',
  [envelopeLike],
  async (t, envelope) => refused(t, await post(JSON.stringify(envelope)), 'envelope'),
  { numRuns: runs(400) },
);

// Valid, signed envelopes, and one change to something the signature or the checks cover.
const signed = [
  sign(notificationFields({ MessageId: 'b9b3b8f0-0000-4000-8000-000000000001' }), { version: '1' }),
  sign(notificationFields({ MessageId: 'b9b3b8f0-0000-4000-8000-000000000002' }), { version: '2' }),
  sign(
    notificationFields({ MessageId: 'b9b3b8f0-0000-4000-8000-000000000003', Subject: undefined }),
  ),
  sign(confirmationFields('SubscriptionConfirmation')),
  sign(confirmationFields('UnsubscribeConfirmation')),
];
// Both confirmation types sign the same fields.
const confirmationFieldsSigned = [
  'Type',
  'MessageId',
  'TopicArn',
  'Message',
  'Timestamp',
  'SubscribeURL',
  'Token',
];
const covered: Record<string, string[]> = {
  Notification: ['Type', 'MessageId', 'TopicArn', 'Subject', 'Message', 'Timestamp'],
  SubscriptionConfirmation: confirmationFieldsSigned,
  UnsubscribeConfirmation: confirmationFieldsSigned,
};

const edit = (original: string) =>
  fc.oneof(
    fc.string({ maxLength: 30 }),
    fc
      .tuple(fc.nat({ max: original.length }), fc.string({ minLength: 1, maxLength: 3 }))
      .map(([at, text]) => original.slice(0, at) + text + original.slice(at)),
    fc
      .tuple(fc.nat({ max: Math.max(0, original.length - 1) }), fc.integer({ min: 1, max: 4 }))
      .map(([at, n]) => original.slice(0, at) + original.slice(at + n)),
  );

const mutated = fc
  .constantFrom(...signed)
  .chain((envelope) => {
    const keys = [
      ...(covered[envelope.Type] ?? []),
      'Signature',
      'SignatureVersion',
      'SigningCertURL',
    ];
    return fc.tuple(fc.constant(envelope), fc.constantFrom(...keys));
  })
  .chain(([envelope, key]) => {
    const original = (envelope as Record<string, unknown>)[key];
    const replacement =
      key === 'SigningCertURL'
        ? // Other certificates: on SNS hosts that do not have them, or not on SNS at all.
          fc.oneof(
            fc.webPath().map((p) => `https://sns.eu-west-1.amazonaws.com${p}x.pem`),
            fc.webUrl(),
            anyValue,
          )
        : fc.oneof(
            typeof original === 'string' ? edit(original) : fc.string(),
            fc.constant(undefined),
            anyValue,
          );
    return fc.tuple(fc.constant(envelope), fc.constant(key), replacement);
  })
  .filter(([envelope, key, value]) => (envelope as Record<string, unknown>)[key] !== value);

testProp(
  'any change to a signed envelope gets a 4xx and stores nothing',
  [mutated],
  async (t, [envelope, key, value]) => {
    const body: Record<string, unknown> = { ...envelope, [key]: value };
    if (value === undefined) delete body[key];
    await refused(t, await post(JSON.stringify(body)), `${envelope.Type}.${key}`);
  },
  { numRuns: runs(500) },
);

testProp(
  'bodies around and over the size limit get a 4xx (413 over it) and store nothing',
  [
    fc.integer({ min: MAX_WEBHOOK_BODY_BYTES - 1000, max: 4 * MAX_WEBHOOK_BODY_BYTES }),
    fc.string({ minLength: 1, maxLength: 8 }),
  ],
  async (t, size, unit) => {
    const filler = unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
    const body = `{"Type":"Notification","Message":${JSON.stringify(filler)}}`;
    const bytes = Buffer.byteLength(body);
    // Past 8 times the limit the server stops reading and cuts the connection (src/http/io.ts).
    if (bytes > 8 * MAX_WEBHOOK_BODY_BYTES) {
      const status = await post(body).catch(() => 'cut');
      t.true(status === 413 || status === 'cut', `${bytes} bytes: ${status}`);
      t.is(await storedAnything(), 0);
      return;
    }
    const status = await post(body);
    if (bytes > MAX_WEBHOOK_BODY_BYTES) t.is(status, 413);
    await refused(t, status, `${bytes} bytes`);
  },
  { numRuns: runs(15) },
);

test('a body far over the limit is cut off without a 5xx, and the server keeps serving', async (t) => {
  const status = await post('x'.repeat(9 * MAX_WEBHOOK_BODY_BYTES)).catch(
    () => 'connection closed',
  );
  t.true(status === 413 || status === 'connection closed', String(status));
  t.is(await storedAnything(), 0);
  const health = await fetch(`${server.url}/healthz`);
  t.is(health.status, 200);
});

test.after('no outbound request went anywhere but an SNS host', (t) => {
  for (const url of outbound) t.regex(new URL(url).hostname, /^sns\.[a-z0-9-]+\.amazonaws\.com$/);
});
