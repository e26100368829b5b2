// The SESv2 client as a sending worker configures it: one attempt per call, a send deadline, and
// placeholder credentials only for a loopback (local SES) endpoint. Connecting at start-up is
// src/ses/connect.ts.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { GetAccountCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import type { Config } from '../config.ts';
import { Sha256 } from './sha256.ts';
import { isLoopbackUrl } from './target.ts';

export interface SesConnection {
  client: SESv2Client;
  endpoint: string | undefined;
  close(): Promise<void>;
}

// Per-request steps of the SDK's default stack that a sending worker does not need: the
// User-Agent header, Lambda's trace-id propagation, and a logger middleware with no logger.
// Together ~8% of the client's CPU per SendEmail (bench/ses-client.ts). The retry step is
// replaced below.
const UNNEEDED_MIDDLEWARE = [
  'getUserAgentMiddleware',
  'recursionDetectionMiddleware',
  'loggerMiddleware',
];

const deadlines = new WeakMap<object, number>();

/** Thrown instead of writing a request whose deadline (see sendBy) has passed. */
export class DeadlineMissedError extends Error {
  override name = 'DeadlineMissedError';
}

/**
 * The request made from this command input must leave by `deadline` (epoch ms), or it is not
 * written at all and the send fails with DeadlineMissedError: nothing reaches SES.
 */
export function sendBy<T extends object>(input: T, deadline: number): T {
  deadlines.set(input, deadline);
  return input;
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
    // send deadline) therefore lives in the client's stack, keyed by the command's input.
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
  for (const name of UNNEEDED_MIDDLEWARE) client.middlewareStack.remove(name);
  // With one attempt per call the SDK's retry step only adds work to every call (a retry token, a
  // UUID invocation-id header, error bookkeeping). A pass-through keeps its name, which the
  // signing step is positioned relative to. Errors reach the caller as the deserializer or the
  // HTTP handler threw them, with $metadata.httpStatusCode (src/ses/errors.ts).
  client.middlewareStack.remove('retryMiddleware');
  client.middlewareStack.add((next) => next, {
    step: 'finalizeRequest',
    priority: 'high',
    name: 'retryMiddleware',
  });
  // The last step before the request is written (after serialising and signing): a send that
  // would leave after its deadline is dropped here.
  client.middlewareStack.add(
    (next) => async (args) => {
      const deadline = deadlines.get(args.input as object);
      if (deadline !== undefined && Date.now() > deadline) {
        throw new DeadlineMissedError('send deadline missed; the request was not written');
      }
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'mailerSendDeadline' },
  );
  return client;
}

// The account's MaxSendRate, used for pacing when SES_MAX_SEND_RATE is unset.
export async function fetchMaxSendRate(client: SESv2Client): Promise<number | undefined> {
  const account = await client.send(new GetAccountCommand({}));
  return account.SendQuota?.MaxSendRate;
}
