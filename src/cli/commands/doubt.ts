// `mailer doubt list|resolve`: recipients whose send outcome is unknown (SES may or may not have
// the message). Nothing resends them automatically; an operator decides, explicitly, per recipient:
// --sent (SES did take it), --resend (once more; the person may get it twice) or --failed (SES
// did not take it; nothing is sent). Each decision is recorded in operator_actions and logged.
import { type Command, InvalidArgumentError } from 'commander';
import { UsageError } from '../context.ts';
import {
  fail,
  formatAge,
  orFail,
  print,
  printJson,
  table,
  uuidArgument,
  withDatabase,
} from '../output.ts';

async function listAction(flags: { campaign?: string; json?: boolean }) {
  const { inDoubtRecipients } = await import('../../queries/in-doubt.ts');
  await withDatabase(async (pool) => {
    const rows = await inDoubtRecipients(pool, { campaignId: flags.campaign });
    if (flags.json) return printJson(rows);
    if (rows.length === 0) return print('no recipients in doubt');
    print(
      table(
        [
          'campaign',
          'customer',
          'email',
          'attempts',
          'last attempt',
          'age',
          'events',
          'last error',
        ],
        rows.map((r) => [
          r.campaign_id,
          r.customer_id,
          r.email,
          r.attempt_count,
          r.last_attempt_at,
          formatAge(r.last_attempt_at),
          r.events,
          r.last_error,
        ]),
      ),
    );
    print(
      `${rows.length} in doubt. Decide each: mailer doubt resolve CAMPAIGN CUSTOMER --sent | --resend | --failed`,
    );
  });
}

function customerRef(value: string): string {
  if (value.includes('@')) return value;
  try {
    return uuidArgument('customer')(value);
  } catch {
    throw new InvalidArgumentError(`a customer is its id or email address, got ${value}`);
  }
}

interface ResolveFlags {
  sent?: boolean;
  resend?: boolean;
  failed?: boolean;
  note?: string;
}

async function resolveAction(campaignId: string, customer: string, flags: ResolveFlags) {
  const decisions = (['sent', 'resend', 'failed'] as const).filter((d) => flags[d] === true);
  const decision = decisions.length === 1 ? decisions[0] : undefined;
  if (!decision) {
    throw new UsageError(
      'decide explicitly: --sent (SES has it), --resend (send it once more) or --failed ' +
        '(SES does not have it; send nothing)',
    );
  }
  const { findCustomerId, resolveInDoubt } = await import('../../queries/in-doubt.ts');
  await withDatabase(async (pool, ctx) => {
    const customerId = await findCustomerId(pool, customer);
    if (!customerId) return fail(`no customer ${customer}`);
    const key = { campaignId, customerId };
    const result = await orFail(() => resolveInDoubt(pool, key, decision, flags.note));
    if (result === undefined) return;
    ctx.logger.warn(
      { campaign_id: campaignId, customer_id: customerId, decision },
      'operator resolved an in-doubt recipient (see operator_actions)',
    );
    print(`recipient ${customerId} of campaign ${campaignId}: ${result}`);
  });
}

export function registerDoubt(program: Command): void {
  const doubt = program
    .command('doubt')
    .description(
      'Recipients in doubt (SES may or may not have their message) and their resolution',
    );
  doubt
    .command('list')
    .description(
      'Recipients in the in_doubt state, oldest first, with how many SES events name them',
    )
    .option('--campaign <id>', 'only this campaign', uuidArgument('campaign'))
    .option('--json', 'machine-readable output')
    .action(listAction);
  doubt
    .command('resolve')
    .description(
      'Decide one in-doubt recipient: --sent marks it sent; --resend sets it pending and ' +
        'enqueues one send (the person may receive it twice); --failed marks it failed and ' +
        'sends nothing. Recorded in operator_actions.',
    )
    .argument('<campaign>', 'campaign id', uuidArgument('campaign'))
    .argument('<customer>', 'customer id or email address', customerRef)
    .option('--sent', 'SES did take it: mark it sent')
    .option('--resend', 'send it once more')
    .option('--failed', 'SES did not take it: mark it failed, send nothing')
    .option('--note <text>', 'why (recorded)')
    .action(resolveAction);
}
