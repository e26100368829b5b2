// Prometheus metrics (prom-client). Two kinds:
// - counters kept by the process that does the work (sends by outcome, SES errors by name, events
//   by type): a worker process serves them on WORKER_METRICS_PORT, `start` and `serve` on /metrics;
// - gauges read from the database at scrape time (queue depth, in-doubt recipients, campaign
//   progress), the same whichever process is scraped.
import type pg from 'pg';
import { Counter, Gauge, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  sends: Counter<'outcome'>;
  sesErrors: Counter<'name'>;
  events: Counter<'type'>;
}

export function createMetrics(pool: pg.Pool): Metrics {
  const registry = new Registry();
  const sends = new Counter({
    name: 'mailer_sends_total',
    help: 'send_recipient outcomes in this process (sent, failed, in_doubt, released, paused)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const sesErrors = new Counter({
    name: 'mailer_ses_errors_total',
    help: 'SendEmail errors by SES error name in this process',
    labelNames: ['name'] as const,
    registers: [registry],
  });
  const events = new Counter({
    name: 'mailer_ses_events_total',
    help: 'SES events applied by process_ses_event in this process, by type',
    labelNames: ['type'] as const,
    registers: [registry],
  });

  // prom-client collects every metric at once, so the database gauges share one refresh per
  // scrape (three queries), whichever of them asks first.
  let refreshing: Promise<void> | undefined;
  const refresh = () => {
    refreshing ??= refreshFromDatabase().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };
  const queueDepth = new Gauge({
    name: 'mailer_queue_depth',
    help: 'graphile-worker jobs waiting or running, by task (failed jobs excluded)',
    labelNames: ['task'] as const,
    registers: [registry],
    collect: refresh,
  });
  const failedJobs = new Gauge({
    name: 'mailer_failed_jobs',
    help: 'graphile-worker jobs that used up their attempts, by task',
    labelNames: ['task'] as const,
    registers: [registry],
    collect: refresh,
  });
  const inDoubt = new Gauge({
    name: 'mailer_recipients_in_doubt',
    help: 'recipients whose SendEmail outcome is unknown (see `mailer doubt list`)',
    registers: [registry],
    collect: refresh,
  });
  const progress = new Gauge({
    name: 'mailer_campaign_recipients',
    help: 'recipients of queued, sending and paused campaigns, by campaign and status',
    labelNames: ['campaign_id', 'campaign_status', 'status'] as const,
    registers: [registry],
    collect: refresh,
  });

  async function refreshFromDatabase(): Promise<void> {
    queueDepth.reset();
    failedJobs.reset();
    progress.reset();
    const jobs = await pool.query<{ task: string; failed: boolean; n: number }>(
      `select task_identifier as task, attempts >= max_attempts as failed, count(*)::int as n
         from graphile_worker.jobs group by 1, 2`,
    );
    for (const row of jobs.rows) {
      (row.failed ? failedJobs : queueDepth).set({ task: row.task }, row.n);
    }
    const doubt = await pool.query<{ n: number }>(
      `select count(*)::int as n from public.campaign_recipients where recipient_status = 'in_doubt'`,
    );
    inDoubt.set(doubt.rows[0]?.n ?? 0);
    const campaigns = await pool.query<{
      campaign_id: string;
      campaign_status: string;
      status: string;
      n: number;
    }>(
      `select c.campaign_id, c.status as campaign_status, r.recipient_status as status,
              count(*)::int as n
         from public.campaigns c join public.campaign_recipients r using (campaign_id)
        where c.status in ('queued', 'sending', 'paused')
        group by 1, 2, 3`,
    );
    for (const row of campaigns.rows) {
      progress.set(
        {
          campaign_id: row.campaign_id,
          campaign_status: row.campaign_status,
          status: row.status,
        },
        row.n,
      );
    }
  }

  return { registry, sends, sesErrors, events };
}
