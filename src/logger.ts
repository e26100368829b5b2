// One pino root logger. JSON by default (what log shippers want); pretty on a terminal. Logs go
// to stderr, so a command's own output on stdout (tables, --json) stays clean for scripts.
// Credentials never reach the logs: the redact paths cover every place the AWS SDK or our own
// config could surface them, and database URLs are logged without their password.
import { Logger as GraphileLogger } from 'graphile-worker';
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(options: { level: string; pretty?: boolean; name?: string }): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY === true && process.env.CI === undefined);
  const pinoOptions = {
    name: options.name ?? 'mailer',
    level: options.level,
    redact: {
      paths: [
        '*.accessKeyId',
        '*.secretAccessKey',
        '*.sessionToken',
        '*.password',
        'credentials',
        '*.credentials',
        'headers.authorization',
        '*.headers.authorization',
      ],
      censor: '[redacted]',
    },
  };
  return pretty
    ? pino({
        ...pinoOptions,
        transport: { target: 'pino-pretty', options: { colorize: true, destination: 2 } },
      })
    : pino(pinoOptions, pino.destination({ fd: 2, sync: true }));
}

// graphile-worker and graphile-migrate log through @graphile/logger; route both into pino with
// their scope (worker id, task, job id) as structured fields.
// Structural type: the two packages depend on different @graphile/logger versions.
type LogFunction = (level: string, message: string, meta?: Record<string, unknown>) => void;

export function graphileLogFactory(logger: Logger): (scope: object) => LogFunction {
  return (scope) => {
    // graphile-worker makes a scoped logger for every job; most never log a line, so the pino
    // child (its bindings serialised and redacted) is made on the first line, not per job.
    let scoped: Logger | undefined;
    const childLogger = () => {
      scoped ??= logger.child({ component: 'graphile', ...scope });
      return scoped;
    };
    return (level, message, meta) => {
      // Written for workers without a local queue, where each running job fetches its own next
      // one; mailer's pool is capped on purpose (workerPoolSize in src/worker/runner.ts).
      if (level === 'warning' && message.startsWith('WARNING: having maxPoolSize')) {
        level = 'debug';
      }
      const child = childLogger();
      const fields = compactMeta(meta);
      if (level === 'error') child.error(fields, message);
      else if (level === 'warning') child.warn(fields, message);
      else if (level === 'info') child.info(fields, message);
      else child.debug(fields, message);
    };
  };
}

// graphile-worker attaches whole job rows to its log lines; keep what identifies the job.
function compactMeta(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!meta) return {};
  const { job, error, ...rest } = meta as { job?: Record<string, unknown>; error?: unknown };
  return {
    ...rest,
    ...(job ? { jobId: job.id, task: job.task_identifier, attempts: job.attempts } : {}),
    ...(error !== undefined ? { err: error } : {}),
  };
}

export function graphileLoggerFrom(logger: Logger): GraphileLogger {
  return new GraphileLogger(graphileLogFactory(logger));
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}

// Logs show an address's first character and its domain only (a***@example.com): enough to
// recognise a provider-wide problem, not enough to identify a person. Applied to text that can
// carry addresses we do not control, such as SES error messages and rejected payloads.
export function maskEmails(text: string): string {
  return text.replace(
    /([^\s@<>"'(),;:]+)@([^\s@<>"'(),;:]+)/g,
    (_, local: string, domain: string) => `${local.slice(0, 1)}***@${domain}`,
  );
}
