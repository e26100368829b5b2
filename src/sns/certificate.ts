import { X509Certificate } from 'node:crypto';
import { SnsVerificationError } from './errors.ts';

export type FetchCertificate = (url: URL) => Promise<string>;

/**
 * SNS answered that there is no certificate at this URL (a 4xx other than 408/429). Real SNS
 * messages only name certificates that exist, so the message is forged: refused for good (4xx),
 * where a network error or a 5xx is passing and answered 503 so that SNS delivers again.
 */
export class CertificateNotFoundError extends Error {
  override name = 'CertificateNotFoundError';
}
/** The subset of WHATWG fetch we use; `globalThis.fetch` satisfies it. */
export type FetchLike = (input: URL, init: RequestInit) => Promise<Response>;

// SNS certificates are about 2 KiB of PEM; anything far larger is not one.
const MAX_CERTIFICATE_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_CACHE_LIMIT = 32;

// Anyone who knows an allowed TopicArn (not a secret) can name any .pem on an SNS host in a forged
// message, and each one made us download it. So a failed download is remembered (a 4xx for a
// minute: SNS only names certificates that exist; a network error or a 5xx for a few seconds, as
// SNS delivers a refused message again), at most MAX_FETCHES_IN_FLIGHT downloads run at once, and
// a message that would need one more gets 503 without a download (SNS retries it). A flood of
// forgeries costs one download per URL and minute; a real message's certificate is cached apart,
// so the flood neither evicts it nor delays its messages.
export const REFUSED_CERTIFICATE_TTL_MS = 60_000;
export const UNAVAILABLE_CERTIFICATE_TTL_MS = 5_000;
export const MAX_FETCHES_IN_FLIGHT = 4;
// Remembered failures; each key is a SigningCertURL of at most 1 KiB (sns-url.ts).
const FAILURE_CACHE_LIMIT = 1024;

/** Reads a response body as UTF-8, giving up (and cancelling the stream) past `maxBytes`. */
export async function readTextCapped(response: Response, maxBytes: number): Promise<string> {
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new Error(`response body exceeds ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function createHttpsCertificateFetcher(
  options: { fetch?: FetchLike; timeoutMs?: number } = {},
): FetchCertificate {
  const fetch = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return async (url) => {
    // A redirect could leave the vetted host, so it is an error rather than followed.
    const response = await fetch(url, {
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) {
      await response.body?.cancel();
      const { status } = response;
      const missing = status >= 400 && status < 500 && status !== 408 && status !== 429;
      throw new (missing ? CertificateNotFoundError : Error)(`GET ${url.href}: HTTP ${status}`);
    }
    return readTextCapped(response, MAX_CERTIFICATE_BYTES);
  };
}

export type CertificateStore = { get(url: URL): Promise<X509Certificate> };

export function parseCertificate(pem: string, url: URL): X509Certificate {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch (cause) {
    throw new SnsVerificationError('bad_certificate', `${url.href} is not a certificate`, {
      cause,
    });
  }
  if (certificate.publicKey.asymmetricKeyType !== 'rsa') {
    throw new SnsVerificationError('bad_certificate', `${url.href} does not hold an RSA key`);
  }
  return certificate;
}

/**
 * Certificates by URL, least recently used evicted past `limit`. The promise is cached so concurrent
 * messages share one fetch. A failure is remembered apart for a short time (see above), and at
 * most `maxFetchesInFlight` fetches run at once.
 */
export function createCertificateStore(options: {
  fetchCertificate: FetchCertificate;
  limit?: number;
  maxFetchesInFlight?: number;
  /** Milliseconds clock for the failure cache; defaults to Date.now. */
  now?: () => number;
}): CertificateStore {
  const limit = options.limit ?? DEFAULT_CACHE_LIMIT;
  const maxFetchesInFlight = options.maxFetchesInFlight ?? MAX_FETCHES_IN_FLIGHT;
  const now = options.now ?? Date.now;
  const cache = new Map<string, Promise<X509Certificate>>();
  const failures = new Map<string, { error: unknown; until: number }>();
  let fetchesInFlight = 0;

  async function load(url: URL): Promise<X509Certificate> {
    let pem: string;
    try {
      pem = await options.fetchCertificate(url);
    } catch (cause) {
      if (cause instanceof CertificateNotFoundError) {
        throw new SnsVerificationError('bad_certificate', `${url.href} does not exist`, { cause });
      }
      throw new SnsVerificationError('cert_fetch_failed', `GET ${url.href} failed`, { cause });
    } finally {
      fetchesInFlight--;
    }
    return parseCertificate(pem, url);
  }

  function remember(key: string, error: unknown): void {
    const unavailable =
      error instanceof SnsVerificationError && error.reason === 'cert_fetch_failed';
    const ttl = unavailable ? UNAVAILABLE_CERTIFICATE_TTL_MS : REFUSED_CERTIFICATE_TTL_MS;
    failures.delete(key);
    failures.set(key, { error, until: now() + ttl });
    for (const oldest of failures.keys()) {
      if (failures.size <= FAILURE_CACHE_LIMIT) break;
      failures.delete(oldest);
    }
  }

  return {
    get(url) {
      const key = url.href;
      const cached = cache.get(key);
      if (cached !== undefined) {
        cache.delete(key);
        cache.set(key, cached);
        return cached;
      }
      const failure = failures.get(key);
      if (failure !== undefined) {
        if (now() < failure.until) return Promise.reject(failure.error);
        failures.delete(key);
      }
      if (fetchesInFlight >= maxFetchesInFlight) {
        return Promise.reject(
          new SnsVerificationError(
            'cert_fetch_failed',
            `${maxFetchesInFlight} certificate downloads in progress; ${url.href} not fetched`,
          ),
        );
      }
      fetchesInFlight++;
      const pending = load(url);
      cache.set(key, pending);
      pending.catch((error: unknown) => {
        if (cache.get(key) === pending) cache.delete(key);
        remember(key, error);
      });
      for (const oldest of cache.keys()) {
        if (cache.size <= limit) break;
        cache.delete(oldest);
      }
      return pending;
    },
  };
}
