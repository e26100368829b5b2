// GET /templates: the template versions of each week (`mailer templates list`; the version a
// new campaign would get marked), a preview of a week's active template rendered for a chosen
// customer or sample data (`mailer templates preview`: src/ses/preview.ts), and for operators a
// test send (`mailer campaign test`: src/ses/test-send.ts) to given addresses, recorded in
// operator_actions under the console user (POST /templates/test-send).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  type ActiveTemplate,
  activeTemplate,
  customerData,
  recordTestSend,
  sampleData,
} from '../../queries/template-preview.ts';
import { listTemplates } from '../../queries/templates.ts';
import { renderPreview } from '../../ses/preview.ts';
import type { RenderedParts } from '../../ses/rendered-mime.ts';
import {
  planTestSend,
  sendTest,
  TestSendRefused,
  TestSendUsageError,
  testSendRecord,
} from '../../ses/test-send.ts';
import { requireOperator, withActor } from '../auth.ts';
import type { ConsoleDeps, ConsoleUser } from '../context.ts';
import { type Html, html } from '../html.ts';
import { csrfField } from '../layout.ts';
import {
  errorNotice,
  facts,
  formText,
  outcomeNotice,
  outcomeUrl,
  queryText,
  sendPage,
  time,
} from '../page-parts.ts';

const ACTIVE = '/templates';
const WEEKS = [1, 2, 3, 4] as const;

const OUTCOMES: Record<string, (n: number) => string> = {
  sent: (n) => `Test sent to ${n} address(es), marked [TEST]; recorded in the audit log.`,
};

function weekFrom(value: string): number | undefined {
  const week = Number(value);
  return WEEKS.includes(week as 1) ? week : undefined;
}

function weekSelect(name: string, chosen: number | undefined): Html {
  return html`<label>Week <select name="${name}">${WEEKS.map(
    (w) => html`<option value="${w}"${w === chosen ? html` selected` : ''}>${w}</option>`,
  )}</select></label>`;
}

async function versionsSection(deps: ConsoleDeps): Promise<Html> {
  const rows = await listTemplates(deps.pool, undefined);
  return html`<section><h2>Versions per week</h2>
${
  rows.length === 0
    ? html`<p>No templates yet (mailer templates add).</p>`
    : html`<table><thead><tr><th>week</th><th>version</th><th>provider</th><th>subject</th><th>active</th><th>campaigns</th><th>added</th></tr></thead><tbody>
${rows.map(
  (t) =>
    html`<tr class="${t.in_use ? 'in-use' : ''}"><td>${t.week_of_month}</td><td>${t.version}</td><td>${t.provider}${t.provider === 'ses' ? html` (${t.provider_template_name})` : ''}</td><td>${t.subject ?? '-'}</td><td>${t.in_use ? html`<strong>in use</strong>` : t.is_active ? 'active' : 'no'}</td><td class="num">${t.campaigns}</td><td>${time(t.created_at)}</td></tr>`,
)}
</tbody></table>
<p class="muted small">“in use”: the version a new campaign of that week gets (the highest active one).</p>`
}
</section>`;
}

type Rendering =
  | { template: ActiveTemplate; rendered: RenderedParts }
  | { problem: string; template?: undefined };

// What `templates preview` renders: the week's active template for a customer or sample data.
async function renderFor(deps: ConsoleDeps, week: number, customer: string): Promise<Rendering> {
  const template = await activeTemplate(deps.pool, week);
  if (!template) return { problem: `No active template for week ${week}.` };
  const recipient = customer
    ? await customerData(deps.pool, customer, deps.config.publicUrl)
    : sampleData(deps.config.publicUrl);
  if (!recipient) return { problem: `No customer ${customer}.` };
  const ses = deps.ses;
  if (template.provider === 'ses' && !ses) {
    return {
      problem: `Version ${template.version} is an SES template, rendered by SES, and this console has no SES configured.`,
    };
  }
  try {
    const rendered = await renderPreview(
      {
        pool: deps.pool,
        ses: () => (ses ? Promise.resolve(ses) : Promise.reject(new Error('no SES'))),
      },
      template,
      recipient.data,
    );
    return { template, rendered };
  } catch (error) {
    const { name, message } = error as Error;
    return { problem: `Rendering failed: ${name}: ${message}` };
  }
}

function previewUrl(week: number, customer: string): string {
  const params = new URLSearchParams({ week: String(week) });
  if (customer) params.set('customer', customer);
  return `/templates/preview.html?${params}`;
}

