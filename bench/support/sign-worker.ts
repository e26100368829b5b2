// Worker thread for sign-envelopes.ts: signs its share of SNS envelopes with the local key.
import { parentPort, workerData } from 'node:worker_threads';
import { LOCAL_SIGNING_CERT_URL, loadLocalSigningKeys } from '../../src/sns/local-signing.ts';
import type { SnsSignedFields } from '../../src/sns/message.ts';
import { signSnsEnvelope } from '../../src/sns/sign.ts';

const { privateKeyPem } = await loadLocalSigningKeys();
const fields = workerData as SnsSignedFields[];
const bodies = fields.map((f) =>
  JSON.stringify(
    signSnsEnvelope(f, { privateKeyPem, signingCertUrl: LOCAL_SIGNING_CERT_URL, version: '2' }),
  ),
);
parentPort?.postMessage(bodies);
