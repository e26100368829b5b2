// `mailer campaign test --week N [--to ADDR ...] [--customer EMAIL]`: the week's active template,
// rendered for a customer (or sample data), sent to the given addresses only (else
// TEST_RECIPIENTS) through the SendEmail request a campaign send builds (src/ses/message.ts),
// marked as a test: "[TEST] " before the subject, an X-Mailer-Test header and the SES tags
// mailer_test=1, campaign_id=test. No campaign or campaign_recipients row is touched; the send is
// recorded in operator_actions (record_test_send). Suppressed addresses are refused.
import { GetEmailTemplateCommand, SendEmailCommand } from '@aws-sdk/client-sesv2';
import type { Command } from 'commander';
import type { OutgoingEmail } from '../../ses/message.ts';
import { UsageError } from '../context.ts';
import { fail, intArgument, print, printJson, withDatabase } from '../output.ts';
import { withSes } from './templates.ts';

const ADDRESS = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const MAX_ADDRESSES = 50;

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
  const [{ activeTemplate, customerData, recordTestSend, sampleData }, message, render] =
    await Promise.all([
      import('../../queries/template-preview.ts'),
      import('../../ses/message.ts'),
      import('../../ses/render.ts'),
    ]);
  await withDatabase(async (pool, ctx) => {
    const given = flags.to.length > 0 ? flags.to : [...ctx.config.testRecipients];
    const to = [...new Set(given.map((a) => a.toLowerCase()))];
    if (to.length === 0) {
      throw new UsageError('campaign test: give --to ADDRESS (repeatable) or set TEST_RECIPIENTS');
    }
    const bad = to.filter((a) => !ADDRESS.test(a));
    if (bad.length > 0) throw new UsageError(`campaign test: not an address: ${bad.join(', ')}`);
    if (to.length > MAX_ADDRESSES) {
      throw new UsageError(`campaign test: at most ${MAX_ADDRESSES} addresses, got ${to.length}`);
    }
    const template = await activeTemplate(pool, flags.week);
    if (!template) return fail(`no active template for week ${flags.week}`);
    const recipient = flags.customer
      ? await customerData(pool, flags.customer, ctx.config.publicUrl)
      : sampleData(ctx.config.publicUrl);
    if (!recipient) return fail(`no customer ${flags.customer}`);
    const { rows: suppressed } = await pool.query<{ email: string }>(
      'select email from public.suppression_list where email = any($1::text[]) order by email',
      [to],
    );
    if (suppressed.length > 0) {
      return fail(
        `campaign test: ${suppressed.map((s) => s.email).join(', ')} on the suppression list; ` +
          'nothing sent',
      );
    }
    const data = recipient.data;
    const sent: { to: string; message_id: string }[] = [];
    const failed: { to: string; error: string }[] = [];
    await withSes(ctx, 'no SES to send the test through', async (client) => {
      let content: OutgoingEmail['content'];
      if (template.provider === 'ses') {
        // Sent inline (the same content, by SES's renderer) so that its subject carries the mark.
        const stored = await client
          .send(new GetEmailTemplateCommand({ TemplateName: template.provider_template_name }))
          .catch((error: Error) => {
            throw new Error(
              `SES template ${template.provider_template_name}: GetEmailTemplate failed: ` +
                `${error.name}: ${error.message}`,
            );
          });
        content = {
          kind: 'ses',
          templateName: template.provider_template_name,
          templateData: data,
          templateContent: {
            subject: stored.TemplateContent?.Subject,
            html: stored.TemplateContent?.Html,
            text: stored.TemplateContent?.Text,
          },
        };
      } else {
        const rendered = await render.createTemplateRenderer(pool)(template.template_id, data);
        content = { kind: 'internal', rendered };
      }
      for (const address of to) {
        const input = message.buildSendEmailInput({
          from: ctx.config.ses.from,
          to: address,
          campaignId: 'test',
          customerId: recipient.customer_id ?? 'sample',
          unsubscribeUrl: String(data.unsubscribe_url ?? ''),
          configurationSet: ctx.config.ses.configurationSet,
          content,
          test: true,
        });
        try {
          const answer = await client.send(new SendEmailCommand(input));
          sent.push({ to: address, message_id: answer.MessageId ?? 'unknown' });
        } catch (error) {
          const { name, message: text } = error as Error;
          failed.push({ to: address, error: `${name}: ${text}` });
        }
      }
    });
    if (sent.length > 0) {
      await recordTestSend(pool, {
        week: flags.week,
        templateId: template.template_id,
        to: sent.map((s) => s.to),
        customerId: recipient.customer_id,
        messageIds: sent.map((s) => s.message_id),
      });
    }
    ctx.logger.info(
      { week: flags.week, template_id: template.template_id, sent: sent.length },
      'campaign test',
    );
    if (flags.json) printJson({ template, customer_id: recipient.customer_id, sent, failed });
    else {
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
