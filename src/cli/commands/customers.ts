// `mailer customers import FILE.csv` and `mailer customers show EMAIL`.
import type { Command } from 'commander';
import { UsageError } from '../context.ts';
import {
  fail,
  fields,
  formatTime,
  intArgument,
  print,
  printJson,
  table,
  withDatabase,
} from '../output.ts';

interface ImportFlags {
  strict?: boolean;
  dryRun?: boolean;
  json?: boolean;
  encoding?: string;
  progress: boolean;
}

// A rejected value as the report shows it: a 10,000-character field would bury the other lines.
function shortValue(value: string): string {
  return value.length <= 80 ? value : `${value.slice(0, 60)}... (${value.length} characters)`;
}

function megabytes(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1);
}

// A one-line progress indicator on stderr, only for a person watching a terminal.
function progressLine(started: number) {
  return (p: { bytesRead: number; bytesTotal: number; records: number }) => {
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    const share = p.bytesTotal > 0 ? (100 * p.bytesRead) / p.bytesTotal : 100;
    process.stderr.write(
      `\r\x1b[Kimporting: ${share.toFixed(1)}% (${megabytes(p.bytesRead)} of ` +
        `${megabytes(p.bytesTotal)} MB), ${p.records.toLocaleString('en')} rows, ` +
        `${Math.round(p.records / seconds).toLocaleString('en')} rows/s`,
    );
  };
}

async function importAction(file: string, flags: ImportFlags): Promise<void> {
  const { ImportFileError, ImportInputError, importCustomersCsv } = await import(
    '../../import/customers.ts'
  );
  const started = Date.now();
  const showProgress = flags.progress && process.stderr.isTTY === true && !flags.json;
  let problems = 0;
  if (flags.json) process.stdout.write(`{"file":${JSON.stringify(file)},"rejected":[`);
  await withDatabase(async (pool, ctx) => {
    try {
      const summary = await importCustomersCsv(pool, file, {
        apply: flags.dryRun ? 'never' : flags.strict ? 'if-clean' : 'always',
        ...(flags.encoding === undefined ? {} : { encoding: flags.encoding }),
        ...(showProgress
          ? {
              onProgress: progressLine(started),
              // Rejected lines go to stdout next: the status line is cleared before them.
              onStage: (stage) =>
                process.stderr.write(stage === 'reporting' ? '\r\x1b[K' : `\r\x1b[K${stage}...`),
            }
          : {}),
        onProblem(p) {
          if (flags.json) {
            process.stdout.write(`${problems === 0 ? '' : ','}\n${JSON.stringify(p)}`);
          } else {
            if (problems === 0) print('rejected lines:');
            print(`  line ${p.line}: ${p.problem}${p.value ? ` (${shortValue(p.value)})` : ''}`);
          }
          problems++;
        },
      });
      if (showProgress) process.stderr.write('\r\x1b[K');
      const seconds = (Date.now() - started) / 1000;
      // The summary is the command's output; the log line is for debugging (and never on stdout
      // next to --json unless asked for).
      ctx.logger.debug(
        { rows: summary.rowsRead, rejected: summary.invalid + summary.duplicates, seconds },
        'customers import finished',
      );
      if (flags.json) {
        process.stdout.write(`\n],"summary":${JSON.stringify({ ...summary, seconds })}}\n`);
      } else {
        const rejected = summary.invalid + summary.duplicates;
        const outcome = summary.applied
          ? `${summary.valid} imported (${summary.inserted} new, ${summary.updated} updated, ` +
            `${summary.unchanged} unchanged)`
          : `${summary.valid} valid, nothing imported (${flags.dryRun ? '--dry-run' : '--strict'})`;
        print(
          `${file}: ${summary.rowsRead} rows read in ${seconds.toFixed(1)}s: ${outcome}, ` +
            `${rejected} rejected (${summary.invalid} invalid, ${summary.duplicates} duplicates)`,
        );
      }
      if (flags.strict && !summary.applied) {
        fail('--strict: the file has rejected lines, so nothing was imported');
      }
    } catch (error) {
      if (showProgress) process.stderr.write('\r\x1b[K');
      if (flags.json) process.stdout.write('\n]}\n');
      if (error instanceof ImportInputError) throw new UsageError(error.message);
      if (error instanceof ImportFileError) return fail(`${file}: ${error.message}`);
      throw error;
    }
  });
}

