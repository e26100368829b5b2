import pg from 'pg';
import { applyCurrentMigration, migrateDatabase } from '../../src/db/migrate.ts';
import type { Logger } from '../../src/logger.ts';

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

// Builds the migrated template database that every test file of this run clones. Its name is
// unique per run, so two `npm test` runs on one server never drop each other's template.
export async function buildTemplateDatabase(adminUrl: string, logger: Logger): Promise<string> {
  const name = `mailer_test_template_${process.pid}`;
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

export async function dropTemplateDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
}
