import { dropDatabase, migrateWithCurrent, recreateDatabase } from '../../src/db/databases.ts';
import type { Logger } from '../../src/logger.ts';

// Builds the migrated template database that every test file of this run clones. Its name is
// unique per run, so two `npm test` runs on one server never drop each other's template.
export async function buildTemplateDatabase(adminUrl: string, logger: Logger): Promise<string> {
  const name = `mailer_test_template_${process.pid}`;
  await migrateWithCurrent(await recreateDatabase(adminUrl, name), logger);
  return name;
}

export function dropTemplateDatabase(adminUrl: string, name: string): Promise<void> {
  return dropDatabase(adminUrl, name);
}
