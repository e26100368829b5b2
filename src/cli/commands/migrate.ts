import type { Command } from 'commander';
import { stopEmbeddedPostgres } from '../../db/embedded.ts';
import { migrateDatabase } from '../../db/migrate.ts';
import { redactUrl } from '../../logger.ts';
import { createContext } from '../context.ts';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('Install the graphile_worker schema and apply committed migrations (idempotent)')
    .action(async () => {
      const ctx = createContext();
      const url = await ctx.databaseUrl();
      await migrateDatabase(url, ctx.logger);
      ctx.logger.info({ database: redactUrl(url) }, 'database is up to date');
    });

  const embedded = program
    .command('embedded')
    .description('Manage the embedded PostgreSQL used when DATABASE_URL is unset');
  embedded
    .command('start')
    .description('Start it (or reuse the running one) and print its URL')
    .action(async () => {
      const ctx = createContext();
      process.stdout.write(`${await ctx.databaseUrl()}\n`);
    });
  embedded
    .command('stop')
    .description('Stop it (data is kept under .data/)')
    .action(async () => {
      const ctx = createContext();
      const stopped = await stopEmbeddedPostgres(ctx.config.embeddedPg.dir);
      process.stdout.write(stopped ? 'stopped\n' : 'not running\n');
    });
}
