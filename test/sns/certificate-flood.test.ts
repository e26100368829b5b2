// Forged webhooks must not turn the server into a downloader. Anyone who knows an allowed TopicArn
// can name any .pem on an SNS host as SigningCertURL; here a flood of such forgeries goes through
// the real webhook and the production certificate fetcher, whose requests are pointed at a
// counting fake certificate host on this machine.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import {
  createHttpsCertificateFetcher,
  MAX_FETCHES_IN_FLIGHT,
  REFUSED_CERTIFICATE_TTL_MS,
  UNAVAILABLE_CERTIFICATE_TTL_MS,
} from '../../src/sns/certificate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { type RunningServer, startServer } from '../http/helpers.ts';
import { CERT_URL, keys, NOW, notificationFields, sign, TOPIC_ARN } from './helpers.ts';

const SNS = 'https://sns.eu-west-1.amazonaws.com';

// The fake certificate host: the test certificate at CERT_URL's path, 503 for paths containing
// "unavailable", 404 for every other path; answers after `delayMs`. Counts requests per path and
// the most it had in progress at once.
const host = {
  requests: new Map<string, number>(),
  inProgress: 0,
  mostInProgress: 0,
  delayMs: 0,
  url: '',
  count(path: string): number {
    return this.requests.get(path) ?? 0;
  },
};
const hostServer = createServer((req, res) => {
  const path = req.url ?? '/';
  host.requests.set(path, host.count(path) + 1);
  host.inProgress++;
  host.mostInProgress = Math.max(host.mostInProgress, host.inProgress);
  setTimeout(() => {
    host.inProgress--;
    if (path === new URL(CERT_URL).pathname) res.end(keys.certPem);
    else if (path.includes('unavailable')) res.writeHead(503).end('SlowDown');
    else res.writeHead(404).end('NoSuchKey');
  }, host.delayMs);
});

let db: TestDatabase;
let server: RunningServer;
let clock = NOW;
test.before(async () => {
  await new Promise<void>((resolve) => hostServer.listen(0, '127.0.0.1', resolve));
  host.url = `http://127.0.0.1:${(hostServer.address() as AddressInfo).port}`;
  db = await createTestDatabase();
  // The production fetcher; only its requests go to the fake host instead of SNS.
  const fetchCertificate = createHttpsCertificateFetcher({
    fetch: (url, init) => fetch(new URL(url.pathname, host.url), init),
  });
  server = await startServer(
    db.pool,
    { SNS_TOPIC_ARNS: TOPIC_ARN },
    { now: () => clock, fetchCertificate },
  );
});
test.after.always(async () => {
  await server?.close();
  await db?.drop();
  hostServer.close();
});

function forged(certUrl: string): string {
  return JSON.stringify(sign(notificationFields({ MessageId: randomUUID() }), { certUrl }));
}

async function post(body: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${server.url}/webhooks/ses`, { method: 'POST', body });
  return { status: response.status, text: await response.text() };
}

test.serial(
  'fifty concurrent forgeries naming one certificate cost one download, and repeating them within a minute none',
  async (t) => {
    clock = NOW;
    host.delayMs = 20;
    const path = '/SimpleNotificationService-forged-1.pem';
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(forged(SNS + path))));
    t.deepEqual(
      [...new Set(answers.map((a) => `${a.status} ${a.text.trim()}`))],
      ['403 rejected: bad_certificate'],
    );
    t.is(host.count(path), 1);

    for (let i = 0; i < 10; i++) t.is((await post(forged(SNS + path))).status, 403);
    clock = NOW + REFUSED_CERTIFICATE_TTL_MS - 1_000;
    t.is((await post(forged(SNS + path))).status, 403);
    t.is(
      host.count(path),
      1,
      'a refused certificate is not downloaded again within its cache time',
    );

    clock = NOW + REFUSED_CERTIFICATE_TTL_MS + 1;
    t.is((await post(forged(SNS + path))).status, 403);
    t.is(host.count(path), 2, 'and is downloaded again after it');
  },
);

test.serial(
  'forgeries naming many certificates at once never have more than a few downloads in flight',
  async (t) => {
    clock = NOW;
    host.delayMs = 100;
    host.mostInProgress = 0;
    const paths = Array.from({ length: 40 }, (_, i) => `/SimpleNotificationService-many-${i}.pem`);
    const answers = await Promise.all(paths.map((path) => post(forged(SNS + path))));
    // Each is refused for good (403) after its download, or told to come back (503) without one.
    const statuses = new Set(answers.map((a) => a.status));
    t.true(
      [...statuses].every((s) => s === 403 || s === 503),
      [...statuses].join(),
    );
    t.true(host.mostInProgress <= MAX_FETCHES_IN_FLIGHT, `${host.mostInProgress} at once`);
    const downloads = paths.reduce((n, path) => n + host.count(path), 0);
    t.is(downloads, answers.filter((a) => a.status === 403).length, 'one download per 403');
  },
);

test.serial(
  'a real message verifies with its cached certificate while forgeries hold every download slot',
  async (t) => {
    clock = NOW;
    host.delayMs = 0;
    const real = () => JSON.stringify(sign(notificationFields({ MessageId: randomUUID() })));
    t.is((await post(real())).status, 200);
    host.delayMs = 500;
    const flood = Array.from({ length: 20 }, (_, i) =>
      post(forged(`${SNS}/SimpleNotificationService-slot-${i}.pem`)),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.is(host.inProgress, MAX_FETCHES_IN_FLIGHT, 'the forgeries hold every download slot');
    const answer = await post(real());
    t.is(answer.status, 200, answer.text);
    await Promise.all(flood);
    t.is(host.count(new URL(CERT_URL).pathname), 1);
  },
);

test.serial(
  'a certificate SNS cannot serve right now is downloaded again only after a few seconds',
  async (t) => {
    clock = NOW;
    host.delayMs = 0;
    const path = '/SimpleNotificationService-unavailable-1.pem';
    t.is((await post(forged(SNS + path))).status, 503);
    t.is((await post(forged(SNS + path))).status, 503);
    t.is(host.count(path), 1);
    clock = NOW + UNAVAILABLE_CERTIFICATE_TTL_MS + 1;
    t.is((await post(forged(SNS + path))).status, 503);
    t.is(host.count(path), 2);
  },
);
