import { createPrivateKey, verify, X509Certificate } from 'node:crypto';
import test from 'ava';
import { canonicalString } from '../../src/sns/message.ts';
import { CERT_URL, keys, notificationFields, sign } from './helpers.ts';

const certificate = new X509Certificate(keys.certPem);

test('the committed local certificate holds the public half of the committed private key', (t) => {
  t.true(certificate.checkPrivateKey(createPrivateKey(keys.privateKeyPem)));
});

test('the committed local certificate stays valid until at least 2120', (t) => {
  t.true(certificate.validToDate.getTime() > Date.parse('2120-01-01T00:00:00Z'));
  t.is(certificate.publicKey.asymmetricKeyType, 'rsa');
  t.is(certificate.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
});

for (const [version, digest, otherDigest] of [
  ['1', 'sha1', 'sha256'],
  ['2', 'sha256', 'sha1'],
] as const) {
  test(`version ${version} signs the canonical string with RSA and ${digest}`, (t) => {
    const fields = notificationFields();
    const envelope = sign(fields, { version });
    const canonical = Buffer.from(canonicalString(fields));
    const signature = Buffer.from(envelope.Signature, 'base64');
    t.true(verify(digest, canonical, certificate.publicKey, signature));
    t.false(verify(otherDigest, canonical, certificate.publicKey, signature));
  });
}

test('the signed envelope keeps every field and names its certificate URL and version', (t) => {
  const fields = notificationFields();
  const envelope = sign(fields, { version: '1' });
  t.like(envelope, { ...fields, SignatureVersion: '1', SigningCertURL: CERT_URL });
});
