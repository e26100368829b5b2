// Checks one SES template the way `templates add --provider ses`, `templates activate` and
// `mailer ses check` need it: it exists in the SES the client talks to, and its HtmlPart outputs
// only escaped `_html` variables (src/ses/template-variables.ts). Each problem is one line; an
// empty list means the template is fine.
import {
  GetEmailTemplateCommand,
  NotFoundException,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import { htmlTwin, rawHtmlVariables } from './template-variables.ts';

async function describeSes(client: SESv2Client): Promise<string> {
  const region = await client.config.region().catch(() => undefined);
  const endpoint = await client.config.endpoint?.().catch(() => undefined);
  if (endpoint) {
    const port = endpoint.port ? `:${endpoint.port}` : '';
    return `${endpoint.protocol}//${endpoint.hostname}${port}${endpoint.path === '/' ? '' : endpoint.path}`;
  }
  return `region ${region ?? '(unknown)'}`;
}

/** Problem lines for the SES template `templateName`; empty when it exists and is safe. */
export async function checkSesTemplate(
  client: SESv2Client,
  templateName: string,
): Promise<string[]> {
  let html: string | undefined;
  try {
    const answer = await client.send(new GetEmailTemplateCommand({ TemplateName: templateName }));
    html = answer.TemplateContent?.Html;
  } catch (error) {
    if (error instanceof NotFoundException) {
      return [`SES template ${templateName} does not exist in ${await describeSes(client)}`];
    }
    const { name, message } = error as Error;
    return [`SES template ${templateName}: GetEmailTemplate failed: ${name}: ${message}`];
  }
  if (html === undefined) return [];
  let raw: string[];
  try {
    raw = rawHtmlVariables(html);
  } catch (error) {
    return [
      `SES template ${templateName}: HtmlPart is not a valid template: ${(error as Error).message}`,
    ];
  }
  if (raw.length === 0) return [];
  return [
    `SES template ${templateName}: HtmlPart uses raw variables ${raw.join(', ')}; ` +
      `use ${raw.map(htmlTwin).join(', ')}`,
  ];
}
