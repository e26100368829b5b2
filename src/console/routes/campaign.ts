// GET /campaigns/:id, the campaign page: what `campaign report` says (recipients by status;
// delivered, opened and clicked; bounce and complaint rates beside SES's thresholds), what
// `campaign status` says about SES errors and an automatic pause, a per-minute chart of its SES
// events, and the failed and in-doubt recipients a page at a time, with the operator's actions:
// POST /campaigns/:id/retry-failed (retry_failed_recipients) and
// POST /campaigns/:id/in-doubt/:customerId (resolve_in_doubt: sent, resend or failed). Both go through
// withActor, so operator_actions names the console user.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { duration } from '../../cli/commands/campaign-status.ts';
import {
  attentionRecipients,
  type ChartMinute,
  campaignChart,
  eventCounts,
} from '../../queries/campaign-page.ts';
import { campaignLive } from '../../queries/campaign-status.ts';
import { resolveInDoubt } from '../../queries/in-doubt.ts';
import { retryFailedRecipients } from '../../queries/operations.ts';
import { type CampaignReportRow, campaignReport } from '../../queries/report.ts';
import { requireOperator, withActor } from '../auth.ts';
import {
  CHART_MINUTES,
  chartSection,
  countsSection,
  ratesSection,
  recipientRow,
} from '../campaign-sections.ts';
import type { ConsoleDeps, ConsoleUser } from '../context.ts';
import { type Html, html } from '../html.ts';
import { csrfField } from '../layout.ts';
import {
  actionError,
  errorNotice,
  facts,
  formText,
  isUuid,
  nextPageLink,
  notFound,
  outcomeNotice,
  outcomeUrl,
  queryText,
  sendPage,
  time,
} from '../page-parts.ts';
import { CampaignSnapshotCache } from '../snapshot-cache.ts';

const ACTIVE = '/campaigns';
const PAGE_SIZE = 50;

const OUTCOMES: Record<string, (n: number) => string> = {
  retried: (n) =>
    n === 0
      ? 'No failed recipient to retry (suppressed addresses stay failed).'
      : `${n} failed recipient(s) queued again, one more attempt each.`,
  sent: () => 'The recipient is marked sent.',
  resend: () => 'The recipient is pending again: it is sent once more.',
  failed: () => 'The recipient is marked failed: nothing was sent.',
};

/** What the page reads from the shared cache: the counts and the chart. */
interface Snapshot {
  report: CampaignReportRow;
  chart: ChartMinute[];
}

type Snapshots = CampaignSnapshotCache<Snapshot>;

function snapshots(deps: ConsoleDeps): Snapshots {
  return new CampaignSnapshotCache<Snapshot>(
    async (id) => {
      const [report, chart] = await Promise.all([
        campaignReport(deps.pool, id),
        campaignChart(deps.pool, id, CHART_MINUTES),
      ]);
      return report ? { report, chart } : undefined;
    },
    // A finished campaign changes only as late events arrive.
    (last) => (last?.report.status === 'done' ? 30_000 : 5_000),
  );
}

interface PageState {
  reports: Snapshots;
  campaignId: string;
  user: ConsoleUser;
  csrfToken: string;
  query: unknown;
}

