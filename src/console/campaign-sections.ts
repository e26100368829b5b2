// The campaign page's sections (src/console/routes/campaign.ts), as `campaign report` words
// them: recipients by status, the rates beside SES's thresholds, the per-minute chart, and a
// row of the failed or in-doubt lists.
import { type CampaignRate, campaignRates } from '../cli/commands/campaign-report.ts';
import { percent } from '../cli/output.ts';
import {
  type AttentionRecipient,
  CHART_EVENTS,
  type ChartMinute,
} from '../queries/campaign-page.ts';
import { RECIPIENT_STATUSES } from '../queries/operations.ts';
import type { CampaignReportRow } from '../queries/report.ts';
import { COLOURS, lineChart } from './chart.ts';
import { type Html, html } from './html.ts';
import { time } from './page-parts.ts';

/** The chart's span: the last two hours with events. */
export const CHART_MINUTES = 120;

export function countsSection(r: CampaignReportRow, countedAt: Date): Html {
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

function rateRow({ what, rate, count, accepted, t, digits, where }: CampaignRate): Html {
  return html`<tr class="${where === 'below review' || where === null ? '' : 'warn'}"><th scope="row">${what}</th><td class="num">${percent(rate, digits)}</td><td>${count} of ${accepted} accepted</td><td class="num">${percent(t.review, digits - 2)}</td><td class="num">${percent(t.pause, digits - 2)}</td><td>${where ?? '-'}</td></tr>`;
}

export function ratesSection(r: CampaignReportRow): Html {
  const [bounce, complaint] = campaignRates(r);
  return html`<section><h2>Bounce and complaint rates</h2>
<table class="rates"><thead><tr><th></th><th>rate</th><th></th><th>SES reviews at</th><th>SES may pause at</th><th>level</th></tr></thead>
<tbody>
${rateRow(bounce)}
${rateRow(complaint)}
</tbody></table>
<p class="muted small">SES judges the account over a representative volume, not one campaign: these are an early sign.</p>
</section>`;
}

export function chartSection(minutes: ChartMinute[]): Html {
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

export function recipientRow(r: AttentionRecipient, extra: Html | ''): Html {
  return html`<tr><td><a href="/customers/${r.customer_id}">${r.email}</a></td><td>${r.last_error ?? '-'}</td><td class="num">${r.attempt_count}</td><td>${time(r.last_attempt_at)}</td>${extra}</tr>`;
}
