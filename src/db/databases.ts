// Databases of their own, made and dropped on a server: one per test file (a clone of a migrated
// template, test/helpers/db.ts), the template itself (test/helpers/template.ts), one per benchmark
// (bench/lib.ts), the fault tests' databases on their own server (test/faults/own-postgres.ts) and
// the demo's. Not used by the running system, which migrates the database it is given.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../logger.ts';
import { applyCurrentMigration, migrateDatabase } from './migrate.ts';

export interface OwnDatabase {
  name: string;
  url: string;
  /** Up to 10 connections; their errors are ignored (a test may stop the server under them). */
  pool: pg.Pool;
  /** Ends the pool and drops the database, closing whatever else is still connected to it. */
  drop(): Promise<void>;
}

/** `serverUrl` pointing at `database` instead. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

// create and drop database cannot run inside a transaction block: a connection of their own.
async function onServer(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

// Database names are identifiers: quoted, never pasted in as they come.
const ident = (name: string) => pg.escapeIdentifier(name);

export function dropDatabase(serverUrl: string, name: string): Promise<void> {
  return onServer(serverUrl, `drop database if exists ${ident(name)} with (force)`);
}

/** An empty database called `name` (any earlier one of that name is dropped); returns its URL. */
export async function recreateDatabase(serverUrl: string, name: string): Promise<string> {
  await dropDatabase(serverUrl, name);
  await onServer(serverUrl, `create database ${ident(name)}`);
  return databaseUrl(serverUrl, name);
}

/**
 * The committed migrations, then the uncommitted migrations/current/: tests and benchmarks run
 * the work in progress.
 */
export async function migrateWithCurrent(url: string, logger: Logger): Promise<void> {
  await migrateDatabase(url, logger);
  await applyCurrentMigration(url, logger);
}

/**
 * A new database named `<prefix>_<random>`: a clone of `template` (fast), or migrated itself
 * (`migrate`, with committed and current migrations), or else empty.
 */
export async function createDatabase(
  serverUrl: string,
  options: { prefix: string; template?: string; migrate?: Logger },
): Promise<OwnDatabase> {
  const name = `${options.prefix}_${randomBytes(5).toString('hex')}`;
  const template = options.template ? ` template ${ident(options.template)}` : '';
  await onServer(serverUrl, `create database ${ident(name)}${template}`);
  const url = databaseUrl(serverUrl, name);
  if (options.migrate) await migrateWithCurrent(url, options.migrate);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('error', () => undefined);
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end();
      await dropDatabase(serverUrl, name);
    },
  };
}
