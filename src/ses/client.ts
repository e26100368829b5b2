// Which SES we talk to. SES_ENDPOINT wins; otherwise real SES when the AWS credential chain yields
// credentials; otherwise (a machine with nothing configured) the project's local SES endpoint,
// started in this process, and the logs say so loudly.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { GetAccountCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { Sha256 } from './sha256.ts';

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
  const client = new SESv2Client({
    region: config.ses.region,
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
    ...(endpoint && !process.env.AWS_ACCESS_KEY_ID
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
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

async function hasAwsCredentials(config: Config): Promise<boolean> {
  const probe = new SESv2Client({ region: config.ses.region });
  try {
    const credentials = probe.config.credentials;
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('timeout')), 3_000).unref(),
    );
    await Promise.race([credentials(), timeout]);
    return true;
  } catch {
    return false;
  } finally {
    probe.destroy();
  }
}

export async function connectSes(config: Config, logger: Logger): Promise<SesConnection> {
  if (config.ses.endpoint) {
    logger.info({ endpoint: config.ses.endpoint }, 'SES: using SES_ENDPOINT');
    const client = createSesClient(config, config.ses.endpoint);
    return { client, endpoint: config.ses.endpoint, close: async () => client.destroy() };
  }
  if (await hasAwsCredentials(config)) {
    logger.info(
      { region: config.ses.region },
      'SES: using Amazon SES with the AWS credential chain',
    );
    const client = createSesClient(config, undefined);
    return { client, endpoint: undefined, close: async () => client.destroy() };
  }
  const { startLocalSes } = await import('../ses-local/server.ts');
  const local = await startLocalSes({ logger: logger.child({ component: 'ses-local' }) });
  logger.warn(
    { endpoint: local.url },
    'SES: no SES_ENDPOINT and no AWS credentials: sending to the LOCAL SES endpoint in this ' +
      'process; nothing leaves this machine',
  );
  const client = createSesClient(config, local.url);
  return {
    client,
    endpoint: local.url,
    close: async () => {
      client.destroy();
      await local.close();
    },
  };
}

// The account's MaxSendRate, used for pacing when SES_MAX_SEND_RATE is unset.
export async function fetchMaxSendRate(client: SESv2Client): Promise<number | undefined> {
  const account = await client.send(new GetAccountCommand({}));
  return account.SendQuota?.MaxSendRate;
}
