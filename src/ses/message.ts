// Builds the SendEmail request for one recipient. Every message carries RFC 8058 one-click
// unsubscribe headers (Gmail and Yahoo require them for bulk mail) and tags that let SES events
// find their recipient even without a message id. SES templates get each value with its
// HTML-escaped `_html` twin, since SES does not escape (src/ses/template-data.ts).
// A test send (`mailer campaign test`) is the same request, marked: "[TEST] " before the subject,
// an X-Mailer-Test header, and the tags mailer_test=1 and campaign_id=test, so that its SES
// events are taken as tagged (never as possibly a recipient's own) and match no recipient.
import type { SendEmailCommandInput } from '@aws-sdk/client-sesv2';
import type { RenderedEmail } from './render.ts';
import { sesTemplateDataJson } from './template-data.ts';

export const TEST_SUBJECT_PREFIX = '[TEST] ';
export const TEST_HEADER = 'X-Mailer-Test';

export interface OutgoingEmail {
  from: string;
  to: string;
  campaignId: string;
  customerId: string;
  unsubscribeUrl: string;
  configurationSet: string | undefined;
  content:
    | {
        kind: 'ses';
        templateName: string;
        templateData: Record<string, unknown>;
        /** Sent inline instead of by name (a test send, whose subject gets its mark). */
        templateContent?: { subject?: string; html?: string; text?: string };
      }
    | { kind: 'internal'; rendered: RenderedEmail };
  /** A test send: marked, and tagged so that no recipient's state is touched by its events. */
  test?: boolean;
}

function tags(email: OutgoingEmail) {
  if (!email.test) {
    return [
      { Name: 'campaign_id', Value: email.campaignId },
      { Name: 'customer_id', Value: email.customerId },
    ];
  }
  return [
    { Name: 'mailer_test', Value: '1' },
    { Name: 'campaign_id', Value: 'test' },
    { Name: 'customer_id', Value: email.customerId },
  ];
}

function templateSource(email: OutgoingEmail & { content: { kind: 'ses' } }) {
  const { templateContent, templateName } = email.content;
  if (!templateContent) return { TemplateName: templateName };
  const mark = email.test ? TEST_SUBJECT_PREFIX : '';
  return {
    TemplateContent: {
      Subject: `${mark}${templateContent.subject ?? ''}`,
      ...(templateContent.html !== undefined ? { Html: templateContent.html } : {}),
      ...(templateContent.text !== undefined ? { Text: templateContent.text } : {}),
    },
  };
}

export function buildSendEmailInput(email: OutgoingEmail): SendEmailCommandInput {
  const Headers = [
    { Name: 'List-Unsubscribe', Value: `<${email.unsubscribeUrl}>` },
    { Name: 'List-Unsubscribe-Post', Value: 'List-Unsubscribe=One-Click' },
    ...(email.test ? [{ Name: TEST_HEADER, Value: '1' }] : []),
  ];
  const content = email.content;
  const subjectMark = email.test ? TEST_SUBJECT_PREFIX : '';
  return {
    FromEmailAddress: email.from,
    Destination: { ToAddresses: [email.to] },
    Content:
      content.kind === 'ses'
        ? {
            Template: {
              ...templateSource({ ...email, content }),
              TemplateData: sesTemplateDataJson(content.templateData),
              Headers,
            },
          }
        : {
            Simple: {
              Subject: { Data: `${subjectMark}${content.rendered.subject}`, Charset: 'UTF-8' },
              Body: {
                ...(content.rendered.html !== undefined
                  ? { Html: { Data: content.rendered.html, Charset: 'UTF-8' } }
                  : {}),
                ...(content.rendered.text !== undefined
                  ? { Text: { Data: content.rendered.text, Charset: 'UTF-8' } }
                  : {}),
              },
              Headers,
            },
          },
    EmailTags: tags(email),
    ...(email.configurationSet ? { ConfigurationSetName: email.configurationSet } : {}),
  };
}
