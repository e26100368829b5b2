// A fresh database per test file, cloned from the migrated template that test/run.ts built.
import { createDatabase, type OwnDatabase } from '../../src/db/databases.ts';

export type TestDatabase = OwnDatabase;

function adminUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('tests run through `npm test`, which sets DATABASE_URL');
  return url;
}

export function createTestDatabase(): Promise<TestDatabase> {
  const template = process.env.MAILER_TEST_TEMPLATE_DB;
  if (!template)
    throw new Error('tests run through `npm test`, which builds the template database');
  return createDatabase(adminUrl(), { prefix: 'mailer_test', template });
}

// An empty database (nothing migrated), for testing `mailer migrate` itself.
export function createEmptyDatabase(): Promise<TestDatabase> {
  return createDatabase(adminUrl(), { prefix: 'mailer_empty' });
}
