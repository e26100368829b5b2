// SES does not escape template values in the HtmlPart ("Advanced email personalization", Amazon
// SES developer guide), and one TemplateData feeds the subject, the text and the HTML. So every
// value goes out twice: `name` as written, for the subject and the text, and `name_html`,
// HTML-escaped, for the HtmlPart (the rule src/ses/template-variables.ts enforces).
//
// The `_html` keys SES receives are always escaped: a key of the data that already ends in
// `_html` is escaped in place and gets no `_html_html` twin, and when the data holds both `x`
// and `x_html`, the twin made from `x` wins. null keeps a null twin, so a variable and its twin
// are present together; other values (booleans, objects) get no twin.
import Handlebars from 'handlebars';

const HTML_SUFFIX = '_html';

/**
 * Escapes & < > " ' ` = for HTML text and quoted attributes. Handlebars' own escape, so the
 * internal provider (src/ses/render.ts) and SES templates escape identically.
 */
export function escapeHtml(value: string): string {
  return Handlebars.Utils.escapeExpression(value);
}

function escapedTwin(value: unknown): string | null | undefined {
  if (value === null) return null;
  if (typeof value === 'string' || typeof value === 'number') return escapeHtml(String(value));
  return undefined;
}

/** The TemplateData to send for `data`: each value as is, plus its escaped `_html` twin. */
export function sesTemplateData(data: Record<string, unknown>): Record<string, unknown> {
  // A Map and fromEntries, not assignment: a `__proto__` key from JSON stays a plain key.
  const result = new Map<string, unknown>();
  for (const [key, value] of Object.entries(data)) {
    const escaped = escapedTwin(value);
    if (key.endsWith(HTML_SUFFIX)) {
      if (!result.has(key)) result.set(key, escaped === undefined ? value : escaped);
      continue;
    }
    result.set(key, value);
    if (escaped !== undefined) result.set(`${key}${HTML_SUFFIX}`, escaped);
  }
  return Object.fromEntries(result);
}

/** What `{{greeting_name}}` says for a customer without a name: "Hi there," never "Hi ,". */
export const GREETING_FALLBACK = 'there';

/**
 * The data a template is rendered with: the recipient's template_data plus greeting_name (the
 * name, or GREETING_FALLBACK when it is null or blank). Derived here, where both providers render
 * and send, so campaigns generated before it existed get it too; a template_data that already
 * has greeting_name keeps its own.
 */
export function withTemplateDefaults(data: Record<string, unknown>): Record<string, unknown> {
  if (Object.hasOwn(data, 'greeting_name')) return data;
  const name = typeof data.name === 'string' ? data.name.trim() : '';
  return { ...data, greeting_name: name === '' ? GREETING_FALLBACK : name };
}

/** The TemplateData string an SES template is sent (or test-rendered) with. */
export function sesTemplateDataJson(data: Record<string, unknown>): string {
  return JSON.stringify(sesTemplateData(withTemplateDefaults(data)));
}
