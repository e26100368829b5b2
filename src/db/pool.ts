import pg from 'pg';
import type { Config } from '../config.ts';
import { errorLine, type Logger } from '../logger.ts';
import { ensureEmbeddedPostgres } from './embedded.ts';

/** What a query function runs on: the pool, or one client inside a transaction. */
export type Db = pg.Pool | pg.PoolClient;

// DATABASE_URL when set; otherwise the embedded default server, started on demand.
export async function resolveDatabaseUrl(config: Config, logger: Logger): Promise<string> {
  if (config.databaseUrl) return config.databaseUrl;
  logger.info('DATABASE_URL is unset: using the embedded PostgreSQL under .data/');
  return ensureEmbeddedPostgres({
    port: config.embeddedPg.port,
    movablePort: config.embeddedPg.port === undefined,
    dir: config.embeddedPg.dir,
    logger,
  });
}

const CONNECTION_TIMEOUT_MS = 10_000;

// A connection that never opened (refused, unknown host, no answer, a port that is not
// PostgreSQL's) is the operator's to fix, and the line that reports it must say where we tried:
// pg's own errors do not (a timeout says nothing; "localhost" refused on ::1 and 127.0.0.1 is an
// AggregateError without a message). The error is marked, not replaced, so code checks stay.
export const DATABASE_TARGET = Symbol('mailer.databaseTarget');

/** pg.Client that marks a failed connect with the host:port it tried. */
export class DatabaseClient extends pg.Client {
  override connect(): Promise<pg.Client>;
  override connect(callback: (err: Error) => void): void;
  override connect(callback?: (err: Error) => void): Promise<pg.Client> | undefined {
    const target = `${this.host}:${this.port}`;
    const mark = (error: Error) => {
      if (error instanceof Error && !(error instanceof pg.DatabaseError)) {
        Object.assign(error, { [DATABASE_TARGET]: target });
      }
      return error;
    };
    if (callback) {
      super.connect((error: Error) => callback(error && mark(error)));
      return undefined;
    }
    return super.connect().catch((error: Error) => {
      throw mark(error);
    });
  }
}

function failedDatabaseTarget(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    const target = (e as { [DATABASE_TARGET]?: string })[DATABASE_TARGET];
    if (target) return target;
  }
  return undefined;
}

/** "cannot connect to the database at host:port: why", for a connection that never opened. */
export function describeConnectFailure(error: unknown): string | undefined {
  const target = failedDatabaseTarget(error);
  if (target === undefined || !(error instanceof Error)) return undefined;
  return `cannot connect to the database at ${target}: ${connectFailure(error)}`;
}

const CONNECT_FAILURES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is PostgreSQL running there, on that port?)',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'the host name could not be looked up',
  EHOSTUNREACH: 'no route to the host',
  ENETUNREACH: 'no route to the network',
  ECONNRESET: 'the connection was closed (is that port PostgreSQL?)',
};

// What went wrong, in words: a timeout, else the network error's code (an AggregateError, one
// error per address tried, has no message of its own).
function connectFailure(error: Error): string {
  const seen: Error[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    seen.push(e, ...(e instanceof AggregateError ? e.errors : []));
  }
  if (seen.some((e) => /timeout|timed out/i.test(e.message))) {
    return 'no answer before the connection timeout (a firewall, or the wrong host?)';
  }
  for (const e of seen) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return `${CONNECT_FAILURES[code] ?? e.message} (${code})`;
  }
  return seen.find((e) => e.message)?.message ?? 'the connection failed';
}

/** Connects once (and disconnects): a missing server fails here with its host:port named. */
export async function checkDatabaseReachable(connectionString: string): Promise<void> {
  const client = new DatabaseClient({
    connectionString,
    connectionTimeoutMillis: CONNECTION_TIMEOUT_MS,
  });
  client.on('error', () => undefined);
  await client.connect();
  await client.end();
}

export function createPool(
  connectionString: string,
  logger: Logger,
  options: {
    max?: number;
    applicationName?: string;
    statementTimeoutMs?: number;
    /** Never close an idle connection (pg's default closes one after 10 s idle). */
    keepIdle?: boolean;
  } = {},
): pg.Pool {
  const pool = new pg.Pool({
    Client: DatabaseClient,
    connectionString,
    max: options.max ?? 10,
    ...(options.keepIdle ? { idleTimeoutMillis: 0 } : {}),
    application_name: options.applicationName ?? 'mailer',
    // A server that does not answer (a network partition rather than a refused connection) fails
    // the caller after this instead of leaving it waiting for the OS's TCP timeout.
    connectionTimeoutMillis: options.statementTimeoutMs ?? CONNECTION_TIMEOUT_MS,
    ...(options.statementTimeoutMs === undefined
      ? {}
      : { statement_timeout: options.statementTimeoutMs }),
  });
  // An idle client losing its connection (e.g. a database restart) must not crash the process;
  // the pool replaces it on next use.
  // One line each (the stack at debug): a database restart loses every pooled connection.
  const fields = (error: Error) =>
    logger.isLevelEnabled('debug') ? { err: error } : { error: errorLine(error) };
  pool.on('error', (error) => logger.warn(fields(error), 'database connection lost'));
  pool.on('connect', (client) => {
    client.on('error', (error) => logger.warn(fields(error), 'database client error'));
  });
  return pool;
}
