// The SESv2 client as a sending worker configures it: one attempt per call, a write gate (the
// changes to the SDK's own stack are in src/ses/sdk-stack.ts), and placeholder credentials only
// for a loopback (local SES) endpoint. Connecting at start-up is src/ses/connect.ts.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { GetAccountCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import type { Config } from '../config.ts';
import { Sha256, tuneSendingStack } from './sdk-stack.ts';
import { isLoopbackUrl } from './target.ts';

export interface SesConnection {
  client: SESv2Client;
  endpoint: string | undefined;
  close(): Promise<void>;
}

export function createSesClient(
  config: Config,
  endpoint: string | undefined,
  options: { maxSockets?: number } = {},
): SESv2Client {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 256 };
  // The local SES checks no signature: placeholder credentials, and a region when none is set.
  // Never for any other endpoint, whose credentials come from the AWS chain.
  const local = endpoint !== undefined && isLoopbackUrl(endpoint);
  const region = config.ses.region ?? (local ? 'us-east-1' : undefined);
  const client = new SESv2Client({
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    // Resolve each command's middleware stack once, not on every call. Per-call behaviour (the
    // write gate) therefore lives in the client's stack, keyed by the command's input.
    cacheMiddleware: true,
    sha256: Sha256,
    // One attempt per call: whether a failed send may be retried is our decision (at-most-once),
    // not the SDK's. Retries happen as new jobs; see src/ses/errors.ts.
    maxAttempts: 1,
    requestHandler: {
      connectionTimeout: Math.min(5_000, config.ses.timeoutMs),
      requestTimeout: config.ses.timeoutMs,
      // Without this the SDK only logs a warning when the timeout passes.
      throwOnRequestTimeout: true,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    },
    ...(local ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  });
  tuneSendingStack(client);
  return client;
}

// The account's MaxSendRate, used for pacing when SES_MAX_SEND_RATE is unset.
export async function fetchMaxSendRate(client: SESv2Client): Promise<number | undefined> {
  const account = await client.send(new GetAccountCommand({}));
  return account.SendQuota?.MaxSendRate;
}
