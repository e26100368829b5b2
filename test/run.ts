// `npm test`: prepares the database once, then runs ava.
// - DATABASE_URL set: tests use that server. Unset: the embedded default (started or reused).
// - A migrated template database is built once per run; each test file clones it (fast, isolated).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureEmbeddedPostgres } from '../src/db/embedded.ts';
import { createLogger } from '../src/logger.ts';
import { buildTemplateDatabase } from './helpers/template.ts';

const logger = createLogger({ level: 'warn', pretty: false });
const databaseUrl =
  process.env.DATABASE_URL ||
  (await ensureEmbeddedPostgres({ port: Number(process.env.EMBEDDED_PG_PORT ?? 54329) }));

const templateName = await buildTemplateDatabase(databaseUrl, logger);

const ava = join(import.meta.dirname, '..', 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const child = spawn(process.execPath, [ava, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: {
    ...process.env,
    DATABASE_URL: databaseUrl,
    MAILER_TEST_TEMPLATE_DB: templateName,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  },
});
child.on('exit', (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});
