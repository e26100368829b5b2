// Builds the SendEmail request for one recipient. Every message carries RFC 8058 one-click
// unsubscribe headers (Gmail and Yahoo require them for bulk mail) and tags that let SES events
// find their recipient even without a message id. SES templates get each value with its
// HTML-escaped `_html` twin, since SES does not escape (src/ses/template-data.ts).
import type { SendEmailCommandInput } from '@aws-sdk/client-sesv2';
import type { RenderedEmail } from './render.ts';
import { sesTemplateDataJson } from './template-data.ts';

export interface OutgoingEmail {
  from: string;
  to: string;
  campaignId: string;
  customerId: string;
  unsubscribeUrl: string;
  configurationSet: string | undefined;
  content:
    | { kind: 'ses'; templateName: string; templateData: Record<string, unknown> }
    | { kind: 'internal'; rendered: RenderedEmail };
}

export function buildSendEmailInput(email: OutgoingEmail): SendEmailCommandInput {
  const Headers = [
    { Name: 'List-Unsubscribe', Value: `<${email.unsubscribeUrl}>` },
    { Name: 'List-Unsubscribe-Post', Value: 'List-Unsubscribe=One-Click' },
  ];
  const content = email.content;
  return {
    FromEmailAddress: email.from,
    Destination: { ToAddresses: [email.to] },
    Content:
      content.kind === 'ses'
        ? {
            Template: {
              TemplateName: content.templateName,
              TemplateData: sesTemplateDataJson(content.templateData),
              Headers,
            },
          }
        : {
            Simple: {
              Subject: { Data: content.rendered.subject, Charset: 'UTF-8' },
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
    EmailTags: [
      { Name: 'campaign_id', Value: email.campaignId },
      { Name: 'customer_id', Value: email.customerId },
    ],
    ...(email.configurationSet ? { ConfigurationSetName: email.configurationSet } : {}),
  };
}
