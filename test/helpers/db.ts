// A fresh database per test file, cloned from the migrated template that test/run.ts built.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { withDatabase } from './template.ts';

export interface TestDatabase {
  name: string;
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('tests run through `npm test`, which sets DATABASE_URL');
  return url;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function newDatabase(prefix: string, template: string | undefined): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await admin(`create database ${name}${template ? ` template ${template}` : ''}`);
  const url = withDatabase(adminUrl(), name);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('error', () => undefined);
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end();
      await admin(`drop database if exists ${name} with (force)`);
    },
  };
}

export function createTestDatabase(): Promise<TestDatabase> {
  const template = process.env.MAILER_TEST_TEMPLATE_DB;
  if (!template)
    throw new Error('tests run through `npm test`, which builds the template database');
  return newDatabase('mailer_test', template);
}

// An empty database (nothing migrated), for testing `mailer migrate` itself.
export function createEmptyDatabase(): Promise<TestDatabase> {
  return newDatabase('mailer_empty', undefined);
}
