import test from 'ava';
import {
  createCertificateStore,
  createHttpsCertificateFetcher,
  type FetchLike,
} from '../../src/sns/certificate.ts';
import { CERT_URL, createRecordingFetcher, keys } from './helpers.ts';

const urls = ['a', 'b', 'c'].map(
  (name) => new URL(`https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-${name}.pem`),
);

test('the certificate cache evicts the least recently used entry past its limit', async (t) => {
  const [a, b, c] = urls as [URL, URL, URL];
  const fetcher = createRecordingFetcher(urls.map((url) => url.href));
  const store = createCertificateStore({ fetchCertificate: fetcher.fetchCertificate, limit: 2 });
  await store.get(a);
  await store.get(b);
  await store.get(a);
  await store.get(c); // evicts b, used less recently than a
  await store.get(a);
  await store.get(b);
  t.deepEqual(fetcher.calls, [a.href, b.href, c.href, b.href]);
});

function fakeFetch(response: () => Response) {
  const requests: Array<{ url: string; init: RequestInit }> = [];
  const fetch: FetchLike = async (url, init) => {
    requests.push({ url: url.href, init });
    return response();
  };
  return { fetch, requests };
}

test('the https fetcher refuses redirects and bounds the request with a timeout', async (t) => {
  const { fetch, requests } = fakeFetch(() => new Response(keys.certPem));
  const pem = await createHttpsCertificateFetcher({ fetch })(new URL(CERT_URL));
  t.is(pem, keys.certPem);
  t.is(requests.length, 1);
  t.is(requests[0]?.init.redirect, 'error');
  t.true(requests[0]?.init.signal instanceof AbortSignal);
});

test('the https fetcher fails on a non-2xx status', async (t) => {
  const { fetch } = fakeFetch(() => new Response('NoSuchKey', { status: 404 }));
  await t.throwsAsync(createHttpsCertificateFetcher({ fetch })(new URL(CERT_URL)), {
    message: /HTTP 404/,
  });
});

test('the https fetcher gives up on a body larger than any certificate', async (t) => {
  const { fetch } = fakeFetch(() => new Response('x'.repeat(64 * 1024 + 1)));
  await t.throwsAsync(createHttpsCertificateFetcher({ fetch })(new URL(CERT_URL)), {
    message: /exceeds/,
  });
});

test('the https fetcher times out a server that never answers', async (t) => {
  // AbortSignal.timeout does not keep the process alive; a real socket would.
  const keepAlive = setTimeout(() => {}, 5_000);
  t.teardown(() => clearTimeout(keepAlive));
  const fetch: FetchLike = (_url, init) =>
    new Promise((_resolve, reject) => {
      init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
    });
  await t.throwsAsync(createHttpsCertificateFetcher({ fetch, timeoutMs: 20 })(new URL(CERT_URL)), {
    name: 'TimeoutError',
  });
});
