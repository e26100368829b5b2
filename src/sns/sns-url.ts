// The middle label must look like an AWS region. The common `sns\.[a-z0-9-]+\.amazonaws\.com` check also
// matches S3 virtual-hosted names such as sns.s3-ap-southeast-2.amazonaws.com, where whoever owns a
// bucket called "sns" could serve a certificate and forge events.
const SNS_HOST = /^sns\.[a-z]{2,4}(?:-[a-z]+)+-\d+\.amazonaws\.com(?:\.cn)?$/;

/** An https URL on an SNS regional endpoint, or undefined. Callers must use the returned URL, not the input. */
export function parseSnsUrl(value: string): URL | undefined {
  const url = URL.parse(value);
  if (url === null) return undefined;
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '') return undefined;
  // WHATWG URL drops an explicit :443, so any remaining port is a non-default one.
  if (url.port !== '') return undefined;
  return SNS_HOST.test(url.hostname) ? url : undefined;
}

// SNS's own are about 90 characters; a forged one could fill the 1 MiB body, and failed ones are
// remembered (certificate.ts).
export const MAX_SIGNING_CERT_URL_LENGTH = 1024;

/** A SigningCertURL we are willing to fetch: an SNS URL naming a .pem file, nothing after the path. */
export function parseSigningCertUrl(value: string): URL | undefined {
  if (value.length > MAX_SIGNING_CERT_URL_LENGTH) return undefined;
  const url = parseSnsUrl(value);
  if (url === undefined || !url.pathname.endsWith('.pem')) return undefined;
  return url.search === '' && url.hash === '' ? url : undefined;
}
