// A fresh database per test file, cloned from the migrated template that test/run.ts built.
import type { ExecutionContext } from 'ava';
import pg from 'pg';
import { createDatabase, type OwnDatabase } from '../../src/db/databases.ts';
import { forFile } from './for-file.ts';

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
  const created = forFile('database', createTestDatabase, (db) => db.drop());
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

/** A connected client on `url`, a session of its own apart from any pool; ended when the test ends. */
export async function connectClient(t: ExecutionContext, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.teardown(() => client.end());
  return client;
}

export interface ActionRow {
  action: string;
  actor: string;
  email: string | null;
  campaign_id: string | null;
  note: string | null;
  details: Record<string, unknown>;
}

/** The operator_actions rows of one action, oldest first. */
export async function actionsOf(pool: pg.Pool, action: string): Promise<ActionRow[]> {
  const { rows } = await pool.query<ActionRow>(
    `select action, actor, email, campaign_id, note, details from public.operator_actions
      where action = $1 order by action_id`,
    [action],
  );
  return rows;
}

/** The pauses mailer made by itself of one campaign (auto_pause), oldest first. */
export async function automaticPauses(pool: pg.Pool, campaignId: string) {
  return (await actionsOf(pool, 'auto_pause'))
    .filter((a) => a.campaign_id === campaignId)
    .map((a) => ({ actor: a.actor, note: a.note, automatic: a.details.automatic }));
}

/**
 * SQL for the Unix time in milliseconds a version 7 UUID carries (its first 48 bits), of the uuid
 * expression `id`, as a bigint.
 */
export function uuidMillisecondsSql(id: string): string {
  return `('x' || replace(left(${id}::text, 13), '-', ''))::bit(48)::bigint`;
}
