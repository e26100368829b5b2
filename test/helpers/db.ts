// A fresh database per test file, cloned from the migrated template that test/run.ts built.
import test from 'ava';
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

/**
 * This test file's database, created before its tests and dropped after them. Call it at the top
 * of the file: its before hook is serial, so the file's own before hooks (ava runs the others
 * concurrently) start once the database exists. Its fields can be read from then on.
 */
export function databaseForFile(): TestDatabase {
  let db: TestDatabase | undefined;
  test.serial.before(async () => {
    db = await createTestDatabase();
  });
  test.after.always(async () => {
    await db?.drop();
  });
  const created = (): TestDatabase => {
    if (!db) throw new Error('the file database exists from its test.before hook on');
    return db;
  };
  return {
    get name() {
      return created().name;
    },
    get url() {
      return created().url;
    },
    get pool() {
      return created().pool;
    },
    drop: () => created().drop(),
  };
}
