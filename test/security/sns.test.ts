// The SNS webhook as production wires it (the default certificate fetcher and SubscribeURL visit,
// both over globalThis.fetch), against forged and replayed messages and server-side request
// forgery. globalThis.fetch is replaced in this test process (each ava file runs in its own) by a
// recorder: requests to our own server pass through, every other request is recorded and answered
// by a fake SNS, so nothing leaves the machine and every outbound attempt is seen.
import { randomUUID } from 'node:crypto';
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { LOCAL_TOPIC_ARN } from '../../src/ses-local/event-publisher.ts';
import { LOCAL_SIGNING_CERT_URL } from '../../src/sns/local-signing.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { type RunningServer, startServer } from '../http/helpers.ts';
import { runs } from '../property/runs.ts';
import { CERT_URL, keys, NOW, notificationFields, sign, TOPIC_ARN } from '../sns/helpers.ts';

const realFetch = globalThis.fetch;
const outbound: string[] = [];
// The fake SNS: our test certificate at CERT_URL, 404 for every other certificate, and a
// confirmation answer for SubscribeURLs.
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
  const url = new URL(input instanceof Request ? input.url : input);
  if (url.hostname === '127.0.0.1') return realFetch(input, init);
  outbound.push(url.href);
  if (url.href === CERT_URL) return new Response(keys.certPem);
  if (url.pathname.includes('unavailable')) return new Response('SlowDown', { status: 503 });
  if (url.pathname.endsWith('.pem')) return new Response('NoSuchKey', { status: 404 });
  return new Response('<ConfirmSubscriptionResponse/>');
};

const SNS_HOST = /^sns\.[a-z]{2,4}(?:-[a-z]+)+-\d+\.amazonaws\.com(?:\.cn)?$/;

let db: TestDatabase;
let server: RunningServer;
let clock = NOW;
test.before(async () => {
  db = await createTestDatabase();
  server = await startServer(
    db.pool,
    {
      SNS_TOPIC_ARNS: `${TOPIC_ARN},${LOCAL_TOPIC_ARN}`,
      SNS_TRUST_LOCAL_CERT: 'true',
      SNS_MAX_AGE_SECONDS: '3600',
    },
    { now: () => clock },
  );
});
test.after.always(async () => {
  await server?.close();
  await db?.drop();
});

