// GET /templates: the template versions of each week (`mailer templates list`; the version a
// new campaign would get marked), a preview of a week's active template rendered for a chosen
// customer or sample data (`mailer templates preview`: src/ses/preview.ts), and for operators a
// test send (`mailer campaign test`: src/ses/test-send.ts) to given addresses, recorded in
// operator_actions under the console user (POST /templates/test-send).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  activeTemplate,
  customerData,
  recordTestSend,
  sampleData,
} from '../../queries/template-preview.ts';
import { listTemplates } from '../../queries/templates.ts';
import { renderPreview } from '../../ses/preview.ts';
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

async function previewSection(deps: ConsoleDeps, query: unknown): Promise<Html> {
  const week = weekFrom(queryText(query, 'week'));
  const customer = queryText(query, 'customer');
  const form = html`<form method="get" action="/templates" class="filters">
${weekSelect('week', week)}
<label>Customer <input type="email" name="customer" value="${customer}" placeholder="sample data"></label>
<button type="submit">Preview</button>
</form>`;
  if (week === undefined) return html`<section><h2>Preview</h2>${form}</section>`;
  const template = await activeTemplate(deps.pool, week);
  let result: Html;
  if (!template) {
    result = html`<p class="error">No active template for week ${week}.</p>`;
  } else {
    const recipient = customer
      ? await customerData(deps.pool, customer, deps.config.publicUrl)
      : sampleData(deps.config.publicUrl);
    if (!recipient) {
      result = html`<p class="error">No customer ${customer}.</p>`;
    } else if (template.provider === 'ses' && !deps.ses) {
      result = html`<p class="error">Version ${template.version} is an SES template, rendered by SES, and this console has no SES configured.</p>`;
    } else {
      const ses = deps.ses;
      const rendered = await renderPreview(
        {
          pool: deps.pool,
          ses: () => (ses ? Promise.resolve(ses) : Promise.reject(new Error('no SES'))),
        },
        template,
        recipient.data,
      ).catch((error: Error) => error);
      result =
        rendered instanceof Error
          ? html`<p class="error">Rendering failed: ${rendered.name}: ${rendered.message}</p>`
          : html`<p>Week ${week}, version ${template.version} (${template.provider}${template.provider === 'ses' ? ', rendered by SES' : ''}), for ${customer || 'sample data'}; the unsubscribe link is a placeholder.</p>
${facts([['subject', html`<span class="subject">${rendered.subject}</span>`]])}
${rendered.html === undefined ? '' : html`<h3>HTML</h3><iframe class="preview" sandbox="" width="100%" height="420" title="HTML body" srcdoc="${rendered.html}"></iframe>`}
${rendered.text === undefined ? '' : html`<h3>Text</h3><pre class="preview-text">${rendered.text}</pre>`}`;
    }
  }
  return html`<section><h2>Preview</h2>${form}${result}</section>`;
}

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
  return sendPage(request, reply, {
    title: 'Templates',
    active: ACTIVE,
    body,
    status: error ? 409 : 200,
  });
}

export function register(app: FastifyInstance, deps: ConsoleDeps): void {
  app.get('/templates', (request, reply) => showTemplates(deps, request, reply));

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
