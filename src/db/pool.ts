import pg from 'pg';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { ensureEmbeddedPostgres } from './embedded.ts';

/** What a query function runs on: the pool, or one client inside a transaction. */
export type Db = pg.Pool | pg.PoolClient;

// DATABASE_URL when set; otherwise the embedded default server, started on demand.
export async function resolveDatabaseUrl(config: Config, logger: Logger): Promise<string> {
  if (config.databaseUrl) return config.databaseUrl;
  logger.info('DATABASE_URL is unset: using the embedded PostgreSQL under .data/');
  return ensureEmbeddedPostgres({
    port: config.embeddedPg.port,
    dir: config.embeddedPg.dir,
    logger,
  });
}

const CONNECTION_TIMEOUT_MS = 10_000;

export function createPool(
  connectionString: string,
  logger: Logger,
  options: { max?: number; applicationName?: string; statementTimeoutMs?: number } = {},
): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
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
  pool.on('error', (error) => logger.warn({ err: error }, 'database connection lost'));
  pool.on('connect', (client) => {
    client.on('error', (error) => logger.warn({ err: error }, 'database client error'));
  });
  return pool;
}
