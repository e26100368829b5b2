// The SESv2 client and the connection a process makes at start-up. Which SES is decided in
// src/ses/target.ts; for real SES the region and credentials come from the AWS SDK's own chains
// and are resolved before the process takes a job, so a missing piece stops it with one line
// (exit 2) instead of failing sends. Nothing falls back to the local SES: only SES_ENDPOINT=local
// starts it.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { GetAccountCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { type Config, ConfigError } from '../config.ts';
import type { Logger } from '../logger.ts';
import { Sha256 } from './sha256.ts';
import { isLoopbackUrl, type SesTarget, sesTarget } from './target.ts';

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

// How long the credential chain may take at start-up. Instance metadata or a task role can take
// seconds to answer on a busy host; a slow lookup is not an absent one.
const CREDENTIALS_TIMEOUT_MS = 60_000;

const CHAIN =
  'the AWS SDK default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the ' +
  'shared config and credentials files (SSO, credential_process), a web identity token, the ' +
  'ECS container and EC2 instance metadata';

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves the region and credentials real SES needs, or throws a one-line ConfigError. */
export async function resolveAwsSetup(
  client: SESv2Client,
  logger: Logger,
  timeoutMs = CREDENTIALS_TIMEOUT_MS,
): Promise<{ region: string }> {
  let region: string;
  try {
    region = await client.config.region();
  } catch (error) {
    throw new ConfigError(
      `no AWS region for SES: set AWS_REGION or a region in the AWS profile (${(error as Error).message})`,
    );
  }
  const slow = setTimeout(
    () => logger.info('SES: still resolving AWS credentials (instance metadata or task role)'),
    5_000,
  );
  try {
    await withTimeout(client.config.credentials(), timeoutMs, 'the credential lookup');
  } catch (error) {
    throw new ConfigError(
      `no AWS credentials for SES in ${region}: tried ${CHAIN}; ${(error as Error).message}. ` +
        'Set credentials, or SES_ENDPOINT=local to send to the local SES instead',
    );
  } finally {
    clearTimeout(slow);
  }
  return { region };
}

export async function connectSes(
  config: Config,
  logger: Logger,
  options: { credentialsTimeoutMs?: number } = {},
): Promise<SesConnection & { target: SesTarget }> {
  const target = sesTarget(config);
  if (target.kind === 'local') {
    logger.info({ endpoint: target.url }, `SES: local endpoint from ${target.source}`);
    const client = createSesClient(config, target.url);
    return { client, endpoint: target.url, target, close: async () => client.destroy() };
  }
  if (target.kind === 'aws') {
    // A URL from SES_ENDPOINT is passed on; AWS_ENDPOINT_URL_SESV2 / AWS_ENDPOINT_URL and the
    // profile's endpoint_url are the SDK's own to read.
    const client = createSesClient(config, config.ses.endpoint);
    try {
      const { region } = await resolveAwsSetup(client, logger, options.credentialsTimeoutMs);
      logger.info(
        { region, endpoint: target.url },
        `SES: Amazon SES (endpoint from ${target.source})`,
      );
    } catch (error) {
      client.destroy();
      throw error;
    }
    return { client, endpoint: target.url, target, close: async () => client.destroy() };
  }
  const { startLocalSes } = await import('../ses-local/server.ts');
  const local = await startLocalSes({ logger: logger.child({ component: 'ses-local' }) });
  logger.warn(
    { endpoint: local.url },
    'SES: SES_ENDPOINT=local: sending to the local SES endpoint in this process; nothing ' +
      'leaves this machine',
  );
  const client = createSesClient(config, local.url);
  return {
    client,
    endpoint: local.url,
    target,
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
