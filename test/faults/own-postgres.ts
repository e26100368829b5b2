// A PostgreSQL server of the test's own (embedded binaries, a temporary data directory, a free
// port), so a test can stop, crash and restart it without touching the servers other tests and
// other people use. Databases made with createDatabase() are clones of one migrated template.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, migrateWithCurrent, recreateDatabase } from '../../src/db/databases.ts';
import { ensureEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/db/embedded.ts';
import { freePort } from '../../src/free-port.ts';
import { createLogger } from '../../src/logger.ts';
import type { TestDatabase } from '../helpers/db.ts';

const logger = createLogger({ level: 'silent', pretty: false });
const TEMPLATE = 'faults_template';

/** fast: pg_ctl stop -m fast; immediate: SIGQUIT (no checkpoint); kill: SIGKILL the postmaster. */
export type StopMode = 'fast' | 'immediate' | 'kill';

export interface OwnPostgres {
  port: number;
  createDatabase(): Promise<TestDatabase>;
  stop(mode: StopMode): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const root = await mkdtemp(join(tmpdir(), 'mailer-faults-pg-'));
  const dir = join(root, 'pg');
  const port = await freePort();
  const start = () => ensureEmbeddedPostgres({ port, dir, database: 'postgres' });
  const adminUrl = await start();
  await migrateWithCurrent(await recreateDatabase(adminUrl, TEMPLATE), logger);
  // graphile-migrate keeps its pool for 200 ms after use and exits the process if that pool sees
  // the server go away; let it close before anyone stops the server.
  await new Promise((resolve) => setTimeout(resolve, 500));

  const postmasterPid = async () =>
    Number((await readFile(join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);

  return {
    port,
    async createDatabase() {
      // Connections die when the test stops the server; the pool replaces them.
      const db = await createDatabase(adminUrl, { prefix: 'faults', template: TEMPLATE });
      // The test may have left the server stopped: nothing left to drop then.
      return { ...db, drop: () => db.drop().catch(() => undefined) };
    },
    async stop(mode) {
      if (mode === 'fast') {
        await stopEmbeddedPostgres(dir);
        return;
      }
      const pid = await postmasterPid();
      process.kill(pid, mode === 'kill' ? 'SIGKILL' : 'SIGQUIT');
      // Until the port is free, nothing can be started on it.
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async start() {
      await start();
    },
    async destroy() {
      await stopEmbeddedPostgres(dir).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
}
