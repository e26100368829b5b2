// GET /campaigns (and / redirects here): every recent campaign with its status, a progress bar,
// the send rate and ETA of `mailer campaign status` (src/queries/campaign-estimate.ts), the
// pause reason and a stall flag; Pause / Resume / Queue buttons (POST forms with the CSRF token,
// through the SQL functions inside withActor, so operator_actions names the console user).
//
// Live updates by a short poll, not server-sent events: console.js asks GET /campaigns/rows every
// two seconds and swaps in the table body, rendered by the same code as the page. A poll needs no
// long-lived connection, so it works behind any proxy or load balancer (SSE needs buffering off
// and long timeouts on each hop) and holds no server resources between updates; it costs one
// small request per viewer per interval, answered from the shared cache of counts
// (src/queries/campaign-figures.ts), never from a count of recipients of its own. The figures
// move once a second at most anyway (the send rate's own resolution).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { duration, rate } from '../../cli/commands/campaign-status.ts';
import { formatTime, operatorError, percent } from '../../cli/output.ts';
import { type CampaignFigures, CampaignFiguresCache } from '../../queries/campaign-figures.ts';
import { RATE_WINDOW_SECONDS } from '../../queries/campaign-status.ts';
import { type ConsoleCampaign, listConsoleCampaigns } from '../../queries/console-campaigns.ts';
import { setCampaignState } from '../../queries/operations.ts';
import { actorName, requireOperator, requireQueueRight, withActor } from '../auth.ts';
import type { ConsoleDeps, ConsoleUser } from '../context.ts';
import { type Html, html } from '../html.ts';
import { csrfField, page } from '../layout.ts';
import { isUuid } from '../page-parts.ts';

const LIMIT = 50;
export const POLL_INTERVAL_MS = 2_000;

// An action's outcome travels through its redirect as a fixed code: a link someone sends cannot
// make the console say anything else.
const OUTCOMES: Record<string, string> = {
  paused: 'Campaign paused: the workers stop taking its recipients.',
  resumed: 'Campaign resumed.',
  queued: 'Campaign queued: the workers start sending.',
  requested: 'Queueing requested: another person with the right to queue must approve it.',
  approved: 'Approved and queued.',
};

function badge(status: string): Html {
  return html`<span class="badge badge-${status}">${status}</span>`;
}

function progressCell(f: CampaignFigures | undefined): Html {
  if (!f) return html`<td class="progress"><span class="muted">counting…</span></td>`;
  const p = f.progress;
  const open = (p.counts.pending ?? 0) + (p.counts.sending ?? 0);
  const finished = p.recipients - open;
  const share = p.recipients > 0 ? finished / p.recipients : 0;
  return html`<td class="progress">
  <progress max="${p.recipients}" value="${finished}" aria-label="recipients done">${percent(share, 1)}</progress>
  <span class="figure" data-field="done">${finished.toLocaleString('en')}</span> / ${p.recipients.toLocaleString('en')}
  <span class="muted">(${percent(share, 1)})</span>
  <div class="counts muted">sent ${(p.counts.sent ?? 0).toLocaleString('en')}${p.counts.failed ? html`, failed ${p.counts.failed}` : ''}${p.counts.in_doubt ? html`, in doubt ${p.counts.in_doubt}` : ''}${p.counts.bounced ? html`, bounced ${p.counts.bounced}` : ''}${p.counts.suppressed ? html`, suppressed ${p.counts.suppressed}` : ''}</div>
</td>`;
}

function etaCell(c: ConsoleCampaign, f: CampaignFigures | undefined): Html {
  if (!f) return html`<td>-</td>`;
  const e = f.estimate;
  if (c.status === 'paused') return html`<td class="muted">none while paused</td>`;
  if (c.status === 'done') {
    return html`<td>done in ${e.duration_seconds === null ? '-' : duration(e.duration_seconds)}</td>`;
  }
  if (c.status === 'draft') {
    return html`<td class="muted">${c.scheduled_at ? html`scheduled for ${formatTime(c.scheduled_at)}` : 'not queued'}</td>`;
  }
  if (e.eta_seconds !== null) return html`<td>${duration(e.eta_seconds)}</td>`;
  if (e.stalled_seconds !== null) {
    return html`<td class="warn">unknown: SES has accepted nothing for ${duration(e.stalled_seconds)}</td>`;
  }
  return html`<td class="muted">unknown: nothing sent yet</td>`;
}

