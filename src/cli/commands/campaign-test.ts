// `mailer campaign test --week N [--to ADDR ...] [--customer EMAIL]`: the week's active template,
// rendered for a customer (or sample data; src/ses/test-send.ts, shared with the console), sent
// to the given addresses only (else
// TEST_RECIPIENTS) through the SendEmail request a campaign send builds (src/ses/message.ts),
// marked as a test: "[TEST] " before the subject, an X-Mailer-Test header and the SES tags
// mailer_test=1, campaign_id=test. No campaign or campaign_recipients row is touched; the send is
// recorded in operator_actions (record_test_send). Suppressed addresses are refused.
import type { Command } from 'commander';
import { UsageError } from '../context.ts';
import { fail, intArgument, print, printJson, withDatabase } from '../output.ts';
import { withSes } from './templates.ts';

interface TestFlags {
  week: number;
  to: string[];
  customer?: string;
  json?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  const added = value
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  return [...previous, ...added];
}

async function testAction(flags: TestFlags): Promise<void> {
  const [{ recordTestSend }, testSend] = await Promise.all([
    import('../../queries/template-preview.ts'),
    import('../../ses/test-send.ts'),
  ]);
  await withDatabase(async (pool, ctx) => {
    let plan: Awaited<ReturnType<typeof testSend.planTestSend>>;
    try {
      plan = await testSend.planTestSend(pool, ctx.config, flags);
    } catch (error) {
      if (error instanceof testSend.TestSendUsageError) throw new UsageError(error.message);
      if (error instanceof testSend.TestSendRefused) return fail(error.message);
      throw error;
    }
    const { sent, failed } = await withSes(ctx, 'no SES to send the test through', (client) =>
      testSend.sendTest({ pool, config: ctx.config, client }, plan),
    );
    if (sent.length > 0) {
      await recordTestSend(pool, testSend.testSendRecord(plan, { sent, failed }));
    }
    ctx.logger.info(
      { week: flags.week, template_id: plan.template.template_id, sent: sent.length },
      'campaign test',
    );
    if (flags.json) {
      printJson({
        template: plan.template,
        customer_id: plan.recipient.customer_id,
        sent,
        failed,
      });
    } else {
      for (const s of sent) print(`test of week ${flags.week} sent to ${s.to} (${s.message_id})`);
      for (const f of failed) process.stderr.write(`mailer: test to ${f.to} failed: ${f.error}\n`);
    }
    if (failed.length > 0) process.exitCode = 1;
  });
}

export function registerCampaignTest(campaign: Command): void {
  campaign
    .command('test')
    .description(
      "Send the week's active template, rendered for --customer (or sample data), to the given " +
        'addresses only, as a campaign send would but marked [TEST]; touches no campaign; ' +
        'recorded in operator_actions',
    )
    .requiredOption('--week <n>', 'week of the month, 1-4', intArgument('--week', 1, 4))
    .option(
      '--to <address>',
      'send to this address (repeatable; default TEST_RECIPIENTS)',
      collect,
      [],
    )
    .option('--customer <email>', "render with this customer's data (default: sample data)")
    .option('--json', 'machine-readable output')
    .action(testAction);
}
