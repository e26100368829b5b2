// GET /customers?email=... and GET /customers/:id: the support view of `mailer customers show`
// (src/queries/customers.ts): active or not; suppressed or not, and why (the entry, the
// operator actions and SES events behind it); every recent campaign with the recipient's status
// and the reason; the event timeline. Operators suppress and lift a suppression here with a
// required note, under the CLI's rules (suppress_email, unsuppress_email: lifting an opt-out
// needs force), through withActor so operator_actions names them.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { customerReport } from '../../queries/customers.ts';
import { suppressEmail, unsuppressEmail } from '../../queries/operations.ts';
import { likePrefix, optOutRecord, SUPPRESSION_REASONS } from '../../queries/suppressions.ts';
import { requireOperator, withActor } from '../auth.ts';
import type { ConsoleDeps, ConsoleUser } from '../context.ts';
import {
  actionForms,
  actionsSection,
  campaignsSection,
  customerSection,
  eventsSection,
  suppressionSection,
} from '../customer-sections.ts';
import { type Html, html } from '../html.ts';
import {
  actionError,
  errorNotice,
  formText,
  isUuid,
  notFound,
  outcomeNotice,
  outcomeUrl,
  queryText,
  sendPage,
} from '../page-parts.ts';

const ACTIVE = '/customers';
const LIMITS = { campaigns: 10, events: 50 };
/** "The history of every campaign sent to one customer": as far back as the support person asks. */
const MAX_CAMPAIGNS = 500;

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

async function similarCustomers(deps: ConsoleDeps, text: string): Promise<string[]> {
  // The start of an address: a few candidates (customers_email_key under the C collation).
  const { rows } = await deps.pool.query<{ email: string }>(
    `select email from public.customers where email like $1 order by email limit 20`,
    [likePrefix(text)],
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
    error,
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
