// SES renders templates with Handlebars but does not escape HTML ("Advanced email
// personalization", Amazon SES developer guide: the sender escapes user data itself). This covers
// the part campaigns use: `{{name}}`, `{{a.b}}` and `{{{name}}}`, and like SES both insert the
// value as is, in every part. Tests therefore see what real inboxes would: raw data in an HtmlPart
// is markup (mailer sends escaped `_html` twins instead, src/ses/template-data.ts). Missing
// values render empty. Block helpers, partials and comments are left in place untouched, so a
// test that relies on them sees the unrendered markup instead of a silently wrong guess.

const EXPRESSION = /\{\{\{\s*([^{}]*?)\s*\}\}\}|\{\{\s*([^{}]*?)\s*\}\}/g;
const PATH = /^[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*$/;

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
  return source.replace(EXPRESSION, (whole, triplePath?: string, doublePath?: string) => {
    const path = triplePath ?? doublePath ?? '';
    if (!PATH.test(path)) return whole;
    return stringify(lookup(data, path));
  });
}
