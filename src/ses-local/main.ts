// Runs a local SES endpoint as its own process for the demo, benchmarks and manual testing:
//   LOCAL_SES_PORT (default 4579, 0 = random), LOCAL_SES_HOST (default 127.0.0.1),
//   LOCAL_SES_MAX_SEND_RATE (sends per second, unset or 0 = unlimited).
// Logs one JSON line with the URL once listening; SIGTERM/SIGINT close it and exit 0.
// With an events webhook (`mailer ses-local --events-webhook URL`), every accepted message's
// mailbox-simulator events go to that URL as signed SNS notifications (event-publisher.ts), so a
// `mailer serve` started with SNS_TOPIC_ARNS=<LOCAL_TOPIC_ARN> and SNS_TRUST_LOCAL_CERT=true
// takes bounces and complaints from it as from real SES.
import { type Logger, pino } from 'pino';
import { z } from 'zod';
import { createEventPublisher, type EventPublisher, LOCAL_TOPIC_ARN } from './event-publisher.ts';
import { type LocalSes, startLocalSes } from './server.ts';

const blankAsUnset = (value: unknown) => (value === '' ? undefined : value);

const envSchema = z.object({
  LOCAL_SES_PORT: z.preprocess(
    blankAsUnset,
    z.coerce.number().int().min(0).max(65_535).default(4579),
  ),
  LOCAL_SES_HOST: z.preprocess(blankAsUnset, z.string().default('127.0.0.1')),
  LOCAL_SES_MAX_SEND_RATE: z.preprocess(blankAsUnset, z.coerce.number().nonnegative().optional()),
});

export type LocalSesEnv = z.infer<typeof envSchema>;

/** Reads the LOCAL_SES_* variables; a bad value throws an error naming the variable. */
export function parseLocalSesEnv(env: NodeJS.ProcessEnv): LocalSesEnv {
  const parsed = envSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  throw new Error(`Invalid local SES configuration: ${problems.join('; ')}`);
}

export interface RunLocalSesOptions {
  /** Publish the simulator's events for every accepted message to this URL (SNS-signed). */
  eventsWebhook?: string;
}

export async function runLocalSes(
  env: NodeJS.ProcessEnv,
  logger: Logger,
  options: RunLocalSesOptions = {},
): Promise<LocalSes> {
  const config = parseLocalSesEnv(env);
  const publisher: EventPublisher | undefined = options.eventsWebhook
    ? createEventPublisher({ webhookUrl: options.eventsWebhook, logger })
    : undefined;
  const ses = await startLocalSes({
    port: config.LOCAL_SES_PORT,
    host: config.LOCAL_SES_HOST,
    maxSendRate: config.LOCAL_SES_MAX_SEND_RATE,
    onSend: publisher?.publish,
    logger,
  });
  logger.info(
    {
      url: ses.url,
      maxSendRate: config.LOCAL_SES_MAX_SEND_RATE ?? null,
      ...(publisher ? { eventsWebhook: options.eventsWebhook, topicArn: LOCAL_TOPIC_ARN } : {}),
    },
    'local SES listening',
  );
  const shutdown = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'local SES closing');
    // Events already published are delivered (or given up on) before the process ends.
    (publisher?.drain() ?? Promise.resolve())
      .then(() => ses.close())
      .then(
        () => logger.info('local SES closed'),
        (error: unknown) => {
          logger.error({ err: error }, 'local SES failed to close');
          process.exitCode = 1;
        },
      );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  return ses;
}

if (import.meta.main) {
  const logger = pino({ name: 'local-ses' });
  runLocalSes(process.env, logger).catch((error: unknown) => {
    logger.fatal({ err: error }, 'local SES failed to start');
    process.exitCode = 1;
  });
}
