import { createSign } from 'node:crypto';
import {
  canonicalString,
  SIGNATURE_ALGORITHMS,
  type SnsSignatureVersion,
  type SnsSignedFields,
} from './message.ts';

export type SnsSigningOptions = {
  privateKeyPem: string;
  /** Where verifiers will look for the certificate; must pass the SNS URL rules to be accepted. */
  signingCertUrl: string;
  version: SnsSignatureVersion;
};

export type SignedSnsEnvelope<F extends SnsSignedFields> = F & {
  SignatureVersion: SnsSignatureVersion;
  Signature: string;
  SigningCertURL: string;
};

/** Signs an envelope the way SNS does, for the local SES endpoint and tests. */
export function signSnsEnvelope<F extends SnsSignedFields>(
  fields: F,
  options: SnsSigningOptions,
): SignedSnsEnvelope<F> {
  const Signature = createSign(SIGNATURE_ALGORITHMS[options.version])
    .update(canonicalString(fields), 'utf8')
    .sign(options.privateKeyPem, 'base64');
  return {
    ...fields,
    SignatureVersion: options.version,
    Signature,
    SigningCertURL: options.signingCertUrl,
  };
}
