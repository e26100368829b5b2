#!/usr/bin/env node
// The `mailer` command. Exit codes: 0 success, 1 failure, 2 bad usage or configuration.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import pg from 'pg';
import { ConfigError, loadConfig } from '../config.ts';
import { EmbeddedPostgresError } from '../db/embedded.ts';
import { describeConnectFailure } from '../db/pool.ts';
import { registerCampaign } from './commands/campaign.ts';
import { registerConsole } from './commands/console.ts';
import { registerCustomers } from './commands/customers.ts';
import { registerDoubt } from './commands/doubt.ts';
import { registerJobs } from './commands/jobs.ts';
import { registerMigrate } from './commands/migrate.ts';
import { registerServe } from './commands/serve.ts';
import { registerSes } from './commands/ses.ts';
import { registerSesLocal } from './commands/ses-local.ts';
import { registerStart } from './commands/start.ts';
import { registerSuppress } from './commands/suppress.ts';
import { registerTemplates } from './commands/templates.ts';
import { registerWorker } from './commands/worker.ts';
import { UsageError } from './context.ts';

// An error from the database server (a missing database, a refused login), the network
// (connection refused, unknown host) or the set-up (a taken port) is the operator's to fix, and
// its message says what it is: one line, the stack only with LOG_LEVEL=debug. Anything else is a
// bug or a surprise: the stack helps whoever reports it.
function describeFailure(error: unknown, withStack: boolean): string {
  if (!(error instanceof Error)) return String(error);
  const stack = withStack && error.stack ? `\n${error.stack}` : '';
  const unreachable = describeConnectFailure(error);
  if (unreachable) return `${unreachable}${stack}`;
  const code = (error as { code?: unknown }).code;
  const operational =
    error instanceof pg.DatabaseError ||
    error instanceof EmbeddedPostgresError ||
    (typeof code === 'string' && /^E[A-Z]+$/.test(code) && 'syscall' in error);
  if (operational) return `${error.message}${typeof code === 'string' ? ` (${code})` : ''}${stack}`;
  return error.stack ?? error.message;
}

// LOG_LEVEL=debug (or trace) asks for stacks; read through the config like every setting.
function stacksWanted(): boolean {
  try {
    return ['debug', 'trace'].includes(loadConfig().logLevel);
  } catch {
    return false;
  }
}

const { version } = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string };

const program = new Command('mailer')
  .description('PostgreSQL-backed weekly email campaigns for Amazon SES')
  .version(version, '-V, --version', 'print the version (from package.json)')
  .showHelpAfterError()
  .exitOverride();

registerMigrate(program);
registerWorker(program);
registerServe(program);
registerStart(program);
registerSesLocal(program);
registerSes(program);
registerCustomers(program);
registerTemplates(program);
registerCampaign(program);
registerSuppress(program);
registerJobs(program);
registerDoubt(program);
registerConsole(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (error instanceof UsageError || error instanceof ConfigError) {
    // Bad usage, or configuration found wanting at start-up (no AWS credentials, say): one line.
    const stack = stacksWanted() && error.stack ? `\n${error.stack}` : '';
    process.stderr.write(`mailer: ${error.message}${stack}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`mailer: ${describeFailure(error, stacksWanted())}\n`);
    // Exit now: a failed long-running command (a worker whose runner died, say) may still hold
    // pools and sockets that would keep the process alive doing nothing; a supervisor restarts it.
    process.exit(1);
  }
}
