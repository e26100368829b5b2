import pg from 'pg';
import { applyCurrentMigration, migrateDatabase } from '../../src/db/migrate.ts';
import type { Logger } from '../../src/logger.ts';

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

// Drops and rebuilds the migrated template database that every test file clones.
export async function buildTemplateDatabase(adminUrl: string, logger: Logger): Promise<string> {
  const name = 'mailer_test_template';
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  await migrateDatabase(withDatabase(adminUrl, name), logger);
  await applyCurrentMigration(withDatabase(adminUrl, name), logger);
  return name;
}