async function previewSection(deps: ConsoleDeps, query: unknown): Promise<Html> {
  const week = weekFrom(queryText(query, 'week'));
  const customer = queryText(query, 'customer');
  const form = html`<form method="get" action="/templates" class="filters">
${weekSelect('week', week)}
<label>Customer <input type="email" name="customer" value="${customer}" placeholder="sample data"></label>
<button type="submit">Preview</button>
</form>`;
  if (week === undefined) return html`<section><h2>Preview</h2>${form}</section>`;
  const r = await renderFor(deps, week, customer);
  const result = !r.template
    ? html`<p class="error">${r.problem}</p>`
    : html`<p>Week ${week}, version ${r.template.version} (${r.template.provider}${r.template.provider === 'ses' ? ', rendered by SES' : ''}), for ${customer || 'sample data'}; the unsubscribe link is a placeholder.</p>
${facts([['subject', html`<span class="subject">${r.rendered.subject}</span>`]])}
${
  r.rendered.html === undefined
    ? ''
    : html`<h3>HTML</h3><iframe class="preview" sandbox="" width="100%" height="480" title="HTML body" src="${previewUrl(week, customer)}"></iframe>
<p class="muted small">Shown with its own styles; remote images are not loaded.</p>`
}
${r.rendered.text === undefined ? '' : html`<h3>Text</h3><pre class="preview-text">${r.rendered.text}</pre>`}`;
  return html`<section><h2>Preview</h2>${form}${result}</section>`;
}

// The HTML body alone, for the preview's iframe. The console's own policy forbids inline style,
// which an email's HTML is full of; this document gets a policy of its own: its inline styles
// and data: images, nothing else (no script, no remote image that would tell a third party the
// preview was opened), sandboxed, and framed only by the console.
const PREVIEW_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox";

function testSendSection(deps: ConsoleDeps, csrfToken: string): Html {
  return html`<section><h2>Test send</h2>
<form method="post" action="/templates/test-send" class="filters">
${csrfField(csrfToken)}
${weekSelect('week', undefined)}
<label>Rendered for customer <input type="email" name="customer" placeholder="sample data"></label>
<label>To <input name="to" placeholder="${deps.config.testRecipients.join(', ') || 'you@example.com'}"></label>
<button type="submit">Send test</button>
</form>
<p class="muted small">Sent as a campaign send would be, marked [TEST]; no campaign is touched. Empty “To”: TEST_RECIPIENTS.</p>
</section>`;
}

async function showTemplates(
  deps: ConsoleDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  error?: string,
) {
  const operator = (request.user as ConsoleUser).role === 'operator';
  const body = html`${outcomeNotice(request.query as Record<string, unknown>, OUTCOMES)}${errorNotice(error)}
${await versionsSection(deps)}
${await previewSection(deps, request.query)}
${operator ? testSendSection(deps, request.csrfToken ?? '') : ''}`;
  return sendPage(request, reply, { title: 'Templates', active: ACTIVE, body, error });
}

export function register(app: FastifyInstance, deps: ConsoleDeps): void {
  app.get('/templates', (request, reply) => showTemplates(deps, request, reply));

  app.get('/templates/preview.html', async (request, reply) => {
    const week = weekFrom(queryText(request.query, 'week'));
    const r: Rendering = week
      ? await renderFor(deps, week, queryText(request.query, 'customer'))
      : { problem: 'Choose a week, 1 to 4.' };
    reply
      .header('content-security-policy', PREVIEW_POLICY)
      .header('x-frame-options', 'SAMEORIGIN')
      .header('cache-control', 'no-store');
    if (!r.template || r.rendered.html === undefined) {
      const problem = r.template ? 'This template has no HTML part.' : r.problem;
      return reply.code(404).type('text/plain; charset=utf-8').send(`${problem}\n`);
    }
    return reply.type('text/html; charset=utf-8').send(r.rendered.html);
  });

  app.post('/templates/test-send', { preHandler: requireOperator }, async (request, reply) => {
    const week = weekFrom(formText(request.body, 'week'));
    if (week === undefined) return showTemplates(deps, request, reply, 'Choose a week, 1 to 4.');
    const to = formText(request.body, 'to')
      .split(/[\s,]+/)
      .filter((a) => a !== '');
    const customer = formText(request.body, 'customer') || undefined;
    let plan: Awaited<ReturnType<typeof planTestSend>>;
    try {
      plan = await planTestSend(deps.pool, deps.config, { week, to, customer });
    } catch (error) {
      if (error instanceof TestSendUsageError || error instanceof TestSendRefused) {
        return showTemplates(
          deps,
          request,
          reply,
          error.message.replace(/--to ADDRESS \(repeatable\)/, 'an address in “To”'),
        );
      }
      throw error;
    }
    if (!deps.ses) {
      return showTemplates(
        deps,
        request,
        reply,
        'This console has no SES configured: nothing sent.',
      );
    }
    const result = await sendTest({ pool: deps.pool, config: deps.config, client: deps.ses }, plan);
    if (result.sent.length > 0) {
      await withActor(deps.pool, request.user as ConsoleUser, (client) =>
        recordTestSend(client, testSendRecord(plan, result)),
      );
    }
    if (result.failed.length > 0) {
      return showTemplates(
        deps,
        request,
        reply,
        `Sent to ${result.sent.length}; failed: ${result.failed.map((f) => `${f.to} (${f.error})`).join('; ')}`,
      );
    }
    return reply.redirect(outcomeUrl('/templates', 'sent', result.sent.length), 303);
  });
}
