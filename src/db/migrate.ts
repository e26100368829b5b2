// `mailer migrate`: installs graphile-worker's schema (our SQL calls its functions), then applies
// the committed graphile-migrate migrations. Both steps are no-ops when already up to date.
import { join, resolve } from 'node:path';
import { Logger as MigrateLogger, migrate, type Settings, watch } from 'graphile-migrate';
import { runMigrations } from 'graphile-worker';
import type { Logger } from '../logger.ts';
import { graphileLogFactory, graphileLoggerFrom } from '../logger.ts';
import { checkDatabaseReachable } from './pool.ts';

const migrationsFolder = join(resolve(import.meta.dirname, '..', '..'), 'migrations');

function settings(connectionString: string, logger: Logger): Settings {
  return {
    connectionString,
    migrationsFolder,
    pgSettings: { search_path: 'public' },
    logger: new MigrateLogger(graphileLogFactory(logger, 'graphile-migrate')),
  };
}

export async function migrateDatabase(connectionString: string, logger: Logger): Promise<void> {
  // graphile-worker and graphile-migrate connect with pools of their own, whose errors do not
  // say where they tried: a server that is not there fails here, named.
  await checkDatabaseReachable(connectionString);
  await runMigrations({ connectionString, logger: graphileLoggerFrom(logger) });
  await migrate(settings(connectionString, logger));
}

// Development only: also apply the uncommitted migrations/current/ files (what
// `graphile-migrate watch --once` does). The test suite uses this so work in progress is tested;
// .ci/run refuses a main branch whose current/ still holds SQL, so production never depends on it.
export async function applyCurrentMigration(
  connectionString: string,
  logger: Logger,
): Promise<void> {
  await watch(settings(connectionString, logger), true);
}
