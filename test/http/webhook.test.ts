// POST /webhooks/ses through real HTTP: what is accepted is stored and enqueued once, anything
// that fails verification gets 4xx and leaves no trace (sns_messages, graphile_worker.jobs).
// Serial: every test counts rows in the one database of this file.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import type { FetchLike } from '../../src/sns/certificate.ts';
import { LOCAL_SIGNING_CERT_URL } from '../../src/sns/local-signing.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  confirmationFields,
  createRecordingFetcher,
  NOW,
  notificationFields,
  sign,
  TOPIC_ARN,
} from '../sns/helpers.ts';
import { deadPool, type RunningServer, startServer } from './helpers.ts';

let db: TestDatabase;
let server: RunningServer;
const certificates = createRecordingFetcher();
const confirmations: string[] = [];
const confirmFetch: FetchLike = async (url) => {
  confirmations.push(url.href);
  return new Response('<ConfirmSubscriptionResponse/>');
};

test.before(async () => {
  db = await createTestDatabase();
  server = await startServer(
    db.pool,
    { SNS_TOPIC_ARNS: TOPIC_ARN },
    { now: () => NOW, fetchCertificate: certificates.fetchCertificate, fetch: confirmFetch },
  );
});
test.after.always(async () => {
  await server?.close();
  await db?.drop();
});

function post(body: string, url = server.url) {
  return fetch(`${url}/webhooks/ses`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/plain; charset=UTF-8' },
  });
}

async function stored(): Promise<{ messages: number; jobs: number }> {
  const { rows } = await db.pool.query<{ messages: number; jobs: number }>(
    `select (select count(*)::int from sns_messages) as messages,
            (select count(*)::int from graphile_worker.jobs
              where task_identifier = 'process_ses_event') as jobs`,
  );
  return rows[0] ?? { messages: -1, jobs: -1 };
}

const notification = (overrides: Parameters<typeof notificationFields>[0] = {}) =>
  notificationFields({ MessageId: randomUUID(), ...overrides });

for (const version of ['1', '2'] as const) {
  test.serial(
    `a notification signed with SignatureVersion ${version} is stored and enqueued`,
    async (t) => {
      const before = await stored();
      const envelope = sign(notification(), { version });
      const response = await post(JSON.stringify(envelope));
      t.is(response.status, 200);
      t.is(await response.text(), 'accepted\n');
      t.deepEqual(await stored(), { messages: before.messages + 1, jobs: before.jobs + 1 });
      const { rows } = await db.pool.query(
        'select topic_arn from sns_messages where sns_message_id = $1',
        [envelope.MessageId],
      );
      t.deepEqual(rows, [{ topic_arn: TOPIC_ARN }]);
    },
  );
}

test.serial('the same SNS message delivered twice is stored and enqueued once', async (t) => {
  const body = JSON.stringify(sign(notification()));
  const before = await stored();
  t.is((await post(body)).status, 200);
  const again = await post(body);
  t.is(again.status, 200, 'SNS must not retry a redelivery');
  t.is(await again.text(), 'duplicate\n');
  t.deepEqual(await stored(), { messages: before.messages + 1, jobs: before.jobs + 1 });
});

test.serial(
  'concurrent deliveries, each MessageId twice at once: stored and enqueued once per message',
  async (t) => {
    const bodies = Array.from({ length: 60 }, () => JSON.stringify(sign(notification())));
    const before = await stored();
    // Both copies of every message in flight together, so batches hold a MessageId twice.
    const responses = await Promise.all(
      [...bodies, ...bodies].map(async (body) => {
        const response = await post(body);
        return `${response.status} ${(await response.text()).trim()}`;
      }),
    );
    const tally = new Map<string, number>();
    for (const r of responses) tally.set(r, (tally.get(r) ?? 0) + 1);
    t.deepEqual(Object.fromEntries(tally), { '200 accepted': 60, '200 duplicate': 60 });
    t.deepEqual(await stored(), { messages: before.messages + 60, jobs: before.jobs + 60 });
    const { rows } = await db.pool.query<{ n: number }>(
      `select count(distinct payload::jsonb ->> 'MessageId')::int as n from graphile_worker._private_jobs j
         join graphile_worker._private_tasks k on k.id = j.task_id
        where k.identifier = 'process_ses_event' and payload::jsonb ->> 'MessageId' = any($1)`,
      [bodies.map((b) => JSON.parse(b).MessageId)],
    );
    t.is(rows[0]?.n, 60, 'one job per message, each carrying its own envelope');
  },
);