async function campaignBody(
  deps: ConsoleDeps,
  s: PageState,
  error?: string,
): Promise<{ title: string; body: Html } | undefined> {
  const id = s.campaignId;
  // The counts from the shared cache (at most one count per campaign every few seconds); the
  // status and pause reason fresh, so an action shows at once.
  const [cached, current] = await Promise.all([
    s.reports.get(id),
    deps.pool.query<{ status: string; pause_reason: string | null; generating: boolean }>(
      'select status, pause_reason, generating from public.campaigns where campaign_id = $1',
      [id],
    ),
  ]);
  const state = current.rows[0];
  if (!cached.value || !state) return undefined;
  const report = { ...cached.value.report, ...state };
  const chart = cached.value.chart;
  const q = (name: string) => queryText(s.query, name);
  const cursor = (email: string, customer: string) =>
    q(email) && isUuid(q(customer)) ? { email: q(email), customer_id: q(customer) } : undefined;
  const [live, failed, doubt] = await Promise.all([
    campaignLive(deps.pool, id),
    attentionRecipients(deps.pool, id, 'failed', cursor('fa', 'fi'), PAGE_SIZE),
    attentionRecipients(deps.pool, id, 'in_doubt', cursor('da', 'di'), PAGE_SIZE),
  ]);
  const events = await eventCounts(
    deps.pool,
    id,
    doubt.rows.map((r) => r.customer_id),
  );
  const operator = s.user.role === 'operator';
  const r = report;
  const took =
    r.started_at && r.finished_at
      ? duration((r.finished_at.getTime() - r.started_at.getTime()) / 1000)
      : null;
  const keep = { fa: q('fa'), fi: q('fi'), da: q('da'), di: q('di') };
  const errors = live?.errors ?? [];
  const body = html`${outcomeNotice(s.query as Record<string, unknown>, OUTCOMES)}${errorNotice(error)}
<section class="summary">
${facts([
  [
    'status',
    html`<span class="badge badge-${r.status}">${r.status}</span>${r.generating ? ' (still generating)' : ''}`,
  ],
  ...(r.pause_reason
    ? [['paused because', html`<span class="warn">${r.pause_reason}</span>`] as [string, Html]]
    : []),
  ['first send', time(r.started_at)],
  ['last send', time(r.last_attempt_at)],
  ['finished', r.finished_at ? time(r.finished_at) : `not yet (${r.status})`],
  ...(took ? [['duration', took] as [string, string]] : []),
])}
</section>
${countsSection(r, cached.readAt)}
${ratesSection(r)}
<section><h2>SES errors by kind</h2>
${
  errors.length === 0
    ? html`<p>No unsettled recipient has an SES error.</p>`
    : html`<table><thead><tr><th>error</th><th>recipients</th><th>now</th><th>last</th></tr></thead><tbody>${errors.map(
        (e) =>
          html`<tr><td>${e.kind}</td><td class="num">${e.recipients}</td><td>${e.recipient_status === 'pending' ? 'to be sent again' : e.recipient_status.replace('_', ' ')}</td><td>${time(e.last_at)}</td></tr>`,
      )}</tbody></table>`
}
</section>
${chartSection(chart)}
<section><h2>Failed recipients (${r.failed})</h2>
${
  operator && r.failed > 0
    ? html`<form method="post" action="/campaigns/${id}/retry-failed" class="filters">
${csrfField(s.csrfToken)}
<label>Why <input name="note" required maxlength="500" placeholder="addresses fixed, ticket 4713"></label>
<button type="submit">Retry failed</button>
</form>`
    : ''
}
${
  failed.rows.length === 0
    ? html`<p>None${q('fa') ? ' after this point' : ''}.</p>`
    : html`<table><thead><tr><th>email</th><th>why</th><th>attempts</th><th>last attempt</th></tr></thead><tbody>${failed.rows.map((x) => recipientRow(x, ''))}</tbody></table>`
}
${nextPageLink(`/campaigns/${id}`, { ...keep, fa: undefined, fi: undefined }, failed.next && { fa: failed.next.email, fi: failed.next.customer_id }, 'More failed recipients')}
</section>
<section><h2>In-doubt recipients (${r.in_doubt})</h2>
<p class="muted small">SES may or may not have their message. Decide each: resend (the person may get it twice) or mark sent (SES has it).</p>
${
  doubt.rows.length === 0
    ? html`<p>None${q('da') ? ' after this point' : ''}.</p>`
    : html`<table><thead><tr><th>email</th><th>last error</th><th>attempts</th><th>last attempt</th><th>SES events</th>${operator ? html`<th>decision</th>` : ''}</tr></thead><tbody>${doubt.rows.map(
        (x) =>
          recipientRow(
            x,
            html`<td class="num">${events.get(x.customer_id) ?? 0}</td>${
              operator
                ? html`<td><form method="post" action="/campaigns/${id}/in-doubt/${x.customer_id}" class="inline">
${csrfField(s.csrfToken)}
<select name="decision" required><option value="">decide...</option><option value="resend">resend</option><option value="sent">mark sent</option><option value="failed">mark failed (not sent)</option></select>
<input name="note" maxlength="500" placeholder="why (recorded)">
<button type="submit">Record</button>
</form></td>`
                : ''
            }`,
          ),
      )}</tbody></table>`
}
${nextPageLink(`/campaigns/${id}`, { ...keep, da: undefined, di: undefined }, doubt.next && { da: doubt.next.email, di: doubt.next.customer_id }, 'More in-doubt recipients')}
</section>`;
  return { title: `Campaign ${r.campaign_name}`, body };
}

