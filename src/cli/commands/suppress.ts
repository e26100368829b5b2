// `mailer suppress add|remove|list|check`: the compliance list, by hand. Removing an entry is an
// explicit operator act: it needs --note, also --force whenever the address ever unsubscribed or
// complained, and it is recorded in operator_actions (with the removed entry) as well as logged.
import { type Command, InvalidArgumentError } from 'commander';
import { SUPPRESSION_REASONS, SUPPRESSION_SOURCES } from '../../queries/suppressions.ts';
import { UsageError } from '../context.ts';
import {
  dateArgument,
  fields,
  formatTime,
  intArgument,
  orFail,
  print,
  printJson,
  table,
  withDatabase,
} from '../output.ts';

function oneOf(what: string, allowed: readonly string[]) {
  return (value: string): string => {
    if (!allowed.includes(value)) {
      throw new InvalidArgumentError(`${what} must be one of ${allowed.join(', ')}`);
    }
    return value;
  };
}

function address(value: string): string {
  if (!value.includes('@')) throw new UsageError(`${value} is not an email address`);
  return value;
}

async function addAction(email: string, flags: { reason: string; note?: string }) {
  const { suppressEmail, findSuppression } = await import('../../queries/operations.ts');
  await withDatabase(async (pool, ctx) => {
    const before = await findSuppression(pool, address(email));
    const added = await orFail(() => suppressEmail(pool, email, flags.reason, flags.note));
    if (added === undefined) return;
    const entry = await findSuppression(pool, email);
    if (added) ctx.logger.info({ reason: flags.reason }, 'operator suppressed an address');
    // The stronger reason wins (complaint > unsubscribe > bounce_hard > manual): an existing
    // weaker entry takes the new reason and keeps its date.
    print(
      !added
        ? `${entry?.email ?? email} was already suppressed (${entry?.reason}, by ${entry?.source} since ` +
            `${formatTime(entry?.created_at)}); unchanged`
        : before
          ? `${entry?.email ?? email} was suppressed for ${before.reason}; now ${flags.reason} (ops), ` +
            `suppressed since ${formatTime(entry?.created_at)}`
          : `${entry?.email ?? email} suppressed (${flags.reason}, ops); its pending recipients are suppressed too`,
    );
  });
}

async function removeAction(email: string, flags: { note: string; force?: boolean }) {
  const { unsuppressEmail, findSuppression } = await import('../../queries/operations.ts');
  await withDatabase(async (pool, ctx) => {
    const before = await findSuppression(pool, address(email));
    const removed = await orFail(() =>
      unsuppressEmail(pool, email, flags.note, flags.force === true),
    );
    if (removed === undefined) return;
    if (!removed) return print(`${email} is not suppressed; nothing changed`);
    // The audit row (operator_actions) holds the address; the log line does not.
    ctx.logger.warn(
      { reason: before?.reason, source: before?.source, forced: flags.force === true },
      'operator removed an address from the suppression list (see operator_actions)',
    );
    print(
      `${before?.email ?? email} removed from the suppression list (was ${before?.reason}, by ` +
        `${before?.source} since ${formatTime(before?.created_at)}); recorded in operator_actions`,
    );
  });
}

interface ListFlags {
  reason?: string;
  source?: string;
  since?: string;
  limit: number;
  json?: boolean;
}

async function listAction(flags: ListFlags) {
  const { listSuppressions } = await import('../../queries/operations.ts');
  await withDatabase(async (pool) => {
    const { total, rows } = await listSuppressions(pool, flags);
    if (flags.json) return printJson({ total, entries: rows });
    print(
      table(
        ['email', 'reason', 'source', 'since'],
        rows.map((r) => [r.email, r.reason, r.source, r.created_at]),
      ),
    );
    print(`${rows.length} of ${total} shown`);
  });
}

async function checkAction(email: string, flags: { json?: boolean }) {
  const { findSuppression } = await import('../../queries/operations.ts');
  await withDatabase(async (pool) => {
    const entry = await findSuppression(pool, address(email));
    if (flags.json)
      return printJson({ email, suppressed: entry !== undefined, entry: entry ?? null });
    if (!entry) return print(`${email}: not suppressed (may be mailed)`);
    print(`${entry.email}: SUPPRESSED`);
    print(
      fields([
        ['reason', entry.reason],
        ['source', entry.source],
        ['since', entry.created_at],
      ]),
    );
  });
}

export function registerSuppress(program: Command): void {
  const suppress = program
    .command('suppress')
    .description('The suppression list: addresses that are never mailed, whatever put them there');
  suppress
    .command('add')
    .description('Suppress an address (source ops); its pending recipients become suppressed')
    .argument('<email>', 'the address (any case)')
    .option(
      '--reason <reason>',
      `one of ${SUPPRESSION_REASONS.join(', ')}`,
      oneOf('--reason', SUPPRESSION_REASONS),
      'manual',
    )
    .option('--note <text>', 'why (kept in operator_actions)')
    .action(addAction);
  suppress
    .command('remove')
    .description(
      'Remove an address from the suppression list: an explicit, recorded operator act. ' +
        'It also needs --force (only with renewed consent) when the entry is an unsubscribe or ' +
        'complaint, or when one was ever recorded for the address.',
    )
    .argument('<email>', 'the address (any case)')
    .requiredOption('--note <text>', 'why it may be mailed again (required, recorded)')
    .option('--force', 'also remove it when the person unsubscribed or complained')
    .action(removeAction);
  suppress
    .command('list')
    .description('Suppressed addresses, newest first')
    .option(
      '--reason <reason>',
      `only this reason (${SUPPRESSION_REASONS.join(', ')})`,
      oneOf('--reason', SUPPRESSION_REASONS),
    )
    .option(
      '--source <source>',
      `only this source (${SUPPRESSION_SOURCES.join(', ')})`,
      oneOf('--source', SUPPRESSION_SOURCES),
    )
    .option('--since <YYYY-MM-DD>', 'only entries added since this date', dateArgument)
    .option('--limit <n>', 'how many', intArgument('--limit', 1), 100)
    .option('--json', 'machine-readable output')
    .action(listAction);
  suppress
    .command('check')
    .description('Is this address suppressed, and why? (exit 0 either way; see --json)')
    .argument('<email>', 'the address (any case)')
    .option('--json', 'machine-readable output')
    .action(checkAction);
}