function actions(c: ConsoleCampaign, user: ConsoleUser, csrf: string, approval: boolean): Html {
  const form = (action: string, label: string, confirm: string, kind = '') =>
    html`<form method="post" action="/campaigns/${c.campaign_id}/${action}" class="inline" data-confirm="${confirm}">${csrfField(csrf)}<button type="submit" class="${kind}">${label}</button></form>`;
  const buttons: Html[] = [];
  if (user.role === 'operator' && (c.status === 'queued' || c.status === 'sending')) {
    buttons.push(
      form('pause', 'Pause', `Pause ${c.campaign_name}? The workers stop sending it.`, 'danger'),
    );
  }
  if (user.role === 'operator' && c.status === 'paused') {
    buttons.push(form('resume', 'Resume', `Resume ${c.campaign_name}? Sending starts again.`));
  }
  if (user.canQueue && c.status === 'draft' && !c.generating) {
    if (!approval) {
      buttons.push(
        form(
          'queue',
          'Queue',
          `Queue ${c.campaign_name}? It is sent to every recipient.`,
          'primary',
        ),
      );
    } else if (!c.queue_requested_by) {
      buttons.push(form('queue', 'Request queue', `Ask for ${c.campaign_name} to be queued?`));
    } else if (c.queue_requested_by !== actorName(user)) {
      buttons.push(html`<span class="muted">asked by ${c.queue_requested_by}</span>`);
      buttons.push(
        form(
          'approve',
          'Approve queue',
          `Approve and queue ${c.campaign_name}? It is sent to every recipient.`,
          'primary',
        ),
      );
    } else {
      buttons.push(html`<span class="muted">waiting for a second person's approval</span>`);
    }
  }
  return html`<td class="actions">${buttons}</td>`;
}

function statusCell(c: ConsoleCampaign, f: CampaignFigures | undefined): Html {
  return html`<td>${badge(c.status)}${c.generating ? html` <span class="badge badge-draft">generating</span>` : ''}
  ${f?.stalledSeconds != null ? html`<div><span class="badge badge-stalled" title="a sending campaign with no send accepted by SES for a minute">stalled ${duration(f.stalledSeconds)}</span></div>` : ''}
  ${c.pause_reason && c.status === 'paused' ? html`<div class="reason">${c.pause_reason}</div>` : ''}
  ${f?.live.errors.length ? html`<div class="reason">errors: ${f.live.errors.slice(0, 3).map((e, i) => html`${i ? ', ' : ''}${e.kind} ${e.recipients}`)}</div>` : ''}</td>`;
}

export function campaignRows(
  campaigns: ConsoleCampaign[],
  figures: Map<string, CampaignFigures | undefined>,
  user: ConsoleUser,
  csrf: string,
  approval: boolean,
): Html {
  if (campaigns.length === 0) {
    return html`<tr><td colspan="6" class="muted">No campaigns yet (mailer campaign generate).</td></tr>`;
  }
  return html`${campaigns.map((c) => {
    const f = figures.get(c.campaign_id);
    return html`<tr id="campaign-${c.campaign_id}" data-status="${c.status}">
<td class="name"><a href="/campaigns/${c.campaign_id}">${c.campaign_name}</a><div class="muted small">week ${c.week_of_month}, template v${c.template_version}</div></td>
${statusCell(c, f)}
${progressCell(f)}
<td class="num">${f && f.estimate.rate_per_second !== null ? rate(f.estimate.rate_per_second) : '-'}</td>
${etaCell(c, f)}
${actions(c, user, csrf, approval)}
</tr>`;
  })}`;
}

