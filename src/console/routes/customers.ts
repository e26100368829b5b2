// GET /customers?email=... and GET /customers/:id: the support view of `mailer customers show`
// (src/queries/customers.ts): active or not; suppressed or not, and why (the entry, the
// operator actions and SES events behind it); every recent campaign with the recipient's status
// and the reason; the event timeline. Operators suppress and lift a suppression here with a
// required note, under the CLI's rules (suppress_email, unsuppress_email: lifting an opt-out
// needs force), through withActor so operator_actions names them.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type CustomerReport, customerReport, explainCampaign } from '../../queries/customers.ts';
import { suppressEmail, unsuppressEmail } from '../../queries/operations.ts';
import { type OptOut, optOutRecord, SUPPRESSION_REASONS } from '../../queries/suppressions.ts';
import { requireOperator, withActor } from '../auth.ts';
import type { ConsoleDeps, ConsoleUser } from '../context.ts';
import { type Html, html } from '../html.ts';
import { csrfField } from '../layout.ts';
import {
  actionError,
  errorNotice,
  facts,
  formText,
  isUuid,
  notFound,
  outcomeNotice,
  outcomeUrl,
  queryText,
  sendPage,
  time,
} from '../page-parts.ts';

const ACTIVE = '/customers';
const LIMITS = { campaigns: 10, events: 50 };
/** "The history of every campaign sent to one customer": as far back as the support person asks. */
const MAX_CAMPAIGNS = 500;
// Events that explain a suppression: the person's own acts and SES's verdicts on the address.
const BLOCKING_EVENTS = new Set(['bounce', 'complaint', 'unsubscribe', 'subscription', 'reject']);

const OUTCOMES: Record<string, (n: number) => string> = {
  suppressed: () => 'Suppressed: the address is not mailed, its pending recipients too.',
  unchanged: () => 'Already suppressed at least as strongly: the entry is unchanged.',
  unsuppressed: () => 'Removed from the suppression list; future campaigns include it again.',
  not_suppressed: () => 'The address was not suppressed: nothing changed.',
};

function searchForm(value: string): Html {
  return html`<form method="get" action="/customers" class="filters" role="search">
<label>Email address <input type="search" name="email" value="${value}" required autofocus placeholder="ann@example.com"></label>
<button type="submit">Look up</button>
</form>`;
}

