// SES renders templates with Handlebars. This covers the part campaigns use: `{{name}}`,
// `{{a.b}}` and `{{{name}}}`. Like Handlebars, and therefore like SES, `{{name}}` is HTML-escaped
// in every part, the subject and text included; `{{{name}}}` inserts the value as is. Missing
// values render empty. Block helpers, partials and comments are left in place untouched, so a
// test that relies on them sees the unrendered markup instead of a silently wrong guess.

const EXPRESSION = /\{\{\{\s*([^{}]*?)\s*\}\}\}|\{\{\s*([^{}]*?)\s*\}\}/g;
const PATH = /^[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*$/;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#x27;',
  '`': '&#x60;',
  '=': '&#x3D;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`=]/g, (char) => ESCAPES[char] ?? char);
}

function lookup(data: Record<string, unknown>, path: string): unknown {
  let value: unknown = data;
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return '';
  return String(value);
}

export function renderTemplate(source: string, data: Record<string, unknown>): string {
  return source.replace(EXPRESSION, (whole, rawPath?: string, escapedPath?: string) => {
    const path = rawPath ?? escapedPath ?? '';
    if (!PATH.test(path)) return whole;
    const value = stringify(lookup(data, path));
    return rawPath === undefined ? escapeHtml(value) : value;
  });
}
