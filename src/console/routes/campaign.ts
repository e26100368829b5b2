// GET /campaigns/:id, the campaign page: what `campaign report` says (recipients by status;
// delivered, opened and clicked; bounce and complaint rates beside SES's thresholds), what
// `campaign status` says about SES errors and an automatic pause, a per-minute chart of its SES
// events, and the failed and in-doubt recipients a page at a time, with the operator's actions:
// POST /campaigns/:id/retry-failed (retry_failed_recipients) and
// POST /campaigns/:id/in-doubt/:customerId (resolve_in_doubt: sent or resend). Both go through
// withActor, so operator_actions names the console user.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { level, SES_THRESHOLDS } from '../../cli/commands/campaign-report.ts';
import { duration } from '../../cli/commands/campaign-status.ts';
import { percent } from '../../cli/output.ts';
import {
  type AttentionRecipient,
  attentionRecipients,
  CHART_EVENTS,
  type ChartMinute,
  campaignChart,
  eventCounts,
} from '../../queries/campaign-page.ts';
import { campaignLive } from '../../queries/campaign-status.ts';
import { resolveInDoubt } from '../../queries/in-doubt.ts';
import { RECIPIENT_STATUSES, retryFailedRecipients } from '../../queries/operations.ts';
import { type CampaignReportRow, campaignReport } from '../../queries/report.ts';
import { requireOperator, withActor } from '../auth.ts';
import { COLOURS, lineChart } from '../chart.ts';
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
const CHART_MINUTES = 120;

const OUTCOMES: Record<string, (n: number) => string> = {
  retried: (n) =>
    n === 0
      ? 'No failed recipient to retry (suppressed addresses stay failed).'
      : `${n} failed recipient(s) queued again, one more attempt each.`,
  sent: () => 'The recipient is marked sent.',
  resend: () => 'The recipient is pending again: it is sent once more.',
};

function countsSection(r: CampaignReportRow, countedAt: Date): Html {
  const rows = RECIPIENT_STATUSES.filter((s) => r[s] > 0).map(
    (s) =>
      html`<tr><th scope="row">${s.replace('_', ' ')}</th><td class="num">${r[s]}</td><td class="num">${percent(r.recipients > 0 ? r[s] / r.recipients : null, 1)}</td></tr>`,
  );
  return html`<section><h2>Recipients: ${r.recipients}</h2>
<table><thead><tr><th>status</th><th>recipients</th><th>share</th></tr></thead>
<tbody>${rows}</tbody></table>
<p>Accepted by SES ${r.accepted}: delivered <strong>${r.delivered}</strong>, opened <strong>${r.opened}</strong>, clicked <strong>${r.clicked}</strong> (recipients with such an SES event, among the events kept).</p>
<p class="muted small">Counted ${time(countedAt)}; counted again every few seconds while anyone looks.</p>
</section>`;
}

function rateRow(
  what: string,
  rate: number | null,
  count: number,
  accepted: number,
  t: { review: number; pause: number },
  digits: number,
): Html {
  const where = level(rate, t);
  return html`<tr class="${where === 'below review' || where === null ? '' : 'warn'}"><th scope="row">${what}</th><td class="num">${percent(rate, digits)}</td><td>${count} of ${accepted} accepted</td><td class="num">${percent(t.review, digits - 2)}</td><td class="num">${percent(t.pause, digits - 2)}</td><td>${where ?? '-'}</td></tr>`;
}

function ratesSection(r: CampaignReportRow): Html {
  return html`<section><h2>Bounce and complaint rates</h2>
<table class="rates"><thead><tr><th></th><th>rate</th><th></th><th>SES reviews at</th><th>SES may pause at</th><th>level</th></tr></thead>
<tbody>
${rateRow('bounce rate', r.bounce_rate, r.bounced, r.accepted, SES_THRESHOLDS.bounce, 2)}
${rateRow('complaint rate', r.complaint_rate, r.complained, r.accepted, SES_THRESHOLDS.complaint, 3)}
</tbody></table>
<p class="muted small">SES judges the account over a representative volume, not one campaign: these are an early sign.</p>
</section>`;
}

function chartSection(minutes: ChartMinute[]): Html {
  if (minutes.length === 0) {
    return html`<section><h2>SES events per minute</h2><p>No SES events recorded for this campaign yet.</p></section>`;
  }
  const labels = {
    send: 'sends',
    delivery: 'deliveries',
    bounce: 'bounces',
    complaint: 'complaints',
  };
  const series = CHART_EVENTS.map((e) => ({
    label: labels[e],
    colour: COLOURS[e],
    values: minutes.map((m) => m.counts[e]),
  }));
  const rows = minutes.map(
    (m) =>
      html`<tr><td>${time(m.minute)}</td>${CHART_EVENTS.map((e) => html`<td class="num">${m.counts[e]}</td>`)}</tr>`,
  );
  return html`<section><h2>SES events per minute</h2>
${lineChart(
  'Sends, deliveries, bounces and complaints per minute (UTC)',
  minutes.map((m) => m.minute),
  series,
)}
<details><summary>The figures</summary>
<table class="chart-data"><thead><tr><th>minute (UTC)</th>${CHART_EVENTS.map((e) => html`<th>${labels[e]}</th>`)}</tr></thead><tbody>${rows}</tbody></table>
</details>
<p class="muted small">The last ${CHART_MINUTES} minutes with events, from the SES events kept.</p>
</section>`;
}

function recipientRow(r: AttentionRecipient, extra: Html | ''): Html {
  return html`<tr><td><a href="/customers/${r.customer_id}">${r.email}</a></td><td>${r.last_error ?? '-'}</td><td class="num">${r.attempt_count}</td><td>${time(r.last_attempt_at)}</td>${extra}</tr>`;
}

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
<select name="decision" required><option value="">decide...</option><option value="resend">resend</option><option value="sent">mark sent</option></select>
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
  return sendPage(request, reply, { ...shown, active: ACTIVE, status: error ? 409 : 200 });
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
      if (decision !== 'sent' && decision !== 'resend') {
        return showPage(deps, reports, request, reply, 'Choose a decision: resend or mark sent.');
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