export function register(app: FastifyInstance, deps: ConsoleDeps): void {
  const cache = new CampaignFiguresCache(deps.pool, {
    pacingRate: deps.config.ses.maxSendRate,
    onError: (error) => deps.logger.warn({ err: error }, 'console: counting a campaign failed'),
  });
  const approval = deps.config.console.queueApproval;
  app.addHook('onClose', () => cache.close());

  async function rows(request: FastifyRequest): Promise<{ body: Html; countedAt: Date | null }> {
    const campaigns = await listConsoleCampaigns(deps.pool, LIMIT);
    const figures = await cache.getMany(campaigns);
    const user = request.user as ConsoleUser;
    let countedAt: Date | null = null;
    for (const f of figures.values()) {
      if (f && (countedAt === null || f.countedAt < countedAt)) countedAt = f.countedAt;
    }
    return {
      body: campaignRows(campaigns, figures, user, request.csrfToken ?? '', approval),
      countedAt,
    };
  }

  async function showPage(
    request: FastifyRequest,
    reply: FastifyReply,
    notice?: Html,
    status = 200,
  ) {
    const { body, countedAt } = await rows(request);
    const done = (request.query as { done?: string }).done;
    const message = done ? OUTCOMES[done] : undefined;
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(
        page({
          title: 'Campaigns',
          active: '/campaigns',
          user: request.user as ConsoleUser,
          csrfToken: request.csrfToken ?? '',
          body: html`${message ? html`<p class="notice" role="status">${message}</p>` : ''}${notice ?? ''}
<p class="muted small">Rate: sends SES accepted over the last ${RATE_WINDOW_SECONDS} s. Updated live every ${POLL_INTERVAL_MS / 1000} s; counts as of <span id="counted-at">${countedAt ? formatTime(countedAt) : '-'}</span>.</p>
<table class="campaigns">
<thead><tr><th>Campaign</th><th>Status</th><th>Progress</th><th class="num">Rate</th><th>ETA</th><th></th></tr></thead>
<tbody data-live="/campaigns/rows" data-interval="${POLL_INTERVAL_MS}">${body}</tbody>
</table>`,
        }).text,
      );
  }

  app.get('/campaigns', (request, reply) => showPage(request, reply));

  // The table body alone, for console.js's poll.
  app.get('/campaigns/rows', async (request, reply) => {
    const { body, countedAt } = await rows(request);
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('x-counted-at', countedAt ? formatTime(countedAt) : '-')
      .send(body.text);
  });

  const act = (
    action: 'pause' | 'resume' | 'queue' | 'approve',
    preHandler: typeof requireOperator,
  ) =>
    app.post<{ Params: { id: string } }>(
      `/campaigns/:id/${action}`,
      { preHandler },
      async (request, reply) => {
        const id = request.params.id;
        if (!isUuid(id)) return reply.code(404).send('no such campaign');
        const user = request.user as ConsoleUser;
        try {
          const outcome = await withActor(deps.pool, user, async (client) => {
            if (action === 'approve') {
              await client.query('select public.approve_campaign_queue($1)', [id]);
              return 'approved';
            }
            if (action === 'queue' && approval) {
              await client.query('select public.request_campaign_queue($1)', [id]);
              return 'requested';
            }
            await setCampaignState(client, action, id);
            return action === 'pause' ? 'paused' : action === 'resume' ? 'resumed' : 'queued';
          });
          cache.invalidate(id);
          deps.logger.info({ campaign_id: id, actor: actorName(user) }, `console: ${action}`);
          return reply.redirect(`/campaigns?done=${outcome}`, 303);
        } catch (error) {
          const message =
            operatorError(error) ??
            ((error as { code?: string }).code === '42501' ? (error as Error).message : undefined);
          if (message === undefined) throw error;
          return showPage(request, reply, html`<p class="error" role="alert">${message}</p>`, 409);
        }
      },
    );
  act('pause', requireOperator);
  act('resume', requireOperator);
  act('queue', requireQueueRight);
  act('approve', requireQueueRight);
}
