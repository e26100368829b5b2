// The one place that reads process.env. Every setting is validated by zod; a bad value stops the
// process with a message naming the variable. The result is frozen and passed in, never imported.
import { z } from 'zod';

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const csv = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );

const boolish = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .optional()
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const envSchema = z.object({
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  // Unset: 54329, or a free port when another program holds that one (src/db/embedded.ts).
  EMBEDDED_PG_PORT: optionalString.pipe(
    z.coerce.number<string | undefined>().int().min(1).max(65535).optional(),
  ),
  EMBEDDED_PG_DIR: optionalString,
  // `local`: the local SES endpoint started in this process (demo, tests, trying it out). A URL:
  // that endpoint, with credentials from the AWS chain (a loopback URL is taken to be a local SES).
  SES_ENDPOINT: optionalString.pipe(z.union([z.literal('local'), z.url()]).optional()),
  // Read by the AWS SDK itself (region chain, service endpoints); here only to tell whether the
  // endpoint is local and to name them in messages.
  AWS_REGION: optionalString,
  AWS_ENDPOINT_URL_SESV2: optionalString.pipe(z.url().optional()),
  AWS_ENDPOINT_URL: optionalString.pipe(z.url().optional()),
  MAIL_FROM: z.string().trim().min(3).default('Mailer <mailer@example.com>'),
  SES_CONFIGURATION_SET: optionalString,
  // Sends per second across all workers. Unset: ask SES GetAccount. 0: no pacing at all.
  SES_MAX_SEND_RATE: optionalString.pipe(z.coerce.number<string | undefined>().min(0).optional()),
  SES_TIMEOUT_MS: positiveInt(15_000),
  // A claimed recipient with no recorded outcome after this long is declared in doubt.
  SEND_CLAIM_LEASE_SECONDS: positiveInt(120),
  // A campaign whose last 100 sends (in one worker process) were refused by SES above this
  // fraction is paused; see src/worker/failure-guard.ts.
  SEND_FAILURE_MAX_RATE: z.coerce.number().gt(0).max(1).default(0.1),
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:3000'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  // `mailer serve`: longest wait for a database connection, and statement_timeout of its queries.
  // A request that cannot be answered by then gets 503 (SNS retries) instead of hanging.
  HTTP_DB_TIMEOUT_MS: positiveInt(10_000),
  SNS_TOPIC_ARNS: csv,
  SNS_TRUST_LOCAL_CERT: boolish,
  UNSUBSCRIBE_TOKEN_TTL_DAYS: positiveInt(90),
  // Unset: 64, or what the paced rate needs (sendConcurrency in src/worker/pacing.ts).
  WORKER_CONCURRENCY: optionalString.pipe(
    z.coerce.number<string | undefined>().int().positive().optional(),
  ),
  // Prometheus /metrics, on a listener of its own bound to METRICS_HOST, never on the public one
  // (PORT) with the webhook and the unsubscribe pages: `serve` and `start` on METRICS_PORT,
  // `worker` on WORKER_METRICS_PORT (its own counters). Unset: no metrics listener.
  METRICS_PORT: optionalString.pipe(
    z.coerce.number<string | undefined>().int().min(0).max(65535).optional(),
  ),
  WORKER_METRICS_PORT: optionalString.pipe(
    z.coerce.number<string | undefined>().int().min(0).max(65535).optional(),
  ),
  METRICS_HOST: z.string().trim().min(1).default('127.0.0.1'),
  // Unset: 100, or the concurrency when larger (graphile-worker warns when it is smaller).
  WORKER_LOCAL_QUEUE_SIZE: z.coerce.number().int().min(0).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // How old a signed SNS message may be; SNS keeps its original Timestamp on every retry.
  SNS_MAX_AGE_SECONDS: positiveInt(3600),
  // Reputation guard: a campaign is paused when its permanent-bounce or complaint rate (fractions of
  // its sent recipients) goes above these, once it has sent to REPUTATION_MIN_SENT recipients.
  // Defaults sit below the 5% / 0.1% at which SES puts an account under review.
  REPUTATION_MAX_BOUNCE_RATE: z.coerce.number().gt(0).max(1).default(0.04),
  REPUTATION_MAX_COMPLAINT_RATE: z.coerce.number().gt(0).max(1).default(0.0008),
  REPUTATION_MIN_SENT: positiveInt(100),
  // Retention of email_events_op: rows older than this many days are exported (gzip NDJSON that
  // Redshift COPY loads), verified, then deleted. Files go to EVENTS_EXPORT_DIR (default
  // .data/exports) and, with EVENTS_EXPORT_S3_BUCKET set, are uploaded there instead of kept.
  EVENTS_RETENTION_DAYS: positiveInt(30),
  EVENTS_EXPORT_DIR: optionalString,
  EVENTS_EXPORT_S3_BUCKET: optionalString,
  EVENTS_EXPORT_S3_PREFIX: z.string().trim().default('email_events_op/'),
  // An S3-compatible endpoint (MinIO, a local test server); unset: AWS S3 in AWS_REGION.
  EVENTS_EXPORT_S3_ENDPOINT: optionalString.pipe(z.url().optional()),
  EVENTS_EXPORT_BATCH_ROWS: positiveInt(50_000),
  // Expired unsubscribe tokens that no email carried (recipient suppressed at generation, or
  // gone) are deleted this many days after expiry; tokens of mail that went out are kept.
  UNSUBSCRIBE_TOKEN_PURGE_AFTER_DAYS: positiveInt(30),
  // In-doubt recipients with no SES evidence after this many hours are reported for an operator.
  IN_DOUBT_ALERT_AFTER_HOURS: positiveInt(6),
  // Opt-in: an in-doubt recipient with no SES Send event this many minutes after its attempt is
  // queued again, once, when the configuration set publishes Send events. Decimals allowed.
  IN_DOUBT_RESEND_AFTER_MINUTES: optionalString.pipe(
    z.coerce.number<string | undefined>().positive().optional(),
  ),
  // `mailer campaign test` sends to these when no --to is given: the team's own inboxes.
  TEST_RECIPIENTS: csv.pipe(z.array(z.email({ error: 'each address must be an email address' }))),
  // The browser console (src/console/), on a listener of its own; unset: no console.
  CONSOLE_PORT: optionalString.pipe(
    z.coerce.number<string | undefined>().int().min(0).max(65535).optional(),
  ),
  CONSOLE_HOST: z.string().trim().min(1).default('127.0.0.1'),
  // A single-sign-on proxy in front of the console names the user in this header, and proves it
  // is the proxy by sending CONSOLE_PROXY_SECRET in X-Mailer-Proxy-Secret. Both or neither.
  CONSOLE_TRUSTED_USER_HEADER: optionalString.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, 'an HTTP header name')
      .transform((v) => v.toLowerCase())
      .optional(),
  ),
  CONSOLE_PROXY_SECRET: optionalString.pipe(
    z.string().min(32, 'at least 32 characters (a random secret)').optional(),
  ),
  // Queueing a campaign from the console needs a second person's approval.
  CONSOLE_QUEUE_APPROVAL: boolish,
});

