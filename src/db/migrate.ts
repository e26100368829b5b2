// `mailer migrate`: installs graphile-worker's schema (our SQL calls its functions), then applies
// the committed graphile-migrate migrations. Both steps are no-ops when already up to date.
import { join, resolve } from 'node:path';
import { Logger as MigrateLogger, migrate } from 'graphile-migrate';
import { runMigrations } from 'graphile-worker';
import type { Logger } from '../logger.ts';
import { graphileLogFactory, graphileLoggerFrom } from '../logger.ts';

const migrationsFolder = join(resolve(import.meta.dirname, '..', '..'), 'migrations');

export async function migrateDatabase(connectionString: string, logger: Logger): Promise<void> {
  await runMigrations({ connectionString, logger: graphileLoggerFrom(logger) });
  const log = logger.child({ component: 'graphile-migrate' });
  await migrate({
    connectionString,
    migrationsFolder,
    pgSettings: { search_path: 'public' },
    logger: new MigrateLogger(graphileLogFactory(log)),
  });
}
