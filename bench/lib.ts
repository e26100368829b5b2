// Shared bench plumbing: a fresh migrated database per benchmark, JSON-line output, timing.
import type pg from 'pg';
import { createDatabase, type OwnDatabase } from '../src/db/databases.ts';
import { ensureEmbeddedPostgres } from '../src/db/embedded.ts';
import { createLogger } from '../src/logger.ts';

export const logger = createLogger({ level: 'warn', pretty: false });
export const quick = process.argv.includes('--quick');

export function emit(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), ...record })}\n`);
}

export async function serverUrl(): Promise<string> {
  return (
    process.env.DATABASE_URL ||
    ensureEmbeddedPostgres({ port: Number(process.env.EMBEDDED_PG_PORT ?? 54329) })
  );
}

export type BenchDatabase = OwnDatabase;

/** A new database with the committed and current migrations, as the tests' template has. */
export async function createBenchDatabase(label: string): Promise<BenchDatabase> {
  return createDatabase(await serverUrl(), { prefix: `mailer_bench_${label}`, migrate: logger });
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

export async function seedCustomers(
  pool: pg.Pool,
  count: number,
  options: { suppressedPercent?: number } = {},
): Promise<void> {
  await pool.query(
    `insert into templates (provider, provider_template_name, week_of_month)
     values ('internal', 'bench', 1)`,
  );
  await pool.query(
    `insert into template_contents (template_id, subject, html_body, text_body)
     select template_id, 'Hello {{name}}', '<p>Hello {{name}} of {{company}}</p>', 'Hello {{name}}'
       from templates`,
  );
  await pool.query(
    `insert into customers (email, name, company, country)
     select 'bench' || g || '@example.com', 'Customer ' || g, 'Company ' || (g % 1000), 'NL'
       from generate_series(1, $1::int) g
      -- In no order of their addresses, as customers who signed up one by one: the email
      -- indexes get no help from the order customer_id gives.
      order by md5(g::text)`,
    [count],
  );
  const percent = options.suppressedPercent ?? 0;
  if (percent > 0) {
    await pool.query(
      `insert into suppression_list (email, reason, source)
       select email, 'manual', 'ops' from customers where random() < $1::float8 / 100`,
      [percent],
    );
  }
  await pool.query('vacuum analyze');
}
