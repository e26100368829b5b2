// `mailer ses check [--json]`: whether this account can send, before any recipient is touched
// (src/ses/preflight.ts). Each problem is one line on stdout and the exit code is 1; when all is
// well, a short summary and exit 0.
import type { Command } from 'commander';
import type { SesCheckFacts } from '../../ses/preflight.ts';
import { type Cell, fail, fields, print, printJson, withDatabase } from '../output.ts';

function summary(facts: SesCheckFacts, ses: string): Array<[string, Cell]> {
  const { account, from, configurationSet, templates } = facts;
  const rows: Array<[string, Cell]> = [['SES', ses]];
  if (account) {
    rows.push(
      [
        'account',
        `sending enabled, ${account.productionAccessEnabled ? 'production access' : 'sandbox'}` +
          `, enforcement ${account.enforcementStatus ?? 'unknown'}`,
      ],
      ['rate', `${account.maxSendRate ?? '?'} messages per second`],
      [
        'quota',
        `${account.max24HourSend ?? '?'} messages per 24 hours, ` +
          `${account.sentLast24Hours ?? '?'} sent in the last 24 hours`,
      ],
    );
  }
  rows.push(['From', `${from.address}, verified (identity ${from.verifiedBy})`]);
  for (const destination of configurationSet?.destinations ?? []) {
    rows.push([
      'configuration set',
      `${configurationSet?.name}: ${destination.name} -> ${destination.topicArn} ` +
        `(${destination.eventTypes.join(', ')})`,
    ]);
  }
  rows.push([
    'templates',
    templates.length === 0
      ? 'no active ses templates'
      : `${templates.length} active ses template(s) exist: ${templates.join(', ')}`,
  ]);
  return rows;
}

async function checkAction(flags: { json?: boolean }): Promise<void> {
  const [{ connectSes }, { checkSesAccount }] = await Promise.all([
    import('../../ses/connect.ts'),
    import('../../ses/preflight.ts'),
  ]);
  await withDatabase(async (pool, ctx) => {
    const ses = await connectSes(ctx.config, ctx.logger);
    try {
      const result = await checkSesAccount({ client: ses.client, config: ctx.config, pool });
      const where = ses.endpoint ?? `Amazon SES, ${await ses.client.config.region()}`;
      if (flags.json) {
        printJson({ ok: result.problems.length === 0, ses: where, ...result });
        if (result.problems.length > 0) process.exitCode = 1;
        return;
      }
      if (result.problems.length === 0) {
        print(`${fields(summary(result.facts, where))}ses check: ok`);
        return;
      }
      for (const problem of result.problems) print(problem);
      fail(`ses check: ${result.problems.length} problem(s) with ${where}`);
    } finally {
      await ses.close();
    }
  });
}

export function registerSes(program: Command): void {
  const ses = program.command('ses').description('Amazon SES account checks');
  ses
    .command('check')
    .description(
      'Whether this account can send: GetAccount (sending enabled, production access, quota), ' +
        'the From identity verified, SES_CONFIGURATION_SET publishing the events mailer needs ' +
        'to a topic in SNS_TOPIC_ARNS, every active ses template present. One line per ' +
        'problem, exit 1 if any',
    )
    .option('--json', 'machine-readable output')
    .action(checkAction);
}
