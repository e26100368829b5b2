// The SES connection a process makes at start-up. Which SES is decided in src/ses/target.ts; for
// real SES the region and credentials come from the AWS SDK's own chains and are resolved before
// the process takes a job, so a missing piece stops it with one line (exit 2) instead of failing
// sends. Nothing falls back to the local SES: only SES_ENDPOINT=local starts it.
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import { type Config, ConfigError } from '../config.ts';
import type { Logger } from '../logger.ts';
import { createSesClient, type SesConnection } from './client.ts';
import { type SesTarget, sesTarget } from './target.ts';

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
