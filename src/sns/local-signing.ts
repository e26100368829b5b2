import { readFile } from 'node:fs/promises';

/*
 * The key pair the project's local SES endpoint signs its SNS events with, so local runs exercise the
 * same verification path as production. The private key is committed on purpose and is therefore public.
 *
 * Real SNS never serves this path (its certificates are SimpleNotificationService-<hash>.pem), and a
 * verifier trusts cert.pem for it only when given it explicitly as `localCertificate`; without that, a
 * message naming this URL is fetched from AWS like any other and fails. Never configure it in production.
 */
export const LOCAL_SIGNING_CERT_URL =
  'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-mailer-local.pem';

export async function loadLocalSigningKeys(): Promise<{ privateKeyPem: string; certPem: string }> {
  const [privateKeyPem, certPem] = await Promise.all([
    readFile(new URL('./local-signing/key.pem', import.meta.url), 'utf8'),
    readFile(new URL('./local-signing/cert.pem', import.meta.url), 'utf8'),
  ]);
  return { privateKeyPem, certPem };
}
