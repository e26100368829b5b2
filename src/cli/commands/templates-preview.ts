// `mailer templates preview --week N [--customer EMAIL] [--format text|html]`: the subject and
// one body of the template a week's new campaign would get, rendered for that customer (or sample
// data) exactly as a send renders it: internal templates by the worker's renderer, SES templates
// by SES (TestRenderEmailTemplate). Only the unsubscribe link differs: tokens are made per
// campaign, so the preview's names a placeholder token.
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import { type Command, Option } from 'commander';
import { intArgument, printJson, withDatabase } from '../output.ts';
import { withSes } from './templates.ts';

interface PreviewFlags {
  week: number;
  customer?: string;
  format: 'text' | 'html';
  json?: boolean;
}

async function previewAction(flags: PreviewFlags): Promise<void> {
  const { activeTemplate, customerData, sampleData } = await import(
    '../../queries/template-preview.ts'
  );
  const { renderPreview } = await import('../../ses/preview.ts');
  await withDatabase(async (pool, ctx) => {
    const template = await activeTemplate(pool, flags.week);
    if (!template) {
      process.stderr.write(`mailer: no active template for week ${flags.week}\n`);
      process.exitCode = 1;
      return;
    }
    const recipient = flags.customer
      ? await customerData(pool, flags.customer, ctx.config.publicUrl)
      : sampleData(ctx.config.publicUrl);
    if (!recipient) {
      process.stderr.write(`mailer: no customer ${flags.customer}\n`);
      process.exitCode = 1;
      return;
    }
    const render = (ses: () => Promise<SESv2Client>) =>
      renderPreview({ pool, ses }, template, recipient.data);
    const rendered =
      template.provider === 'ses'
        ? await withSes(ctx, 'no SES to render the template in', (client) =>
            render(async () => client),
          )
        : await render(() => Promise.reject(new Error('an internal template needs no SES')));
    if (flags.json) {
      return printJson({ template, customer_id: recipient.customer_id, ...rendered });
    }
    const body = flags.format === 'html' ? rendered.html : rendered.text;
    if (body === undefined) {
      process.stderr.write(
        `mailer: week ${flags.week}'s template has no ${flags.format} part; try --format ` +
          `${flags.format === 'html' ? 'text' : 'html'}\n`,
      );
      process.exitCode = 1;
      return;
    }
    process.stderr.write(
      `week ${flags.week}, template version ${template.version} (${template.provider}` +
        `${template.provider === 'ses' ? ` ${template.provider_template_name}, rendered by SES` : ''}` +
        `), for ${flags.customer ?? 'sample data'}; the unsubscribe link is a placeholder\n`,
    );
    process.stdout.write(
      `Subject: ${rendered.subject}\n\n${body}${body.endsWith('\n') ? '' : '\n'}`,
    );
  });
}

export function registerTemplatesPreview(templates: Command): void {
  templates
    .command('preview')
    .description(
      "Print the subject and a body of the week's active template as a customer (or sample " +
        'data) would get it; SES templates are rendered by SES (TestRenderEmailTemplate)',
    )
    .requiredOption('--week <n>', 'week of the month, 1-4', intArgument('--week', 1, 4))
    .option('--customer <email>', "render with this customer's data (default: sample data)")
    .addOption(
      new Option('--format <format>', 'which body to print')
        .choices(['text', 'html'])
        .default('text'),
    )
    .option('--json', 'subject, text and html as JSON')
    .action(previewAction);
}
