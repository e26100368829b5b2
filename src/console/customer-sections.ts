// The customer page's sections (src/console/routes/customers.ts), the support view of
// `customers show`: who they are, whether and why the address is suppressed, the operator's
// forms, each recent campaign with what happened, the event timeline, the operator actions.
import { type CustomerReport, explainCampaign } from '../queries/customers.ts';
import { type OptOut, SUPPRESSION_REASONS } from '../queries/suppressions.ts';
import { type Html, html } from './html.ts';
import { csrfField } from './layout.ts';
import { facts, time } from './page-parts.ts';

// Events that explain a suppression: the person's own acts and SES's verdicts on the address.
const BLOCKING_EVENTS = new Set(['bounce', 'complaint', 'unsubscribe', 'subscription', 'reject']);

export function customerSection(report: CustomerReport): Html {
  const c = report.customer;
  if (!c) {
    return html`<section><h2>Customer</h2><p class="warn">No customer has this address${report.problem ? html` (${report.problem})` : ''}.</p></section>`;
  }
  return html`<section><h2>Customer</h2>${facts([
    ['name', c.name ?? '-'],
    ['company', c.company ?? '-'],
    ['country', c.country ?? '-'],
    ['active', html`<strong>${c.is_active ? 'yes' : 'no: not included in new campaigns'}</strong>`],
    ['customer id', html`<a href="/customers/${c.customer_id}">${c.customer_id}</a>`],
    ['added', time(c.created_at)],
  ])}</section>`;
}

export function suppressionSection(report: CustomerReport, optOuts: OptOut[]): Html {
  const s = report.suppression;
  const evidence = report.events.filter((e) => BLOCKING_EVENTS.has(e.event_type));
  const acts = report.actions.filter((a) => a.action === 'suppress' || a.action === 'unsuppress');
  return html`<section><h2>Suppression</h2>
${
  s
    ? html`<p class="warn"><strong>Suppressed</strong>: ${s.reason}, by ${s.source} (${s.source === 'ses' ? 'an SES event' : s.source === 'user' ? 'the person, by the unsubscribe link' : 'an operator'}), since ${time(s.created_at)}${s.updated_at > s.created_at ? html`, reason last changed ${time(s.updated_at)}` : ''}.</p>`
    : html`<p><strong>Not suppressed</strong>: may be mailed.</p>`
}
${
  acts.length + evidence.length > 0
    ? html`<h3>Why: what was recorded</h3><ul class="why">
${acts.map((a) => html`<li>${time(a.created_at)} <strong>${a.action}</strong> by ${a.actor}${a.details.reason ? html` (${String(a.details.reason)})` : ''}${a.note ? html`: “${a.note}”` : ''}</li>`)}
${evidence.map((e) => html`<li>${time(e.event_time)} SES <strong>${e.event_type}</strong> event${e.detail ? html`: ${e.detail}` : ''}${e.campaign_id ? html` (<a href="/campaigns/${e.campaign_id}">campaign</a>)` : ''}</li>`)}
</ul>`
    : ''
}
${
  s && acts.length + evidence.length === 0
    ? html`<p class="muted small">Nothing behind this entry is kept any more: SES and unsubscribe events are pruned after EVENTS_RETENTION_DAYS (the entry itself never is).</p>`
    : ''
}
${
  optOuts.length > 0
    ? html`<p class="muted small">The person opted out (${optOuts.map((o) => html`${o.reason} ${time(o.recorded_at)} in ${o.recorded_in}`)}): lifting a suppression needs their renewed consent (force).</p>`
    : ''
}
</section>`;
}

export function actionForms(report: CustomerReport, optOuts: OptOut[], csrfToken: string): Html {
  const s = report.suppression;
  const needsForce =
    optOuts.length > 0 || (s !== undefined && ['unsubscribe', 'complaint'].includes(s.reason));
  const suppress = html`<form method="post" action="/customers/suppress" class="filters">
${csrfField(csrfToken)}
<input type="hidden" name="email" value="${report.email}">
<label>Reason <select name="reason">${SUPPRESSION_REASONS.map((r) => html`<option value="${r}">${r}</option>`)}</select></label>
<label>Note (required, recorded) <input name="note" required maxlength="500" placeholder="asked by phone, ticket 4711"></label>
<button type="submit">${s ? 'Suppress (stronger reason)' : 'Suppress'}</button>
</form>`;
  const lift = s
    ? html`<form method="post" action="/customers/unsuppress" class="filters">
${csrfField(csrfToken)}
<input type="hidden" name="email" value="${report.email}">
<label>Note (required, recorded) <input name="note" required maxlength="500" placeholder="mailbox fixed, ticket 4712"></label>
${needsForce ? html`<label><input type="checkbox" name="force" value="yes"> Force: the person unsubscribed or complained, and consented again</label>` : ''}
<button type="submit">Remove from the suppression list</button>
</form>`
    : '';
  return html`<section><h2>Actions</h2>${suppress}${lift}</section>`;
}

export function campaignsSection(report: CustomerReport): Html {
  return html`<section><h2>Recent campaigns (${report.campaigns.length})</h2>
<table><thead><tr><th>campaign</th><th>date</th><th>campaign status</th><th>recipient</th><th>what happened</th><th>attempts</th><th>last attempt</th><th>message id</th></tr></thead><tbody>
${report.campaigns.map(
  (l) =>
    html`<tr><td><a href="/campaigns/${l.campaign_id}">${l.campaign_name}</a></td><td>${l.generated_date}</td><td>${l.campaign_status}</td><td>${l.recipient_status ?? 'not a recipient'}</td><td>${explainCampaign(l, report.customer)}</td><td class="num">${l.attempt_count ?? '-'}</td><td>${time(l.last_attempt_at)}</td><td>${l.ses_message_id ?? '-'}</td></tr>`,
)}
</tbody></table></section>`;
}

export function eventsSection(report: CustomerReport): Html {
  return html`<section><h2>Event timeline (${report.events.length})</h2>
${
  report.events.length === 0
    ? html`<p>No SES events kept for this address.</p>`
    : html`<table><thead><tr><th>time</th><th>event</th><th>detail</th><th>campaign</th><th>message id</th></tr></thead><tbody>
${report.events.map((e) => html`<tr><td>${time(e.event_time)}</td><td>${e.event_type}</td><td>${e.detail ?? '-'}</td><td>${e.campaign_id ? html`<a href="/campaigns/${e.campaign_id}">${e.campaign_id.slice(0, 8)}</a>` : '-'}</td><td>${e.ses_message_id ?? '-'}</td></tr>`)}
</tbody></table>`
}
</section>`;
}

export function actionsSection(report: CustomerReport): Html {
  if (report.actions.length === 0) return html``;
  return html`<section><h2>Operator actions</h2><table><thead><tr><th>time</th><th>action</th><th>by</th><th>note</th></tr></thead><tbody>
${report.actions.map((a) => html`<tr><td>${time(a.created_at)}</td><td>${a.action}</td><td>${a.actor}</td><td>${a.note ?? '-'}</td></tr>`)}
</tbody></table></section>`;
}