// Every variable arrives as a string (or not at all), whatever zod coerces it to.
export type Env = Partial<Record<keyof z.input<typeof envSchema>, string>>;

export interface Config {
  readonly databaseUrl: string | undefined;
  readonly embeddedPg: { readonly port: number | undefined; readonly dir: string | undefined };
  readonly ses: {
    /** SES_ENDPOINT as given: 'local', a URL, or unset (the SDK's own endpoint chain). */
    readonly endpoint: string | undefined;
    /** AWS_ENDPOINT_URL_SESV2, else AWS_ENDPOINT_URL: the SDK uses it when SES_ENDPOINT is unset. */
    readonly sdkEndpoint: string | undefined;
    /** AWS_REGION; unset: the SDK's chain (profile). */
    readonly region: string | undefined;
    readonly from: string;
    readonly configurationSet: string | undefined;
    readonly maxSendRate: number | undefined;
    readonly timeoutMs: number;
  };
  readonly sendClaimLeaseSeconds: number;
  readonly sendFailureMaxRate: number;
  readonly publicUrl: string;
  readonly port: number;
  readonly sns: { readonly topicArns: readonly string[]; readonly trustLocalCert: boolean };
  readonly unsubscribeTokenTtlDays: number;
  readonly worker: {
    /** Send jobs at once per process; undefined: sized from the rate (src/worker/runner.ts). */
    readonly concurrency: number | undefined;
    readonly localQueueSize: number | undefined;
    readonly metricsPort: number | undefined;
  };
  /** The /metrics listener of `serve` and `start` (port unset: none); `worker` uses the host too. */
  readonly metrics: { readonly port: number | undefined; readonly host: string };
  readonly httpDbTimeoutMs: number;
  readonly logLevel: string;
  readonly snsMaxAgeSeconds: number;
  readonly reputation: {
    readonly maxBounceRate: number;
    readonly maxComplaintRate: number;
    readonly minSent: number;
  };
  readonly retention: {
    readonly eventsDays: number;
    readonly exportDir: string | undefined;
    readonly s3Bucket: string | undefined;
    readonly s3Prefix: string;
    readonly s3Endpoint: string | undefined;
    readonly batchRows: number;
  };
  readonly unsubscribeTokenPurgeAfterDays: number;
  readonly inDoubtAlertAfterHours: number;
  /** Unset: in-doubt recipients are never resent without an operator. */
  readonly inDoubtResendAfterMinutes: number | undefined;
  /** Where `mailer campaign test` sends without --to. */
  readonly testRecipients: readonly string[];
  /** The browser console (port unset: off). */
  readonly console: {
    readonly port: number | undefined;
    readonly host: string;
    /** Lowercase header name a trusted single-sign-on proxy names the user in. */
    readonly trustedUserHeader: string | undefined;
    readonly proxySecret: string | undefined;
    readonly queueApproval: boolean;
  };
}

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if ((e.CONSOLE_TRUSTED_USER_HEADER === undefined) !== (e.CONSOLE_PROXY_SECRET === undefined)) {
    throw new ConfigError(
      'invalid configuration:\n  CONSOLE_TRUSTED_USER_HEADER and CONSOLE_PROXY_SECRET are set ' +
        'together (a user header is trusted only from a proxy that proves itself with the secret)',
    );
  }
  return deepFreeze({
    databaseUrl: e.DATABASE_URL,
    embeddedPg: { port: e.EMBEDDED_PG_PORT, dir: e.EMBEDDED_PG_DIR },
    ses: {
      endpoint: e.SES_ENDPOINT,
      sdkEndpoint: e.AWS_ENDPOINT_URL_SESV2 ?? e.AWS_ENDPOINT_URL,
      region: e.AWS_REGION,
      from: e.MAIL_FROM,
      configurationSet: e.SES_CONFIGURATION_SET,
      maxSendRate: e.SES_MAX_SEND_RATE,
      timeoutMs: e.SES_TIMEOUT_MS,
    },
    sendClaimLeaseSeconds: e.SEND_CLAIM_LEASE_SECONDS,
    sendFailureMaxRate: e.SEND_FAILURE_MAX_RATE,
    publicUrl: e.PUBLIC_URL.replace(/\/+$/, ''),
    port: e.PORT,
    httpDbTimeoutMs: e.HTTP_DB_TIMEOUT_MS,
    sns: { topicArns: e.SNS_TOPIC_ARNS, trustLocalCert: e.SNS_TRUST_LOCAL_CERT },
    unsubscribeTokenTtlDays: e.UNSUBSCRIBE_TOKEN_TTL_DAYS,
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      localQueueSize: e.WORKER_LOCAL_QUEUE_SIZE,
      metricsPort: e.WORKER_METRICS_PORT,
    },
    metrics: { port: e.METRICS_PORT, host: e.METRICS_HOST },
    logLevel: e.LOG_LEVEL,
    snsMaxAgeSeconds: e.SNS_MAX_AGE_SECONDS,
    reputation: {
      maxBounceRate: e.REPUTATION_MAX_BOUNCE_RATE,
      maxComplaintRate: e.REPUTATION_MAX_COMPLAINT_RATE,
      minSent: e.REPUTATION_MIN_SENT,
    },
    retention: {
      eventsDays: e.EVENTS_RETENTION_DAYS,
      exportDir: e.EVENTS_EXPORT_DIR,
      s3Bucket: e.EVENTS_EXPORT_S3_BUCKET,
      s3Prefix: e.EVENTS_EXPORT_S3_PREFIX,
      s3Endpoint: e.EVENTS_EXPORT_S3_ENDPOINT,
      batchRows: e.EVENTS_EXPORT_BATCH_ROWS,
    },
    unsubscribeTokenPurgeAfterDays: e.UNSUBSCRIBE_TOKEN_PURGE_AFTER_DAYS,
    inDoubtAlertAfterHours: e.IN_DOUBT_ALERT_AFTER_HOURS,
    inDoubtResendAfterMinutes: e.IN_DOUBT_RESEND_AFTER_MINUTES,
    testRecipients: e.TEST_RECIPIENTS,
    console: {
      port: e.CONSOLE_PORT,
      host: e.CONSOLE_HOST,
      trustedUserHeader: e.CONSOLE_TRUSTED_USER_HEADER,
      proxySecret: e.CONSOLE_PROXY_SECRET,
      queueApproval: e.CONSOLE_QUEUE_APPROVAL,
    },
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
