// GET /jobs: what `mailer jobs` shows (src/queries/jobs.ts): graphile-worker's queue depth per
// task (waiting, scheduled, running, retrying, failed) and the failed jobs with their last error.
// Operators run a failed job again (POST /jobs/:id/retry, retry_job) or all of them, of one task
// or every task (POST /jobs/retry-failed, retry_failed_jobs), through withActor, so
// operator_actions names them.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatAge } from '../../cli/output.ts';
import { failedJobs, jobQueueSummary, retryFailedJobs, retryJob } from '../../queries/jobs.ts';
import { requireOperator, withActor } from '../auth.ts';
import type { ConsoleDeps, ConsoleUser } from '../context.ts';
import { type Html, html } from '../html.ts';
import { csrfField } from '../layout.ts';
import {
  actionError,
  errorNotice,
  formText,
  outcomeNotice,
  outcomeUrl,
  queryText,
  sendPage,
  time,
} from '../page-parts.ts';

const ACTIVE = '/jobs';
const FAILED_SHOWN = 100;

// The first line in the table (graphile-worker's errors end with a stack); the rest on request.
function lastError(text: string | null): Html | string {
  if (!text) return '-';
  const [first = '', ...rest] = text.split('\n');
  return rest.length === 0
    ? first
    : html`${first}<details><summary>more</summary><pre>${rest.join('\n')}</pre></details>`;
}

const OUTCOMES: Record<string, (n: number) => string> = {
  retried: (n) => `Job ${n} will run again now (attempts reset).`,
  retried_all: (n) => `${n} failed job(s) will run again now (attempts reset).`,
};

async function showJobs(
  deps: ConsoleDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  error?: string,
) {
  const task = queryText(request.query, 'task') || undefined;
  const [depth, failed] = await Promise.all([
    jobQueueSummary(deps.pool),
    failedJobs(deps.pool, task, FAILED_SHOWN),
  ]);
  const operator = (request.user as ConsoleUser).role === 'operator';
  const token = request.csrfToken ?? '';
  const totalFailed = depth
    .filter((d) => !task || d.task_identifier === task)
    .reduce((n, d) => n + d.failed, 0);
  const body = html`${outcomeNotice(request.query as Record<string, unknown>, OUTCOMES)}${errorNotice(error)}
<section><h2>Queue depth per task</h2>
${
  depth.length === 0
    ? html`<p>No jobs.</p>`
    : html`<table><thead><tr><th>task</th><th>waiting</th><th>scheduled</th><th>running</th><th>retrying</th><th>failed</th><th>oldest waiting</th></tr></thead><tbody>
${depth.map((d) => html`<tr><td><a href="/jobs?task=${encodeURIComponent(d.task_identifier)}">${d.task_identifier}</a></td><td class="num">${d.ready}</td><td class="num">${d.scheduled}</td><td class="num">${d.running}</td><td class="num">${d.retrying}</td><td class="num">${d.failed}</td><td>${d.oldest_ready_at ? formatAge(d.oldest_ready_at) : '-'}</td></tr>`)}
</tbody></table>`
}
<p class="muted small">Waiting: due and not taken yet; scheduled: due later; retrying: failed before and will run again; failed: attempts used up, runs only when retried.</p>
</section>
<section><h2>Failed jobs${task ? html` of ${task}` : ''} (${failed.length} of ${totalFailed} shown)</h2>
${task ? html`<p><a href="/jobs">All tasks</a></p>` : ''}
${
  operator && failed.length > 0
    ? html`<form method="post" action="/jobs/retry-failed" class="filters">
${csrfField(token)}
${task ? html`<input type="hidden" name="task" value="${task}">` : ''}
<button type="submit">Retry every failed job${task ? html` of ${task}` : ''}</button>
</form>`
    : ''
}
${
  failed.length === 0
    ? html`<p>No failed jobs.</p>`
    : html`<table><thead><tr><th>id</th><th>task</th><th>attempts</th><th>failed at</th><th>last error</th>${operator ? html`<th></th>` : ''}</tr></thead><tbody>
${failed.map(
  (j) =>
    html`<tr><td>${j.id}</td><td>${j.task_identifier}</td><td>${j.attempts}/${j.max_attempts}</td><td>${time(j.updated_at)}</td><td class="details">${lastError(j.last_error)}</td>${
      operator
        ? html`<td><form method="post" action="/jobs/${j.id}/retry" class="inline">${csrfField(token)}<button type="submit">Retry</button></form></td>`
        : ''
    }</tr>`,
)}
</tbody></table>`
}
</section>`;
  return sendPage(request, reply, { title: 'Jobs', active: ACTIVE, body, error });
}

export function register(app: FastifyInstance, deps: ConsoleDeps): void {
  app.get('/jobs', (request, reply) => showJobs(deps, request, reply));

  app.post<{ Params: { id: string } }>(
    '/jobs/:id/retry',
    { preHandler: requireOperator },
    async (request, reply) => {
      const { id } = request.params;
      if (!/^\d{1,18}$/.test(id)) return showJobs(deps, request, reply, `No job ${id}.`);
      try {
        await withActor(deps.pool, request.user as ConsoleUser, (client) => retryJob(client, id));
        return reply.redirect(outcomeUrl('/jobs', 'retried', Number(id)), 303);
      } catch (error) {
        const message = actionError(error);
        if (message === undefined) throw error;
        return showJobs(deps, request, reply, message);
      }
    },
  );

  app.post('/jobs/retry-failed', { preHandler: requireOperator }, async (request, reply) => {
    const task = formText(request.body, 'task') || undefined;
    const n = await withActor(deps.pool, request.user as ConsoleUser, (client) =>
      retryFailedJobs(client, task),
    );
    const back = task ? `/jobs?task=${encodeURIComponent(task)}` : '/jobs';
    return reply.redirect(outcomeUrl(back, 'retried_all', n), 303);
  });
}
