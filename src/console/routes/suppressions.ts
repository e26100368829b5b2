// GET /suppressions: the suppression list, searched by the start of an address and filtered by
// reason and source, a page at a time in address order (keyset: page 500 costs what page 1
// does). GET /suppressions.csv: the same filter as CSV, streamed a batch at a time, recorded in
// operator_actions (export_suppressions) under the console user before the first byte. Adding
// and lifting entries happens on the customer page, where the reasons behind an entry show.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { csvField } from '../../cli/commands/campaign-report.ts';
import {
  allSuppressions,
  countSuppressions,
  recordSuppressionExport,
  SUPPRESSION_REASONS,
  SUPPRESSION_SOURCES,
  type SuppressionFilter,
  searchSuppressions,
} from '../../queries/suppressions.ts';
import { withActor } from '../auth.ts';
import type { ConsoleDeps, ConsoleUser } from '../context.ts';
import { html } from '../html.ts';
import { nextPageLink, queryText, sendPage, time } from '../page-parts.ts';

const ACTIVE = '/suppressions';
const PAGE_SIZE = 100;

function oneOf(value: string, allowed: readonly string[]): string | undefined {
  return allowed.includes(value) ? value : undefined;
}

function filterFrom(request: FastifyRequest): SuppressionFilter {
  return {
    prefix: queryText(request.query, 'email'),
    reason: oneOf(queryText(request.query, 'reason'), SUPPRESSION_REASONS),
    source: oneOf(queryText(request.query, 'source'), SUPPRESSION_SOURCES),
  };
}

function filterParams(f: SuppressionFilter): Record<string, string | undefined> {
  return { email: f.prefix, reason: f.reason, source: f.source };
}

function select(name: string, label: string, allowed: readonly string[], chosen?: string) {
  return html`<label>${label} <select name="${name}"><option value="">any</option>${allowed.map(
    (v) => html`<option value="${v}"${v === chosen ? html` selected` : ''}>${v}</option>`,
  )}</select></label>`;
}

const CSV_HEADER = 'email,reason,source,created_at,updated_at\r\n';

export function register(app: FastifyInstance, deps: ConsoleDeps): void {
  app.get('/suppressions', async (request, reply) => {
    const filter = filterFrom(request);
    const after = queryText(request.query, 'after') || undefined;
    const { rows, next } = await searchSuppressions(deps.pool, filter, after, PAGE_SIZE);
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(filterParams(filter))) if (v) params.set(k, v);
    const body = html`<form method="get" action="/suppressions" class="filters" role="search">
<label>Email starts with <input type="search" name="email" value="${filter.prefix}" placeholder="ann@"></label>
${select('reason', 'Reason', SUPPRESSION_REASONS, filter.reason)}
${select('source', 'Source', SUPPRESSION_SOURCES, filter.source)}
<button type="submit">Search</button>
<a href="/suppressions.csv${params.size > 0 ? `?${params}` : ''}" download>Export these as CSV</a>
</form>
${
  rows.length === 0
    ? html`<p>No suppressed address matches${after ? ' after this point' : ''}.</p>`
    : html`<table><thead><tr><th>email</th><th>reason</th><th>source</th><th>since</th><th>changed</th></tr></thead><tbody>
${rows.map((r) => html`<tr><td><a href="/customers?email=${encodeURIComponent(r.email)}">${r.email}</a></td><td>${r.reason}</td><td>${r.source}</td><td>${time(r.created_at)}</td><td>${r.updated_at > r.created_at ? time(r.updated_at) : '-'}</td></tr>`)}
</tbody></table>`
}
${nextPageLink('/suppressions', filterParams(filter), next ? { after: next } : undefined)}
<p class="muted small">Sources: ops (an operator), user (the unsubscribe link), ses (a bounce or complaint). The customer page shows why an address is here and lifts it.</p>`;
    return sendPage(request, reply, { title: 'Suppression list', active: ACTIVE, body });
  });

  app.get('/suppressions.csv', async (request, reply) => {
    const filter = filterFrom(request);
    // Recorded before streaming: who took which part of the list is what the audit needs,
    // also when the download is abandoned halfway.
    await withActor(deps.pool, request.user as ConsoleUser, async (client) => {
      const rows = await countSuppressions(client, filter);
      await recordSuppressionExport(client, filter, rows);
    });
    async function* lines() {
      yield CSV_HEADER;
      for await (const batch of allSuppressions(deps.pool, filter)) {
        yield batch
          .map(
            (r) =>
              `${[r.email, r.reason, r.source, r.created_at, r.updated_at].map(csvField).join(',')}\r\n`,
          )
          .join('');
      }
    }
    const stamp = new Date().toISOString().slice(0, 10);
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="suppressions-${stamp}.csv"`)
      .send(Readable.from(lines()));
  });
}
