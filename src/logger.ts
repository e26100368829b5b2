// One pino root logger. JSON by default (what log shippers want); pretty on a terminal. Logs go
// to stderr, so a command's own output on stdout (tables, --json) stays clean for scripts.
// Credentials never reach the logs: the redact paths cover every place the AWS SDK or our own
// config could surface them, and database URLs are logged without their password.
import { Logger as GraphileLogger } from 'graphile-worker';
import { type Logger, pino } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level: string;
  /** Human-readable lines instead of JSON. Default: stderr (where logs go) is a terminal. */
  pretty?: boolean;
  /** Colours in pretty lines. Default: on, unless NO_COLOR is set (https://no-color.org). */
  color?: boolean;
  name?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty ?? (process.stderr.isTTY === true && !process.env.CI);
  const color = options.color ?? !process.env.NO_COLOR;
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
        transport: { target: 'pino-pretty', options: { colorize: color, destination: 2 } },
      })
    : pino(pinoOptions, pino.destination({ fd: 2, sync: true }));
}

// graphile-worker and graphile-migrate log through @graphile/logger; route both into pino with
// their scope (worker id, task, job id) as structured fields.
// Structural type: the two packages depend on different @graphile/logger versions.
type LogFunction = (level: string, message: string, meta?: Record<string, unknown>) => void;

export function graphileLogFactory(
  logger: Logger,
  component = 'graphile',
): (scope: object) => LogFunction {
  return (scope) => {
    // graphile-worker makes a scoped logger for every job; most never log a line, so the pino
    // child (its bindings serialised and redacted) is made on the first line, not per job.
    // pino writes a field given twice (bound, then on the line) twice: a JSON line with a
    // duplicate key, which log shippers read differently. So a key is written once: the parent's
    // binding wins over the scope's, the scope's over the line's.
    let scoped: { log: Logger; bound: Set<string> } | undefined;
    const childLogger = () => {
      if (!scoped) {
        const inherited = new Set(Object.keys(logger.bindings()));
        const own = withoutKeys({ component, ...scope }, inherited);
        scoped = { log: logger.child(own), bound: new Set([...inherited, ...Object.keys(own)]) };
      }
      return scoped;
    };
    return (level, message, meta) => {
      // Written for workers without a local queue, where each running job fetches its own next
      // one; mailer's pool is capped on purpose (workerPoolSize in src/worker/runner.ts).
      if (level === 'warning' && message.startsWith('WARNING: having maxPoolSize')) {
        level = 'debug';
      }
      // graphile-worker's own line for each job ("Completed task 42 (send_recipient, 3.1ms) with
      // success") is the only info line that carries the job row: a campaign of N recipients
      // would log N of them. Per-job lines are debug; campaign-level lines stay info.
      if (level === 'info' && meta !== undefined && 'job' in meta) level = 'debug';
      const { log, bound } = childLogger();
      const detailed = log.isLevelEnabled('debug');
      const fields = withoutKeys(compactMeta(meta, detailed), bound);
      // "Failed task ... with error 'x':" is followed by the stack; below debug the line ends
      // at the message (the error field keeps the error's message and code).
      const text = detailed ? message : (message.split('\n', 1)[0] ?? message).replace(/:$/, '');
      if (level === 'error') log.error(fields, text);
      else if (level === 'warning') log.warn(fields, text);
      else if (level === 'info') log.info(fields, text);
      else log.debug(fields, text);
    };
  };
}

function withoutKeys(fields: object, keys: Set<string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([key]) => !keys.has(key)));
}

// graphile-worker attaches whole job rows to its log lines; keep what identifies the job.
function compactMeta(
  meta: Record<string, unknown> | undefined,
  withStack: boolean,
): Record<string, unknown> {
  if (!meta) return {};
  const { job, error, ...rest } = meta as { job?: Record<string, unknown>; error?: unknown };
  return {
    ...rest,
    ...(job ? { jobId: job.id, task: job.task_identifier, attempts: job.attempts } : {}),
    ...(error === undefined ? {} : withStack ? { err: error } : { error: errorLine(error) }),
  };
}

/** An error in one line, without its stack: what a log line below debug shows of it. */
export function errorLine(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const text = error.message.split('\n', 1)[0] || error.name;
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
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
