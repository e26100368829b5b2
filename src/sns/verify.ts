import { createVerify, type X509Certificate } from 'node:crypto';
import {
  createCertificateStore,
  createHttpsCertificateFetcher,
  type FetchCertificate,
  parseCertificate,
} from './certificate.ts';
import { SnsVerificationError } from './errors.ts';
import {
  canonicalString,
  parseSnsEnvelope,
  SIGNATURE_ALGORITHMS,
  type SnsEnvelope,
} from './message.ts';
import { parseSigningCertUrl } from './sns-url.ts';

export { SnsVerificationError, type SnsVerificationReason } from './errors.ts';

const DEFAULT_MAX_AGE_MS = 60 * 60 * 1000;
// SNS clocks are not ours; a little skew is normal, a message dated well ahead is not.
const MAX_FUTURE_SKEW_MS = 5 * 60 * 1000;

export type SnsVerifierOptions = {
  allowedTopicArns: readonly string[];
  maxAgeMs?: number;
  now?: () => number;
  fetchCertificate?: FetchCertificate;
  /**
   * A certificate trusted for exactly this URL, never fetched. Only for the project's local SES endpoint,
   * whose private key is committed to the repository: never set it in production.
   */
  localCertificate?: { url: string; pem: string };
};

export type SnsVerifier = {
  /** Resolves to the envelope only if it is authentic, fresh and for an allowed topic. */
  verify(rawBody: string): Promise<SnsEnvelope>;
};

export function createSnsVerifier(options: SnsVerifierOptions): SnsVerifier {
  if (options.allowedTopicArns.length === 0) {
    throw new Error(
      'createSnsVerifier: allowedTopicArns is empty, every message would be rejected',
    );
  }
  const allowedTopics = new Set(options.allowedTopicArns);
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  const now = options.now ?? Date.now;
  const store = createCertificateStore({
    fetchCertificate: options.fetchCertificate ?? createHttpsCertificateFetcher(),
    now,
  });
  const local = options.localCertificate && pinLocalCertificate(options.localCertificate);

  function certificateFor(url: URL): Promise<X509Certificate> {
    return local !== undefined && local.url.href === url.href
      ? Promise.resolve(local.certificate)
      : store.get(url);
  }

  return {
    async verify(rawBody) {
      const envelope = parseSnsEnvelope(rawBody);
      // Every check that needs no network runs first, so a forged message cannot make us fetch anything.
      if (!allowedTopics.has(envelope.TopicArn)) {
        throw new SnsVerificationError('topic_not_allowed', `TopicArn ${envelope.TopicArn}`);
      }
      const nowMs = now();
      checkFreshness(envelope.Timestamp, nowMs, maxAgeMs);
      const certUrl = parseSigningCertUrl(envelope.SigningCertURL);
      if (certUrl === undefined) {
        throw new SnsVerificationError('bad_cert_url', `SigningCertURL ${envelope.SigningCertURL}`);
      }
      const certificate = await certificateFor(certUrl);
      checkValidity(certificate, certUrl, nowMs);
      checkSignature(envelope, certificate);
      return envelope;
    },
  };
}

function pinLocalCertificate(local: { url: string; pem: string }) {
  const url = parseSigningCertUrl(local.url);
  if (url === undefined) {
    throw new Error(`createSnsVerifier: localCertificate.url ${local.url} is not an SNS .pem URL`);
  }
  return { url, certificate: parseCertificate(local.pem, url) };
}

function checkFreshness(timestamp: string, nowMs: number, maxAgeMs: number): void {
  const sentMs = Date.parse(timestamp);
  if (Number.isNaN(sentMs)) throw new SnsVerificationError('malformed', `Timestamp ${timestamp}`);
  if (nowMs - sentMs > maxAgeMs) {
    throw new SnsVerificationError('stale', `Timestamp ${timestamp} is older than ${maxAgeMs} ms`);
  }
  if (sentMs - nowMs > MAX_FUTURE_SKEW_MS) {
    throw new SnsVerificationError('stale', `Timestamp ${timestamp} is in the future`);
  }
}

function checkValidity(certificate: X509Certificate, url: URL, nowMs: number): void {
  if (nowMs < certificate.validFromDate.getTime() || nowMs > certificate.validToDate.getTime()) {
    throw new SnsVerificationError(
      'bad_certificate',
      `${url.href} is valid only from ${certificate.validFrom} to ${certificate.validTo}`,
    );
  }
}

function checkSignature(envelope: SnsEnvelope, certificate: X509Certificate): void {
  let valid: boolean;
  try {
    valid = createVerify(SIGNATURE_ALGORITHMS[envelope.SignatureVersion])
      .update(canonicalString(envelope), 'utf8')
      .verify(certificate.publicKey, envelope.Signature, 'base64');
  } catch (cause) {
    throw new SnsVerificationError('bad_signature', 'signature could not be checked', { cause });
  }
  if (!valid) throw new SnsVerificationError('bad_signature', 'signature does not match');
}