async function post(body: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${server.url}/webhooks/ses`, { method: 'POST', body });
  return { status: response.status, text: await response.text() };
}

async function storedFor(messageId: string): Promise<{ messages: number; jobs: number }> {
  const { rows } = await db.pool.query<{ messages: number; jobs: number }>(
    `select (select count(*)::int from sns_messages where sns_message_id = $1) as messages,
            (select count(*)::int from graphile_worker._private_jobs
              where payload ->> 'MessageId' = $1) as jobs`,
    [messageId],
  );
  return rows[0] ?? { messages: -1, jobs: -1 };
}

function expectSnsOnly(t: { true(v: boolean, m?: string): void }, urls: string[]): void {
  for (const href of urls) {
    const url = new URL(href);
    t.true(
      url.protocol === 'https:' &&
        url.port === '' &&
        url.username + url.password === '' &&
        SNS_HOST.test(url.hostname),
      `outbound request to ${href}`,
    );
  }
}

test.serial(
  'a forged message naming a certificate SNS does not have gets 403, not a retry',
  async (t) => {
    const envelope = sign(notificationFields({ MessageId: randomUUID() }), {
      certUrl: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-forged.pem',
    });
    clock = NOW;
    const before = outbound.length;
    const answer = await post(JSON.stringify(envelope));
    t.is(answer.status, 403, 'a 5xx would make SNS (or an attacker) retry it');
    t.is(answer.text, 'rejected: bad_certificate\n');
    t.deepEqual(outbound.slice(before), [
      'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-forged.pem',
    ]);
    t.deepEqual(await storedFor(envelope.MessageId), { messages: 0, jobs: 0 });
  },
);

test.serial(
  'a certificate SNS cannot serve right now (5xx) gets a 503, so SNS delivers again',
  async (t) => {
    clock = NOW;
    const envelope = sign(notificationFields({ MessageId: randomUUID() }), {
      certUrl: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-unavailable.pem',
    });
    const answer = await post(JSON.stringify(envelope));
    t.is(answer.status, 503);
    t.is(answer.text, 'rejected: cert_fetch_failed\n');
    t.deepEqual(await storedFor(envelope.MessageId), { messages: 0, jobs: 0 });
  },
);

test.serial(
  'a captured notification replayed 50 times at once is stored and enqueued once',
  async (t) => {
    clock = NOW;
    const body = JSON.stringify(sign(notificationFields({ MessageId: randomUUID() })));
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(body)));
    t.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    t.is(answers.filter((a) => a.text === 'accepted\n').length, 1);
    t.deepEqual(await storedFor(JSON.parse(body).MessageId), { messages: 1, jobs: 1 });
  },
);

test.serial(
  'a captured notification replayed after the freshness window is refused as stale',
  async (t) => {
    const envelope = sign(notificationFields({ MessageId: randomUUID() }));
    clock = NOW;
    t.is((await post(JSON.stringify(envelope))).status, 200);
    // Even if its MessageId had been forgotten since (retention), the signed Timestamp is too old.
    await db.pool.query('delete from sns_messages where sns_message_id = $1', [envelope.MessageId]);
    clock = NOW + 3600_000 + 5_000;
    const replay = await post(JSON.stringify(envelope));
    t.is(replay.status, 403);
    t.is(replay.text, 'rejected: stale\n');
    t.deepEqual(await storedFor(envelope.MessageId), { messages: 0, jobs: 1 });
    clock = NOW;
  },
);

// Hosts an attacker would like us to visit, and ways of dressing them up as SNS.
const hostileUrl = fc.oneof(
  fc.webUrl({
    validSchemes: ['http', 'https', 'ftp', 'file'],
    withQueryParameters: true,
    withFragments: true,
  }),
  fc.constantFrom(
    'https://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'http://sns.us-east-1.amazonaws.com/x.pem',
    'https://sns.us-east-1.amazonaws.com:8443/x.pem',
    'https://sns.us-east-1.amazonaws.com@evil.example/x.pem',
    'https://user:pw@sns.us-east-1.amazonaws.com/x.pem',
    'https://sns.us-east-1.amazonaws.com.evil.example/x.pem',
    'https://evil.example/sns.us-east-1.amazonaws.com/x.pem',
    'https://evil.example#@sns.us-east-1.amazonaws.com/x.pem',
    'https://sns.us-east-1.amazonaws.com%2eevil.example/x.pem',
    'https:\\\\evil.example\\sns.us-east-1.amazonaws.com\\x.pem',
    'https://sns.s3-ap-southeast-2.amazonaws.com/x.pem',
    'https://sns.us-east-1.amazonaws.com./x.pem',
    'https://xn--sns-5cd.us-east-1.amazonaws.com/x.pem',
    'https://snѕ.us-east-1.amazonaws.com/x.pem',
    'https://[::1]/x.pem',
    'https://2130706433/x.pem',
    'https://localhost/x.pem',
    'https://sns.us-east-1.amazonaws.com/x.pem?redirect=https://evil.example',
  ),
  fc
    .tuple(fc.constantFrom('https://', 'http://', 'https://a@', '//'), fc.domain(), fc.webPath())
    .map(([scheme, host, path]) => `${scheme}sns.${host}${path}.pem`),
);

testProp(
  'signed subscription confirmations only ever make us visit an SNS host',
  [hostileUrl],
  async (t, subscribeUrl) => {
    clock = NOW;
    const before = outbound.length;
    const envelope = sign(
      {
        Type: 'SubscriptionConfirmation',
        MessageId: randomUUID(),
        TopicArn: LOCAL_TOPIC_ARN,
        Message: 'You have chosen to subscribe.',
        Timestamp: new Date(NOW - 1000).toISOString(),
        SubscribeURL: subscribeUrl,
        Token: 'token',
      },
      { certUrl: LOCAL_SIGNING_CERT_URL },
    );
    const answer = await post(JSON.stringify(envelope));
    // 200 confirmed, 400 not an SNS URL, 502 SNS did not answer well: never our own failure.
    t.true([200, 400, 502].includes(answer.status), `answered ${answer.status}`);
    expectSnsOnly(t, outbound.slice(before));
  },
  { numRuns: runs(300) },
);

testProp(
  'signing certificates are only ever fetched from SNS hosts, and a refusal is never a 5xx',
  [hostileUrl],
  async (t, certUrl) => {
    clock = NOW;
    const before = outbound.length;
    const answer = await post(
      JSON.stringify(sign(notificationFields({ MessageId: randomUUID() }), { certUrl })),
    );
    t.true(answer.status >= 400 && answer.status < 500, `answered ${answer.status}`);
    expectSnsOnly(t, outbound.slice(before));
  },
  { numRuns: runs(300) },
);
