// Internal templates: Handlebars, the same syntax SES templates use, so a template can move
// between providers unchanged. HTML bodies escape every value; subject and text do not (they are
// not HTML), but the subject loses line breaks so data can never add a header line.
import Handlebars from 'handlebars';
import type pg from 'pg';
import { withTemplateDefaults } from './template-data.ts';

export interface TemplateContent {
  subject: string;
  htmlBody: string | null;
  textBody: string | null;
}

export interface RenderedEmail {
  subject: string;
  html: string | undefined;
  text: string | undefined;
}

type Compiled = (data: Record<string, unknown>) => RenderedEmail;

export class TemplateNotFoundError extends Error {}

function compile(content: TemplateContent): Compiled {
  const options = { strict: false };
  const subject = Handlebars.compile(content.subject, { ...options, noEscape: true });
  const html =
    content.htmlBody === null ? undefined : Handlebars.compile(content.htmlBody, options);
  const text =
    content.textBody === null
      ? undefined
      : Handlebars.compile(content.textBody, { ...options, noEscape: true });
  return (recipientData) => {
    const data = withTemplateDefaults(recipientData);
    return {
      subject: subject(data)
        .replace(/[\r\n]+/g, ' ')
        .trim(),
      html: html?.(data),
      text: text?.(data),
    };
  };
}

// Content rows are immutable per template version (a change is a new version), so a compiled
// template is cached for the life of the process.
export function createTemplateRenderer(pool: pg.Pool) {
  const cache = new Map<string, Promise<Compiled>>();
  async function load(templateId: string): Promise<Compiled> {
    const { rows } = await pool.query<TemplateContent>(
      `select subject, html_body as "htmlBody", text_body as "textBody"
         from public.template_contents where template_id = $1`,
      [templateId],
    );
    const row = rows[0];
    if (!row) throw new TemplateNotFoundError(`internal template ${templateId} has no content`);
    return compile(row);
  }
  return async function render(
    templateId: string,
    data: Record<string, unknown>,
  ): Promise<RenderedEmail> {
    let compiled = cache.get(templateId);
    if (!compiled) {
      compiled = load(templateId);
      cache.set(templateId, compiled);
      compiled.catch(() => cache.delete(templateId));
    }
    return (await compiled)(data);
  };
}

export type TemplateRenderer = ReturnType<typeof createTemplateRenderer>;
