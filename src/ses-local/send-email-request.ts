// Turns a SendEmail request body into the message SES would send, validating it the way SES
// does before anything is accepted: exactly one content type, a sender, 1 to 50 recipients with
// an @domain each, tag names and values SES allows, and a template that exists.
import { badRequest, validationError } from './errors.ts';
import {
  bareAddress,
  decodeEncodedWords,
  headerValue,
  parseMimeHeaders,
  splitAddressList,
} from './raw-mime.ts';
import { renderTemplate } from './render-template.ts';
import {
  type ContentFields,
  type MessageDraft,
  type SendEmailRequest,
  sendEmailSchema,
  type TemplateRequest,
} from './send-email-schema.ts';
import type { TemplateStore } from './templates.ts';

const MAX_RECIPIENTS = 50;
const TAG_PATTERN = /^[A-Za-z0-9_-]{0,256}$/;

const toHeaders = (headers: Array<{ Name: string; Value: string }> = []) =>
  headers.map((header) => ({ name: header.Name, value: header.Value }));

export function parseTemplateData(json: string | undefined): Record<string, unknown> {
  if (json === undefined) return {};
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw badRequest('TemplateData is not valid JSON.');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw badRequest('TemplateData must be a JSON object.');
  }
  return data as Record<string, unknown>;
}

function templateFields(template: TemplateRequest, templates: TemplateStore): ContentFields {
  const name = template.TemplateName ?? template.TemplateArn?.split(':template/').at(-1);
  if (!template.TemplateContent && !name) {
    throw badRequest('Template requires TemplateName, TemplateArn or TemplateContent.');
  }
  // SendEmail answers a missing template with a 400 BadRequestException, unlike
  // GetEmailTemplate's 404 NotFoundException.
  const content = template.TemplateContent ?? templates.find(name ?? '');
  if (!content) throw badRequest(`Template ${name} does not exist.`);
  const data = parseTemplateData(template.TemplateData);
  const render = (part: string | undefined) =>
    part === undefined ? undefined : renderTemplate(part, data);
  return {
    subject: render(content.Subject) ?? '',
    text: render(content.Text),
    html: render(content.Html),
    headers: toHeaders(template.Headers),
    templateName: name,
    templateData: data,
  };
}

function contentFields(
  content: SendEmailRequest['Content'],
  templates: TemplateStore,
): ContentFields {
  const kinds = [content.Simple, content.Raw, content.Template].filter(
    (kind) => kind !== undefined,
  );
  if (kinds.length !== 1)
    throw badRequest('Content must contain exactly one of Simple, Raw or Template.');
  if (content.Simple) {
    const { Subject, Body, Headers } = content.Simple;
    return {
      subject: Subject.Data,
      text: Body.Text?.Data,
      html: Body.Html?.Data,
      headers: toHeaders(Headers),
    };
  }
  if (content.Template) return templateFields(content.Template, templates);
  const raw = Buffer.from(content.Raw?.Data ?? '', 'base64').toString('utf8');
  const headers = parseMimeHeaders(raw);
  return { subject: decodeEncodedWords(headerValue(headers, 'Subject') ?? ''), headers, raw };
}

/** Raw messages may leave sender and recipients to their MIME headers, as SES allows. */
function rawAddresses(fields: ContentFields, name: string): string[] {
  if (fields.raw === undefined) return [];
  const value = headerValue(fields.headers, name);
  return value === undefined ? [] : splitAddressList(value);
}

function checkAddress(address: string): void {
  const bare = bareAddress(address);
  const at = bare.lastIndexOf('@');
  if (at <= 0 || at === bare.length - 1)
    throw badRequest(`Missing final '@domain' in address ${address}.`);
}

function toTags(tags: SendEmailRequest['EmailTags'] = []): Record<string, string> {
  const result: Record<string, string> = {};
  for (const { Name, Value } of tags) {
    if (!TAG_PATTERN.test(Name) || !TAG_PATTERN.test(Value)) {
      throw badRequest(
        `Invalid tag ${Name}=${Value}: only ASCII letters, digits, '_' and '-' are allowed.`,
      );
    }
    result[Name] = Value;
  }
  return result;
}

export function parseSendEmailRequest(body: unknown, templates: TemplateStore): MessageDraft {
  const parsed = sendEmailSchema.safeParse(body);
  if (!parsed.success) throw validationError(parsed.error);
  const request = parsed.data;
  const fields = contentFields(request.Content, templates);
  const destination = request.Destination;
  const hasDestination = Boolean(
    destination?.ToAddresses?.length ||
      destination?.CcAddresses?.length ||
      destination?.BccAddresses?.length,
  );
  const to = hasDestination ? (destination?.ToAddresses ?? []) : rawAddresses(fields, 'To');
  const cc = hasDestination ? (destination?.CcAddresses ?? []) : rawAddresses(fields, 'Cc');
  const bcc = hasDestination ? (destination?.BccAddresses ?? []) : rawAddresses(fields, 'Bcc');
  const from = request.FromEmailAddress ?? rawAddresses(fields, 'From')[0];
  if (!from) throw badRequest('Missing FromEmailAddress.');
  const recipients = [...to, ...cc, ...bcc];
  if (recipients.length === 0)
    throw badRequest('Missing recipients: Destination has no addresses.');
  if (recipients.length > MAX_RECIPIENTS)
    throw badRequest(`Recipient count exceeds ${MAX_RECIPIENTS}.`);
  for (const address of [from, ...recipients]) checkAddress(address);
  return {
    ...fields,
    from,
    to,
    cc,
    bcc,
    tags: toTags(request.EmailTags),
    configurationSetName: request.ConfigurationSetName,
  };
}
