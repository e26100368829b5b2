import test from 'ava';
import { UNAVAILABLE_CERTIFICATE_TTL_MS } from '../../src/sns/certificate.ts';
import { LOCAL_SIGNING_CERT_URL } from '../../src/sns/local-signing.ts';
import { createSnsVerifier } from '../../src/sns/verify.ts';
import {
  CERT_URL,
  createRecordingFetcher,
  createTestVerifier,
  keys,
  NOW,
  notificationFields,
  rejectionReason,
  sign,
  TOPIC_ARN,
} from './helpers.ts';

const foreignCertUrls = [
  'https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-x.pem',
  'https://evil.com/SimpleNotificationService-x.pem',
  'https://evil.com/sns.us-east-1.amazonaws.com/x.pem',
  'http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem',
  'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.crt',
  'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem?download=1',
  'https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-x.pem',
  'https://user:secret@sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem',
  'https://sns.us-east-1.amazonaws.com./SimpleNotificationService-x.pem',
  // S3 virtual-hosted names: anyone owning a bucket called "sns" could serve these.
  'https://sns.s3.amazonaws.com/SimpleNotificationService-x.pem',
  'https://sns.s3-ap-southeast-2.amazonaws.com/SimpleNotificationService-x.pem',
  'https://sns.amazonaws.com/SimpleNotificationService-x.pem',
  'sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem',
];

for (const certUrl of foreignCertUrls) {
  test(`rejects SigningCertURL ${certUrl} without fetching it`, async (t) => {
    const envelope = sign(notificationFields(), { certUrl });
    const { verifier, calls } = createTestVerifier();
    t.is(await rejectionReason(verifier.verify(JSON.stringify(envelope))), 'bad_cert_url');
    t.deepEqual(calls, []);
  });
}

test('rejects a SigningCertURL longer than 1 KiB without fetching it', async (t) => {
  // SNS's own are about 90 characters; failed fetches are remembered by URL.
  const certUrl = `https://sns.us-east-1.amazonaws.com/SimpleNotificationService-${'x'.repeat(1000)}.pem`;
  const { verifier, calls } = createTestVerifier();
  const envelope = sign(notificationFields(), { certUrl });
  t.is(await rejectionReason(verifier.verify(JSON.stringify(envelope))), 'bad_cert_url');
  t.deepEqual(calls, []);
});

const awsCertUrls = [
  'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem',
  'https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-x.pem',
  'https://sns.ap-southeast-3.amazonaws.com/SimpleNotificationService-x.pem',
];

for (const certUrl of awsCertUrls) {
  test(`fetches the certificate from ${new URL(certUrl).hostname}`, async (t) => {
    const fetcher = createRecordingFetcher([certUrl]);
    const { verifier } = createTestVerifier({ fetchCertificate: fetcher.fetchCertificate });
    const envelope = sign(notificationFields(), { certUrl });
    t.is(await rejectionReason(verifier.verify(JSON.stringify(envelope))), 'accepted');
    t.deepEqual(fetcher.calls, [certUrl]);
  });
}

test('fetches a certificate once for many messages, including concurrent ones', async (t) => {
  const { verifier, calls } = createTestVerifier();
  const bodies = Array.from({ length: 6 }, (_, i) =>
    JSON.stringify(sign(notificationFields({ MessageId: `m-${i}` }))),
  );
  await Promise.all(bodies.slice(0, 3).map((body) => verifier.verify(body)));
  for (const body of bodies.slice(3)) await verifier.verify(body);
  t.deepEqual(calls, [CERT_URL]);
});

test('remembers a failed certificate fetch for a few seconds only', async (t) => {
  let attempts = 0;
  let clock = NOW;
  const { verifier } = createTestVerifier({
    now: () => clock,
    fetchCertificate: async () => {
      attempts += 1;
      if (attempts === 1) throw new Error('connection reset');
      return keys.certPem;
    },
  });
  const body = JSON.stringify(sign(notificationFields()));
  t.is(await rejectionReason(verifier.verify(body)), 'cert_fetch_failed');
  t.is(await rejectionReason(verifier.verify(body)), 'cert_fetch_failed');
  t.is(attempts, 1);
  clock = NOW + UNAVAILABLE_CERTIFICATE_TTL_MS + 1;
  t.is(await rejectionReason(verifier.verify(body)), 'accepted');
  t.is(attempts, 2);
});

test('rejects a fetched document that is not a certificate', async (t) => {
  const { verifier } = createTestVerifier({ fetchCertificate: async () => '<html>hi</html>' });
  const body = JSON.stringify(sign(notificationFields()));
  t.is(await rejectionReason(verifier.verify(body)), 'bad_certificate');
});

for (const [when, nowMs] of [
  ['after it expired', Date.parse('2200-01-01T00:00:00Z')],
  ['before it became valid', Date.parse('2001-01-01T00:00:00Z')],
] as const) {
  test(`rejects a message checked ${when} the certificate’s validity`, async (t) => {
    const envelope = sign(notificationFields({ Timestamp: new Date(nowMs).toISOString() }));
    const { verifier } = createTestVerifier({ now: () => nowMs });
    t.is(await rejectionReason(verifier.verify(JSON.stringify(envelope))), 'bad_certificate');
  });
}

test('trusts the local certificate for its URL without fetching', async (t) => {
  const { verifier, calls } = createTestVerifier({
    localCertificate: { url: LOCAL_SIGNING_CERT_URL, pem: keys.certPem },
  });
  const local = sign(notificationFields(), { certUrl: LOCAL_SIGNING_CERT_URL, version: '1' });
  t.is(await rejectionReason(verifier.verify(JSON.stringify(local))), 'accepted');
  t.deepEqual(calls, []);
  await verifier.verify(JSON.stringify(sign(notificationFields())));
  t.deepEqual(calls, [CERT_URL]);
});

test('without localCertificate, the local URL is fetched like any other and fails there', async (t) => {
  const { verifier, calls } = createTestVerifier();
  const local = sign(notificationFields(), { certUrl: LOCAL_SIGNING_CERT_URL });
  t.is(await rejectionReason(verifier.verify(JSON.stringify(local))), 'cert_fetch_failed');
  t.deepEqual(calls, [LOCAL_SIGNING_CERT_URL]);
});

test('refuses a localCertificate on a URL that is not an SNS .pem URL', (t) => {
  t.throws(
    () =>
      createSnsVerifier({
        allowedTopicArns: [TOPIC_ARN],
        now: () => NOW,
        localCertificate: { url: 'https://localhost:4566/cert.pem', pem: keys.certPem },
      }),
    { message: /localCertificate/ },
  );
});
