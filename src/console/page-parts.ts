// Pieces shared by the console's pages (campaign, customers, suppressions, jobs, templates):
// sending a page, the outcome of an action after its redirect, errors an operator can act on,
// and keyset "next page" links. Everything is markup built with `html` (escaped).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { formatTime, operatorError } from '../cli/output.ts';
import type { ConsoleUser } from './context.ts';
import { type Html, html } from './html.ts';
import { page } from './layout.ts';

export { formatTime };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

export function sendPage(
  request: FastifyRequest,
  reply: FastifyReply,
  options: { title: string; body: Html; active: string; status?: number; error?: string },
): FastifyReply {
  const user = request.user as ConsoleUser;
  // A page shown again with an action's error (the action was refused) answers 409.
  return reply
    .code(options.status ?? (options.error ? 409 : 200))
    .type('text/html; charset=utf-8')
    .send(
      page({
        title: options.title,
        user,
        csrfToken: request.csrfToken ?? '',
        body: options.body,
        active: options.active,
      }).text,
    );
}

export function notFound(
  request: FastifyRequest,
  reply: FastifyReply,
  what: string,
  active: string,
) {
  return sendPage(request, reply, {
    title: 'Not found',
    active,
    status: 404,
    body: html`<p class="error">${what}</p>`,
  });
}

/**
 * An action's outcome travels through its redirect (POST, then 303 to the page) as a fixed code
 * and a number, never as free text: a link someone sends cannot make the console say anything.
 */
export function outcomeUrl(path: string, code: string, count?: number): string {
  const join = path.includes('?') ? '&' : '?';
  return `${path}${join}done=${encodeURIComponent(code)}${count === undefined ? '' : `&n=${count}`}`;
}

export function outcomeNotice(
  query: { done?: unknown; n?: unknown },
  messages: Record<string, (n: number) => string>,
): Html | '' {
  const message = typeof query.done === 'string' ? messages[query.done] : undefined;
  if (!message) return '';
  const n = Number(query.n ?? 0);
  return html`<p class="notice" role="status">${message(Number.isFinite(n) ? n : 0)}</p>`;
}

/** The message of an error the SQL functions raise for the operator; undefined for a bug. */
export function actionError(error: unknown): string | undefined {
  return operatorError(error);
}

export function errorNotice(message: string | undefined): Html | '' {
  return message ? html`<p class="error" role="alert">${message}</p>` : '';
}

/** A field from a urlencoded form body: trimmed text, or '' when absent. */
export function formText(body: unknown, name: string): string {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value.trim() : '';
}

export function queryText(query: unknown, name: string): string {
  const value = (query as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value.trim() : '';
}

/** A link to the next page of a keyset-paginated list, keeping the other query parameters. */
export function nextPageLink(
  path: string,
  params: Record<string, string | undefined>,
  cursor: Record<string, string> | undefined,
  label = 'Next page',
): Html | '' {
  if (!cursor) return '';
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...params, ...cursor })) {
    if (value !== undefined && value !== '') search.set(key, value);
  }
  return html`<p class="pager"><a href="${`${path}?${search}`}" rel="next">${label}</a></p>`;
}

/** Label and value pairs as a two-column table (the page's facts: status, times, who). */
export function facts(rows: [string, Html | string | number][]): Html {
  return html`<table class="facts"><tbody>${rows.map(
    ([label, value]) => html`<tr><th scope="row">${label}</th><td>${value}</td></tr>`,
  )}</tbody></table>`;
}

export function time(value: Date | null | undefined): Html {
  return value
    ? html`<time datetime="${value.toISOString()}">${formatTime(value)}</time>`
    : html`-`;
}