const rejections: Array<[string, () => string, number, string]> = [
  [
    'a tampered Message',
    () => JSON.stringify({ ...sign(notification()), Message: '{"eventType":"Bounce"}' }),
    403,
    'bad_signature',
  ],
  [
    'a certificate on a foreign host',
    () =>
      JSON.stringify(
        sign(notification(), {
          certUrl: 'https://evil.example.com/SimpleNotificationService-x.pem',
        }),
      ),
    403,
    'bad_cert_url',
  ],
  [
    'a certificate on a look-alike SNS host',
    () =>
      JSON.stringify(
        sign(notification(), { certUrl: 'https://sns.eu-west-1.amazonaws.com.evil.com/cert.pem' }),
      ),
    403,
    'bad_cert_url',
  ],
  [
    'an unknown TopicArn',
    () =>
      JSON.stringify(sign(notification({ TopicArn: 'arn:aws:sns:eu-west-1:999999999999:other' }))),
    403,
    'topic_not_allowed',
  ],
  [
    'a stale Timestamp',
    () =>
      JSON.stringify(
        sign(notification({ Timestamp: new Date(NOW - 2 * 3_600_000).toISOString() })),
      ),
    403,
    'stale',
  ],
  ['a body that is not JSON', () => 'Type=Notification', 400, 'bad_json'],
  ['an unsigned envelope', () => JSON.stringify(notification()), 400, 'malformed'],
];

for (const [what, body, status, reason] of rejections) {
  test.serial(`${what} is rejected with ${status} and nothing is stored`, async (t) => {
    const before = await stored();
    const fetchesBefore = certificates.calls.length;
    const response = await post(body());
    t.is(response.status, status);
    t.is(await response.text(), `rejected: ${reason}\n`);
    t.deepEqual(await stored(), before);
    if (what.includes('host')) {
      t.is(certificates.calls.length, fetchesBefore, 'no certificate fetched from a foreign host');
    }
  });
}

test.serial(
  'a subscription confirmation for an allowed topic visits its SubscribeURL on the SNS host',
  async (t) => {
    confirmations.length = 0;
    const envelope = sign(confirmationFields('SubscriptionConfirmation'));
    const response = await post(JSON.stringify(envelope));
    t.is(response.status, 200);
    t.deepEqual(confirmations, [new URL(envelope.SubscribeURL).href]);
    t.is(new URL(confirmations[0] ?? '').hostname, 'sns.eu-west-1.amazonaws.com');
  },
);

test.serial(
  'a signed subscription confirmation pointing anywhere but SNS makes no request',
  async (t) => {
    confirmations.length = 0;
    const envelope = sign(
      confirmationFields('SubscriptionConfirmation', {
        SubscribeURL: 'https://169.254.169.254/latest/meta-data/?Action=ConfirmSubscription',
      }),
    );
    const response = await post(JSON.stringify(envelope));
    t.is(response.status, 400);
    t.deepEqual(confirmations, []);
  },
);

test.serial(
  'a subscription confirmation for a topic not in SNS_TOPIC_ARNS makes no request',
  async (t) => {
    confirmations.length = 0;
    const envelope = sign(
      confirmationFields('SubscriptionConfirmation', { TopicArn: 'arn:aws:sns:eu-west-1:1:other' }),
    );
    t.is((await post(JSON.stringify(envelope))).status, 403);
    t.deepEqual(confirmations, []);
  },
);

test.serial(
  'the local signing certificate is trusted only when SNS_TRUST_LOCAL_CERT is set',
  async (t) => {
    const body = () =>
      JSON.stringify(sign(notification(), { certUrl: LOCAL_SIGNING_CERT_URL, version: '2' }));
    const before = await stored();
    // Not trusted: the certificate would have to come from AWS, which does not serve it.
    const untrusted = await post(body());
    t.true(untrusted.status >= 400);
    t.true(certificates.calls.includes(LOCAL_SIGNING_CERT_URL));
    t.deepEqual(await stored(), before);

    const trusting = await startServer(
      db.pool,
      { SNS_TOPIC_ARNS: TOPIC_ARN, SNS_TRUST_LOCAL_CERT: 'true' },
      { now: () => NOW, fetchCertificate: async () => Promise.reject(new Error('no fetch')) },
    );
    t.teardown(() => trusting.close());
    t.is((await post(body(), trusting.url)).status, 200);
    t.is((await stored()).messages, before.messages + 1);
  },
);

test.serial('a body over the size limit gets 413 and nothing is stored', async (t) => {
  const before = await stored();
  const response = await post(`{"Message":"${'x'.repeat(1_100_000)}"}`);
  t.is(response.status, 413);
  t.deepEqual(await stored(), before);
});

test.serial('a database outage answers 503 so SNS delivers again later', async (t) => {
  const pool = deadPool();
  const down = await startServer(
    pool,
    { SNS_TOPIC_ARNS: TOPIC_ARN },
    { now: () => NOW, fetchCertificate: certificates.fetchCertificate },
  );
  t.teardown(async () => {
    await down.close();
    await pool.end();
  });
  const response = await post(JSON.stringify(sign(notification())), down.url);
  t.is(response.status, 503);
});

test.serial('without SNS_TOPIC_ARNS every message is refused with 503', async (t) => {
  const unconfigured = await startServer(db.pool, {}, { now: () => NOW });
  t.teardown(() => unconfigured.close());
  const before = await stored();
  const response = await post(JSON.stringify(sign(notification())), unconfigured.url);
  t.is(response.status, 503);
  t.deepEqual(await stored(), before);
});

test.serial('only POST is served on /webhooks/ses', async (t) => {
  const response = await fetch(`${server.url}/webhooks/ses`);
  t.is(response.status, 405);
  t.is(response.headers.get('allow'), 'POST');
});