interface ShowFlags {
  campaigns: number;
  events: number;
  json?: boolean;
}

async function showAction(address: string, flags: ShowFlags): Promise<void> {
  if (!address.includes('@')) throw new UsageError(`${address} is not an email address`);
  const { customerReport, explainCampaign } = await import('../../queries/customers.ts');
  await withDatabase(async (pool) => {
    const report = await customerReport(pool, address, flags);
    if (flags.json) {
      printJson({
        ...report,
        campaigns: report.campaigns.map((c) => ({
          ...c,
          explanation: explainCampaign(c, report.customer),
        })),
      });
    } else {
      const c = report.customer;
      const s = report.suppression;
      print(report.email);
      print(
        fields([
          [
            'customer',
            c
              ? `${c.customer_id} ${[c.name, c.company, c.country].filter(Boolean).join(', ')}`
              : 'none: no customer has this address',
          ],
          ['active', c ? c.is_active : '-'],
          [
            'suppressed',
            s
              ? `yes: ${s.reason}, by ${s.source}, since ${formatTime(s.created_at)}`
              : 'no (may be mailed)',
          ],
        ]),
      );
      print(`recent campaigns (${report.campaigns.length})`);
      print(
        table(
          ['campaign', 'date', 'status', 'recipient', 'attempts', 'last attempt', 'message id'],
          report.campaigns.map((l) => [
            l.campaign_id,
            l.generated_date,
            l.campaign_status,
            l.recipient_status ?? 'not a recipient',
            l.attempt_count,
            l.last_attempt_at,
            l.ses_message_id,
          ]),
        ),
      );
      for (const l of report.campaigns) {
        print(`  ${l.campaign_name}: ${explainCampaign(l, c)}`);
      }
      print(`recent events (${report.events.length})`);
      print(
        table(
          ['time', 'type', 'campaign', 'message id', 'detail'],
          report.events.map((e) => [
            e.event_time,
            e.event_type,
            e.campaign_id,
            e.ses_message_id,
            e.detail,
          ]),
        ),
      );
      if (report.actions.length > 0) {
        print('operator actions');
        print(
          table(
            ['time', 'action', 'by', 'note', 'details'],
            report.actions.map((a) => [
              a.created_at,
              a.action,
              // A console user acts through the console's login: name them, not it.
              a.actor === a.db_user
                ? `${a.db_user} (${a.application_name})`
                : `${a.actor} (as ${a.db_user})`,
              a.note,
              JSON.stringify(a.details),
            ]),
          ),
        );
      }
    }
    if (!report.customer) fail(`${report.email} is not a customer`);
  });
}

export function registerCustomers(program: Command): void {
  const customers = program.command('customers').description('Import and look up customers');
  customers
    .command('import')
    .description(
      'Upsert customers by email from a CSV file with a header row: email,name,company,country' +
        '[,is_active]. Bad lines are listed with their line number and reason while the good ' +
        'ones are imported (the first of duplicate addresses wins). Exit 0 when the file was ' +
        'processed; with --strict, exit 1 and import nothing if any line is rejected.',
    )
    .argument('<file>', 'CSV file (UTF-8, optional BOM, CRLF or LF, quoted fields)')
    .option(
      '--encoding <label>',
      "the file's encoding when it is not UTF-8 (windows-1252, iso-8859-15, utf-16le...); " +
        'UTF-16 with a byte order mark is recognised without it',
    )
    .option('--strict', 'import nothing unless every line is valid (exit 1 otherwise)')
    .option('--dry-run', 'validate and report only; import nothing')
    .option('--no-progress', 'no progress indicator on stderr (it is shown on a terminal only)')
    .option('--json', 'machine-readable output: rejected lines and a summary')
    .action(importAction);
  customers
    .command('show')
    .description(
      'Everything about one address: customer, suppression (why, since, by whom), its status in ' +
        'recent campaigns with the reason it was or was not sent, recent SES events and operator ' +
        'actions. Exit 1 when no customer has the address (what is known is still shown).',
    )
    .argument('<email>', 'the address (any case)')
    .option('--campaigns <n>', 'how many recent campaigns', intArgument('--campaigns', 1), 5)
    .option('--events <n>', 'how many recent events', intArgument('--events', 1), 20)
    .option('--json', 'machine-readable output')
    .action(showAction);
}