async function showPage(
  deps: ConsoleDeps,
  reports: Snapshots,
  request: FastifyRequest<{ Params: { id: string } }>,
  reply: FastifyReply,
  error?: string,
) {
  const { id } = request.params;
  const user = request.user as ConsoleUser;
  const shown = isUuid(id)
    ? await campaignBody(
        deps,
        { reports, campaignId: id, user, csrfToken: request.csrfToken ?? '', query: request.query },
        error,
      )
    : undefined;
  if (!shown) return notFound(request, reply, `No campaign ${id}.`, ACTIVE);
  return sendPage(request, reply, { ...shown, active: ACTIVE, error });
}

export function register(app: FastifyInstance, deps: ConsoleDeps): void {
  const reports = snapshots(deps);
  app.get<{ Params: { id: string } }>('/campaigns/:id', (request, reply) =>
    showPage(deps, reports, request, reply),
  );

  app.post<{ Params: { id: string } }>(
    '/campaigns/:id/retry-failed',
    { preHandler: requireOperator },
    async (request, reply) => {
      const { id } = request.params;
      if (!isUuid(id)) return notFound(request, reply, `No campaign ${id}.`, ACTIVE);
      const note = formText(request.body, 'note');
      if (note === '')
        return showPage(deps, reports, request, reply, 'Say why you retry (recorded).');
      try {
        const n = await withActor(deps.pool, request.user as ConsoleUser, (client) =>
          retryFailedRecipients(client, id, note),
        );
        reports.invalidate(id);
        return reply.redirect(outcomeUrl(`/campaigns/${id}`, 'retried', n), 303);
      } catch (error) {
        const message = actionError(error);
        if (message === undefined) throw error;
        return showPage(deps, reports, request, reply, message);
      }
    },
  );

  app.post<{ Params: { id: string; customerId: string } }>(
    '/campaigns/:id/in-doubt/:customerId',
    { preHandler: requireOperator },
    async (request, reply) => {
      const { id, customerId } = request.params;
      if (!isUuid(id) || !isUuid(customerId)) {
        return notFound(request, reply, 'No such recipient.', ACTIVE);
      }
      const decision = formText(request.body, 'decision');
      if (decision !== 'sent' && decision !== 'resend' && decision !== 'failed') {
        return showPage(
          deps,
          reports,
          request,
          reply,
          'Choose a decision: resend, mark sent or mark failed.',
        );
      }
      const note = formText(request.body, 'note');
      try {
        await withActor(deps.pool, request.user as ConsoleUser, (client) =>
          resolveInDoubt(client, { campaignId: id, customerId }, decision, note || undefined),
        );
        reports.invalidate(id);
        return reply.redirect(outcomeUrl(`/campaigns/${id}`, decision), 303);
      } catch (error) {
        const message = actionError(error);
        if (message === undefined) throw error;
        return showPage(deps, reports, request, reply, message);
      }
    },
  );
}
