// `npm test`: prepares the database once, then runs ava.
// - DATABASE_URL set: tests use that server. Unset: the embedded default (started or reused).
// - A migrated template database is built once per run; each test file clones it (fast, isolated).
// - Files named *.exclusive.test.ts measure timing (pacing) and run after the rest, alone, so the
//   other files' worker processes do not starve them of CPU on a 2-core machine.
// Arguments are passed to ava (`npm test -- test/pipeline`, `npm test -- --tap`).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { ensureEmbeddedPostgres } from '../src/db/embedded.ts';
import { createLogger } from '../src/logger.ts';
import { buildTemplateDatabase, dropTemplateDatabase } from './helpers/template.ts';

const logger = createLogger({ level: 'warn', pretty: false });
const databaseUrl =
  process.env.DATABASE_URL ||
  (await ensureEmbeddedPostgres({
    port: process.env.EMBEDDED_PG_PORT ? Number(process.env.EMBEDDED_PG_PORT) : undefined,
  }));

const templateName = await buildTemplateDatabase(databaseUrl, logger);

// Pipeline tests start real worker processes, each with its own pool. A server with fewer
// connections than the embedded default's 300 (an installed PostgreSQL has 100 out of the box)
// gets one test file at a time and one pipeline at a time within a file.
async function maxConnections(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return Number((await client.query('show max_connections')).rows[0].max_connections);
  } finally {
    await client.end();
  }
}
const tight = (await maxConnections(databaseUrl)) < 200;
if (tight) {
  process.stderr.write(
    'npm test: the server allows fewer than 200 connections; running one test file and one ' +
      'worker pipeline at a time\n',
  );
}
const ava = join(import.meta.dirname, '..', 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

function runAva(args: string[]): Promise<number> {
  const child = spawn(process.execPath, [ava, ...args], {
    stdio: 'inherit',
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      MAILER_TEST_TEMPLATE_DB: templateName,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      ...(tight ? { MAILER_TEST_PIPELINE_SLOTS: '1' } : {}),
    },
  });
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
  );
}

const args = process.argv.slice(2);
if (tight && !args.some((a) => a.startsWith('--concurrency'))) args.push('--concurrency=1');
const explicitFiles = args.some((a) => !a.startsWith('-'));
try {
  if (explicitFiles) {
    process.exitCode = await runAva(args);
  } else {
    const main = await runAva([...args, 'test/**/*.test.ts', '!test/**/*.exclusive.test.ts']);
    const exclusive = await runAva([...args, '--concurrency=1', 'test/**/*.exclusive.test.ts']);
    process.exitCode = main || exclusive;
  }
} finally {
  await dropTemplateDatabase(databaseUrl, templateName);
}
