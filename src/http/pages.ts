// The unsubscribe pages: small, self-contained HTML. Every value is escaped; the headers keep the
// token out of Referer, the confirm button out of frames (clickjacking), and the page out of caches.
import type { FastifyReply } from 'fastify';
import { escapeHtml } from '../html-escape.ts';

export interface Page {
  title: string;
  /** Paragraphs of plain text (escaped here). */
  paragraphs: string[];
  /** A POST form with one button, for the confirmation step. */
  form?: { action: string; button: string };
}

const STYLE = `body{font-family:system-ui,sans-serif;background:#f6f6f6;color:#222;margin:0}
main{max-width:32rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px}
h1{font-size:1.4rem;margin-top:0}button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}`;

export function renderPage(page: Page): string {
  const paragraphs = page.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n');
  const form = page.form
    ? `<form method="post" action="${escapeHtml(page.form.action)}">
<input type="hidden" name="confirm" value="yes">
<button type="submit">${escapeHtml(page.form.button)}</button>
</form>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(page.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(page.title)}</h1>
${paragraphs}
${form}
</main>
</body>
</html>
`;
}

export function sendPage(
  reply: FastifyReply,
  status: number,
  page: Page,
  options: { formOrigin?: string } = {},
): FastifyReply {
  const formAction = ["'self'", options.formOrigin].filter(Boolean).join(' ');
  return reply
    .code(status)
    .headers({
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    })
    .send(renderPage(page));
}
