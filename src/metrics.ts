// Prometheus metrics (prom-client). Three kinds:
// - counters kept by the process that does the work (sends by outcome, SES errors by name, events
//   by type, paced sends that missed their slot): a worker process serves them on
//   WORKER_METRICS_PORT, `start` and `serve` on METRICS_PORT (src/http/metrics.ts; never on the
//   public listener);
// - gauges read from the database (queue depth, in-doubt recipients, campaign progress), the same
//   whichever process is scraped, read at most once per DATABASE_REFRESH_MS;
// - prom-client's default process metrics (CPU, memory, event loop lag, GC, handles).
import type pg from 'pg';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';

// The campaign progress gauge counts the recipients of every queued, sending or paused campaign by
// status: a scan of up to a million rows per campaign. Scrapes closer together than this (several
// Prometheus servers, a scrape interval of a second) get the last reading instead.
export const DATABASE_REFRESH_MS = 10_000;

export interface Metrics {
  registry: Registry;
  sends: Counter<'outcome'>;
  sesErrors: Counter<'name'>;
  events: Counter<'type'>;
  slotsMissed: Counter;
}

export function createMetrics(
  pool: pg.Pool,
  options: { databaseRefreshMs?: number; now?: () => number } = {},
): Metrics {
  const databaseRefreshMs = options.databaseRefreshMs ?? DATABASE_REFRESH_MS;
  const now = options.now ?? Date.now;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
  const slotsMissed = new Counter({
    name: 'mailer_send_slots_missed_total',
    help:
      'paced sends of this process that would have left too late after their slot and took a ' +
      'new one (a busy CPU or a slow database: fewer sends per second than the rate)',
    registers: [registry],
  });

  // prom-client collects every metric at once, so the database gauges share one refresh per
  // scrape (three queries), whichever of them asks first, and none within databaseRefreshMs of
  // the last one that succeeded.
  let refreshing: Promise<void> | undefined;
  let refreshedAt = Number.NEGATIVE_INFINITY;
  const refresh = async () => {
    if (now() - refreshedAt < databaseRefreshMs) return;
    refreshing ??= refreshFromDatabase()
      .then(() => {
        refreshedAt = now();
      })
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  };
  // The gauges read from the database when scraped (at most every databaseRefreshMs).
  const databaseGauge = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    new Gauge({ name, help, labelNames, registers: [registry], collect: refresh });
  const queueDepth = databaseGauge(
    'mailer_queue_depth',
    'graphile-worker jobs waiting or running, by task (failed jobs excluded)',
    ['task'],
  );
  const failedJobs = databaseGauge(
    'mailer_failed_jobs',
    'graphile-worker jobs that used up their attempts, by task',
    ['task'],
  );
  const inDoubt = databaseGauge(
    'mailer_recipients_in_doubt',
    'recipients whose SendEmail outcome is unknown (see `mailer doubt list`)',
  );
  const progress = databaseGauge(
    'mailer_campaign_recipients',
    'recipients of queued, sending and paused campaigns, by campaign and status',
    ['campaign_id', 'campaign_status', 'status'],
  );

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
    // campaign_recipients_in_doubt_idx (in-doubt recipients are few): without it, a scan of every
    // campaign's recipients (88 ms at 2M rows; 0.05 ms with it).
    const doubt = await pool.query<{ n: number }>(
      `select count(*)::int as n from public.campaign_recipients where recipient_status = 'in_doubt'`,
    );
    inDoubt.set(doubt.rows[0]?.n ?? 0);
    // Only the campaigns under way, each read by its primary key: the plain join was planned as a
    // scan of every recipient of every campaign ever sent (2M rows, 120 ms, and growing), where
    // this reads the active ones' (200k rows, 50 ms).
    const campaigns = await pool.query<{
      campaign_id: string;
      campaign_status: string;
      status: string;
      n: number;
    }>(
      `select c.campaign_id, c.status as campaign_status, s.status, s.n
         from public.campaigns c
         cross join lateral (select r.recipient_status as status, count(*)::int as n
                               from public.campaign_recipients r
                              where r.campaign_id = c.campaign_id
                              group by 1) s
        where c.status in ('queued', 'sending', 'paused')`,
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

  return { registry, sends, sesErrors, events, slotsMissed };
}
