// Checks one SES template the way `templates add --provider ses`, `templates activate` and
// `mailer ses check` need it: it exists in the SES the client talks to, and its HtmlPart outputs
// only escaped `_html` variables, and no part uses a variable mailer never provides
// (src/ses/template-variables.ts). Each problem is one line; an empty list means the template is
// fine.
import {
  GetEmailTemplateCommand,
  NotFoundException,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import {
  htmlTwin,
  knownVariableList,
  rawHtmlVariables,
  unknownVariables,
} from './template-variables.ts';

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
  let content: { Subject?: string; Html?: string; Text?: string } | undefined;
  try {
    const answer = await client.send(new GetEmailTemplateCommand({ TemplateName: templateName }));
    content = answer.TemplateContent;
  } catch (error) {
    if (error instanceof NotFoundException) {
      return [`SES template ${templateName} does not exist in ${await describeSes(client)}`];
    }
    const { name, message } = error as Error;
    return [`SES template ${templateName}: GetEmailTemplate failed: ${name}: ${message}`];
  }
  const problems: string[] = [];
  for (const [part, source] of [
    ['Subject', content?.Subject],
    ['HtmlPart', content?.Html],
    ['TextPart', content?.Text],
  ] as const) {
    if (source === undefined) continue;
    try {
      const unknown = unknownVariables(source, 'ses');
      if (unknown.length > 0) {
        problems.push(
          `SES template ${templateName}: ${part} uses unknown variables ${unknown.join(', ')}; ` +
            `known: ${knownVariableList('ses')}`,
        );
      }
      const raw = part === 'HtmlPart' ? rawHtmlVariables(source) : [];
      if (raw.length > 0) {
        problems.push(
          `SES template ${templateName}: HtmlPart uses raw variables ${raw.join(', ')}; ` +
            `use ${raw.map(htmlTwin).join(', ')}`,
        );
      }
    } catch (error) {
      problems.push(
        `SES template ${templateName}: ${part} is not a valid template: ${(error as Error).message}`,
      );
    }
  }
  return problems;
}