function customerSection(report: CustomerReport): Html {
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

function suppressionSection(report: CustomerReport, optOuts: OptOut[]): Html {
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

function actionForms(report: CustomerReport, optOuts: OptOut[], csrfToken: string): Html {
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

function campaignsSection(report: CustomerReport): Html {
  return html`<section><h2>Recent campaigns (${report.campaigns.length})</h2>
<table><thead><tr><th>campaign</th><th>date</th><th>campaign status</th><th>recipient</th><th>what happened</th><th>attempts</th><th>last attempt</th><th>message id</th></tr></thead><tbody>
${report.campaigns.map(
  (l) =>
    html`<tr><td><a href="/campaigns/${l.campaign_id}">${l.campaign_name}</a></td><td>${l.generated_date}</td><td>${l.campaign_status}</td><td>${l.recipient_status ?? 'not a recipient'}</td><td>${explainCampaign(l, report.customer)}</td><td class="num">${l.attempt_count ?? '-'}</td><td>${time(l.last_attempt_at)}</td><td>${l.ses_message_id ?? '-'}</td></tr>`,
)}
</tbody></table></section>`;
}

function eventsSection(report: CustomerReport): Html {
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

function actionsSection(report: CustomerReport): Html {
  if (report.actions.length === 0) return html``;
  return html`<section><h2>Operator actions</h2><table><thead><tr><th>time</th><th>action</th><th>by</th><th>note</th></tr></thead><tbody>
${report.actions.map((a) => html`<tr><td>${time(a.created_at)}</td><td>${a.action}</td><td>${a.actor}</td><td>${a.note ?? '-'}</td></tr>`)}
</tbody></table></section>`;
}

async function similarCustomers(deps: ConsoleDeps, text: string): Promise<string[]> {
  // The start of an address: a few candidates (customers_email_key under the C collation).
  const { rows } = await deps.pool.query<{ email: string }>(
    `select email from public.customers where email like $1 order by email limit 20`,
    [`${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`],
  );
  return rows.map((r) => r.email);
}

async function showEmail(
  deps: ConsoleDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  email: string,
  error?: string,
) {
  const user = request.user as ConsoleUser;
  const notices = html`${outcomeNotice(request.query as Record<string, unknown>, OUTCOMES)}${errorNotice(error)}`;
  if (email === '') {
    return sendPage(request, reply, {
      title: 'Customers',
      active: ACTIVE,
      body: html`${notices}${searchForm('')}<p class="muted small">The support view: why a customer did or did not get a campaign, and why an address is blocked.</p>`,
    });
  }
  if (!email.includes('@')) {
    const similar = await similarCustomers(deps, email);
    return sendPage(request, reply, {
      title: 'Customers',
      active: ACTIVE,
      body: html`${searchForm(email)}${
        similar.length === 0
          ? html`<p>No customer's address starts with “${email}”.</p>`
          : html`<ul>${similar.map((e) => html`<li><a href="/customers?email=${encodeURIComponent(e)}">${e}</a></li>`)}</ul>`
      }`,
    });
  }
  const asked = Number(queryText(request.query, 'campaigns'));
  const campaigns =
    Number.isInteger(asked) && asked > 0 ? Math.min(asked, MAX_CAMPAIGNS) : LIMITS.campaigns;
  const report = await customerReport(deps.pool, email, { ...LIMITS, campaigns });
  const optOuts = await optOutRecord(deps.pool, report.email);
  return sendPage(request, reply, {
    title: report.customer?.name ? `${report.customer.name} <${report.email}>` : report.email,
    active: ACTIVE,
    status: error ? 409 : 200,
    body: html`${notices}${searchForm(report.email)}
${customerSection(report)}
${suppressionSection(report, optOuts)}
${user.role === 'operator' ? actionForms(report, optOuts, request.csrfToken ?? '') : ''}
${campaignsSection(report)}
${
  report.campaigns.length === campaigns && campaigns < MAX_CAMPAIGNS
    ? html`<p class="pager"><a href="/customers?email=${encodeURIComponent(report.email)}&amp;campaigns=${Math.min(campaigns * 5, MAX_CAMPAIGNS)}">Older campaigns</a></p>`
    : ''
}
${eventsSection(report)}
${actionsSection(report)}`,
  });
}

function back(email: string, code: string): string {
  return outcomeUrl(`/customers?email=${encodeURIComponent(email)}`, code);
}

export function register(app: FastifyInstance, deps: ConsoleDeps): void {
  app.get('/customers', (request, reply) =>
    // `q` too: the audit page links an address that way.
    showEmail(
      deps,
      request,
      reply,
      queryText(request.query, 'email') || queryText(request.query, 'q'),
    ),
  );

  app.get<{ Params: { id: string } }>('/customers/:id', async (request, reply) => {
    const { id } = request.params;
    const { rows } = isUuid(id)
      ? await deps.pool.query<{ email: string }>(
          'select email from public.customers where customer_id = $1',
          [id],
        )
      : { rows: [] };
    const email = rows[0]?.email;
    if (!email) return notFound(request, reply, `No customer ${id}.`, ACTIVE);
    return showEmail(deps, request, reply, email);
  });

  app.post('/customers/suppress', { preHandler: requireOperator }, async (request, reply) => {
    const email = formText(request.body, 'email');
    const reason = formText(request.body, 'reason') || 'manual';
    const note = formText(request.body, 'note');
    if (!email.includes('@')) return showEmail(deps, request, reply, '', 'Give an address.');
    if (!(SUPPRESSION_REASONS as readonly string[]).includes(reason)) {
      return showEmail(
        deps,
        request,
        reply,
        email,
        `Reason must be one of ${SUPPRESSION_REASONS.join(', ')}.`,
      );
    }
    if (note === '') {
      return showEmail(deps, request, reply, email, 'Say why in the note: it is recorded.');
    }
    try {
      const added = await withActor(deps.pool, request.user as ConsoleUser, (client) =>
        suppressEmail(client, email, reason, note),
      );
      return reply.redirect(back(email, added ? 'suppressed' : 'unchanged'), 303);
    } catch (error) {
      const message = actionError(error);
      if (message === undefined) throw error;
      return showEmail(deps, request, reply, email, message);
    }
  });

  app.post('/customers/unsuppress', { preHandler: requireOperator }, async (request, reply) => {
    const email = formText(request.body, 'email');
    const note = formText(request.body, 'note');
    const force = formText(request.body, 'force') === 'yes';
    if (!email.includes('@')) return showEmail(deps, request, reply, '', 'Give an address.');
    if (note === '') {
      return showEmail(deps, request, reply, email, 'Say why in the note: it is recorded.');
    }
    try {
      const removed = await withActor(deps.pool, request.user as ConsoleUser, (client) =>
        unsuppressEmail(client, email, note, force),
      );
      return reply.redirect(back(email, removed ? 'unsuppressed' : 'not_suppressed'), 303);
    } catch (error) {
      const message = actionError(error);
      if (message === undefined) throw error;
      return showEmail(deps, request, reply, email, message);
    }
  });
}
