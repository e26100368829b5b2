// The one HTML escape for pages the server renders (the console and the unsubscribe pages):
// & < > " ' and ` , for text and quoted attributes. Email template data has its own escape
// (src/ses/template-data.ts), Handlebars', so that it matches what SES templates do.

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c] as string);
}
