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
 * messages share one fetch; a failure is dropped so the next message tries again.
 */
export function createCertificateStore(options: {
  fetchCertificate: FetchCertificate;
  limit?: number;
}): CertificateStore {
  const limit = options.limit ?? DEFAULT_CACHE_LIMIT;
  const cache = new Map<string, Promise<X509Certificate>>();

  async function load(url: URL): Promise<X509Certificate> {
    let pem: string;
    try {
      pem = await options.fetchCertificate(url);
    } catch (cause) {
      if (cause instanceof CertificateNotFoundError) {
        throw new SnsVerificationError('bad_certificate', `${url.href} does not exist`, { cause });
      }
      throw new SnsVerificationError('cert_fetch_failed', `GET ${url.href} failed`, { cause });
    }
    return parseCertificate(pem, url);
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
      const pending = load(url);
      cache.set(key, pending);
      pending.catch(() => {
        if (cache.get(key) === pending) cache.delete(key);
      });
      for (const oldest of cache.keys()) {
        if (cache.size <= limit) break;
        cache.delete(oldest);
      }
      return pending;
    },
  };
}
