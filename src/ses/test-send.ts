// A test send (`mailer campaign test`, the console's templates page): the week's active template,
// rendered for a customer (or sample data), sent to the given addresses only through the
// SendEmail request a campaign send builds (src/ses/message.ts), marked as a test: "[TEST] "
// before the subject, an X-Mailer-Test header and the SES tags mailer_test=1, campaign_id=test.
// No campaign or campaign_recipients row is touched; suppressed addresses are refused. The
// caller records the send (record_test_send), so that the console can do it as its user.
import { GetEmailTemplateCommand, type SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import type pg from 'pg';
import type { Config } from '../config.ts';
import {
  type ActiveTemplate,
  activeTemplate,
  customerData,
  type PreviewData,
  sampleData,
} from '../queries/template-preview.ts';
import { buildSendEmailInput, type OutgoingEmail } from './message.ts';
import { createTemplateRenderer } from './render.ts';

const ADDRESS = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
export const MAX_TEST_ADDRESSES = 50;

/** The request itself is wrong (no address, a bad one, too many): the CLI's bad usage. */
export class TestSendUsageError extends Error {}
/** The request is fine but cannot be sent (no template, no customer, a suppressed address). */
export class TestSendRefused extends Error {}

export interface TestPlan {
  week: number;
  to: string[];
  template: ActiveTemplate;
  recipient: PreviewData;
}

/** Checks a test send before SES is touched; throws TestSendUsageError or TestSendRefused. */
export async function planTestSend(
  pool: pg.Pool,
  config: Config,
  request: { week: number; to: string[]; customer?: string | undefined },
): Promise<TestPlan> {
  const given = request.to.length > 0 ? request.to : [...config.testRecipients];
  const to = [...new Set(given.map((a) => a.toLowerCase()))];
  if (to.length === 0) {
    throw new TestSendUsageError(
      'campaign test: give --to ADDRESS (repeatable) or set TEST_RECIPIENTS',
    );
  }
  const bad = to.filter((a) => !ADDRESS.test(a));
  if (bad.length > 0) {
    throw new TestSendUsageError(`campaign test: not an address: ${bad.join(', ')}`);
  }
  if (to.length > MAX_TEST_ADDRESSES) {
    throw new TestSendUsageError(
      `campaign test: at most ${MAX_TEST_ADDRESSES} addresses, got ${to.length}`,
    );
  }
  const template = await activeTemplate(pool, request.week);
  if (!template) throw new TestSendRefused(`no active template for week ${request.week}`);
  const recipient = request.customer
    ? await customerData(pool, request.customer, config.publicUrl)
    : sampleData(config.publicUrl);
  if (!recipient) throw new TestSendRefused(`no customer ${request.customer}`);
  const { rows: suppressed } = await pool.query<{ email: string }>(
    'select email from public.suppression_list where email = any($1::text[]) order by email',
    [to],
  );
  if (suppressed.length > 0) {
    throw new TestSendRefused(
      `campaign test: ${suppressed.map((s) => s.email).join(', ')} on the suppression list; ` +
        'nothing sent',
    );
  }
  return { week: request.week, to, template, recipient };
}

export interface TestSendResult {
  sent: { to: string; message_id: string }[];
  failed: { to: string; error: string }[];
}

/** Sends a checked test to each address, one SendEmail each; a refusal fails that address only. */
export async function sendTest(
  deps: { pool: pg.Pool; config: Config; client: SESv2Client },
  plan: TestPlan,
): Promise<TestSendResult> {
  const { template, recipient } = plan;
  const data = recipient.data;
  let content: OutgoingEmail['content'];
  if (template.provider === 'ses') {
    // Sent inline (the same content, by SES's renderer) so that its subject carries the mark.
    const stored = await deps.client
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
    const rendered = await createTemplateRenderer(deps.pool)(template.template_id, data);
    content = { kind: 'internal', rendered };
  }
  const result: TestSendResult = { sent: [], failed: [] };
  for (const address of plan.to) {
    const input = buildSendEmailInput({
      from: deps.config.ses.from,
      to: address,
      campaignId: 'test',
      customerId: recipient.customer_id ?? 'sample',
      unsubscribeUrl: String(data.unsubscribe_url ?? ''),
      configurationSet: deps.config.ses.configurationSet,
      content,
      test: true,
    });
    try {
      const answer = await deps.client.send(new SendEmailCommand(input));
      result.sent.push({ to: address, message_id: answer.MessageId ?? 'unknown' });
    } catch (error) {
      const { name, message: text } = error as Error;
      result.failed.push({ to: address, error: `${name}: ${text}` });
    }
  }
  return result;
}

/** What record_test_send stores for a test's accepted sends. */
export function testSendRecord(plan: TestPlan, result: TestSendResult) {
  return {
    week: plan.week,
    templateId: plan.template.template_id,
    to: result.sent.map((s) => s.to),
    customerId: plan.recipient.customer_id,
    messageIds: result.sent.map((s) => s.message_id),
  };
}
