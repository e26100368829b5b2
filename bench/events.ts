// Figure 5, events, in two parts:
// a) POST /webhooks/ses: `mailer serve` receiving signed SNS Notifications (Send and Delivery for
//    every message, a Bounce for 1%) from autocannon, 16 connections, every notification distinct
//    (a repeated MessageId would only be a cheap duplicate). Signatures are verified for real; the
//    local signing certificate is configured (SNS_TRUST_LOCAL_CERT), i.e. cached, never fetched.
//    Baseline, same run and client: a bare node:http server that reads the body and answers 200.
// b) process_ses_event: one `mailer worker` applying the jobs the webhook enqueued.
//    Baseline, same database: the realistic job (lock a row, update it).
// Targets: webhook >= 2,000 requests/s; process_ses_event >= 1,500 events/s.
import { fork } from 'node:child_process';
import autocannon from 'autocannon';
import { freePort } from '../src/free-port.ts';
import { LOCAL_TOPIC_ARN, simulateSesEvents } from '../src/ses-local/event-publisher.ts';
import { measureRealisticJobs } from './baselines.ts';
import { createBenchDatabase, emit, quick, seedCustomers } from './lib.ts';
import { draftCampaign } from './support/campaign.ts';
import {
  backendCpuByPid,
  backendCpuSince,
  processCpuMs,
  sleep,
  startCli,
  startWorkers,
  waitFor,
} from './support/processes.ts';
import { round, sampleWaitEvents, type WaitEventShare } from './support/sampling.ts';
import { signedNotifications } from './support/sign-envelopes.ts';

const messages = quick ? 2_500 : 5_000;
const warmUp = 200;

/** autocannon POSTing each body once, in order, over 16 connections. */
async function blast(url: string, bodies: string[]) {
  let next = 0;
  let lastResponseAt = 0;
  const cpu = process.cpuUsage();
  const startedAt = performance.now();
  const result = await autocannon({
    url,
    connections: 16,
    pipelining: 1,
    amount: bodies.length,
    timeout: 30,
    method: 'POST',
    headers: {
      'content-type': 'text/plain; charset=UTF-8',
      'x-amz-sns-message-type': 'Notification',
      'x-amz-sns-topic-arn': LOCAL_TOPIC_ARN,
    },
    requests: [
      {
        setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }),
        onResponse: () => {
          lastResponseAt = performance.now();
        },
      },
    ],
  });
  const clientCpu = process.cpuUsage(cpu);
  return {
    // Completed requests from the start to the last response. Not autocannon's figures: an
    // `amount` run ends on its next one-second tick, so its `duration` is whole seconds (9,800
    // requests in 3.1 s or 3.9 s both gave 2,450/s), and its own average is per whole second.
    requests_per_second: round(
      ((result['2xx'] + result.non2xx) * 1000) / (lastResponseAt - startedAt),
    ),
    autocannon_duration_s: result.duration,
    latency_p50_ms: result.latency.p50,
    latency_p99_ms: result.latency.p99,
    ok: result['2xx'],
    non_2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    autocannon_cpu_us_per_request: round((clientCpu.user + clientCpu.system) / bodies.length),
  };
}

const db = await createBenchDatabase('events');
try {
  // Sent recipients with message ids, so every event finds its recipient.
  await seedCustomers(db.pool, messages);
  const campaignId = await draftCampaign(db, 1, 0);
  const { rows: recipients } = await db.pool.query<{
    customer_id: string;
    email: string;
    ses_message_id: string;
  }>(
    `update campaign_recipients
        set recipient_status = 'sent', attempt_count = 1, last_attempt_at = now(),
            ses_message_id = '0100' || md5(customer_id::text) || '-000000'
      where campaign_id = $1
     returning customer_id, email, ses_message_id`,
    [campaignId],
  );
  await db.pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [
    campaignId,
  ]);
  await db.pool.query('vacuum analyze');
  const events = recipients.flatMap((r, i) =>
    simulateSesEvents({
      messageId: r.ses_message_id,
      from: 'Mailer <mailer@example.com>',
      // 1% hard bounces (the mailbox simulator's bounce address, one +label per message, as
      // real bounces come from distinct addresses), the rest delivered.
      to: [i % 100 === 0 ? `bounce+${i}@simulator.amazonses.com` : r.email],
      cc: [],
      bcc: [],
      subject: 'Hello',
      headers: [],
      tags: { campaign_id: campaignId, customer_id: r.customer_id },
      acceptedAt: Date.now(),
    }),
  );
  const signing = performance.now();
  const bodies = await signedNotifications(events);
  const signMs = performance.now() - signing;

  // a) Baseline: node:http alone.
  const echo = fork(new URL('./support/http-echo.ts', import.meta.url), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const echoPort = await new Promise<number>((resolve) =>
    echo.once('message', (m) => resolve((m as { port: number }).port)),
  );
  const echoCpu0 = processCpuMs(echo.pid ?? 0) ?? 0;
  const rawHttp = await blast(`http://127.0.0.1:${echoPort}/webhooks/ses`, bodies);
  const echoCpu = (processCpuMs(echo.pid ?? 0) ?? 0) - echoCpu0;
  echo.kill('SIGTERM');

  // a) The webhook.
  const port = await freePort();
  const serve = startCli(db, ['serve', '--port', String(port), '--host', '127.0.0.1'], {
    SNS_TOPIC_ARNS: LOCAL_TOPIC_ARN,
    SNS_TRUST_LOCAL_CERT: 'true',
  });
  let webhook: Awaited<ReturnType<typeof blast>>;
  let serveCpu: number;
  let webhookPostgresCpu: number;
  let webhookWaits: WaitEventShare;
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok, {
      what: 'mailer serve',
    });
    await blast(`${url}/webhooks/ses`, bodies.slice(0, warmUp));
    const cpu0 = processCpuMs(serve.pid) ?? 0;
    const backends = await backendCpuByPid(db);
    const sampler = sampleWaitEvents(db.pool, db.name);
    webhook = await blast(`${url}/webhooks/ses`, bodies.slice(warmUp));
    serveCpu = (processCpuMs(serve.pid) ?? 0) - cpu0;
    webhookPostgresCpu = await backendCpuSince(db, backends);
    webhookWaits = await sampler.stop();
  } finally {
    await serve.stop();
  }

  // b) process_ses_event, after the realistic-job baseline on the same database.
  const baseline = await measureRealisticJobs(db, quick ? 5_000 : 20_000);
  const queued = (
    await db.pool.query<{ n: number }>(
      `select count(*)::int as n from graphile_worker.jobs where task_identifier = 'process_ses_event'`,
    )
  ).rows[0]?.n;
  const [worker] = await startWorkers(db, 1, {
    SES_ENDPOINT: 'http://127.0.0.1:9',
    SES_MAX_SEND_RATE: '0',
  });
  if (!worker) throw new Error('no worker');
  const cpu0 = processCpuMs(worker.pid) ?? 0;
  try {
    await waitFor(
      async () =>
        (
          await db.pool.query<{ n: number }>(
            'select count(*)::int as n from public.email_events_op',
          )
        ).rows[0]?.n === queued,
      { what: 'every event applied', timeoutMs: 300_000, intervalMs: 100 },
    );
  } finally {
    await sleep(200);
  }
  const workerCpu = (processCpuMs(worker.pid) ?? 0) - cpu0;
  await worker.stop();
  // Failed attempts (retried later with graphile-worker's backoff), by error.
  const failures = new Map<string, number>();
  for (const m of worker.output().matchAll(/"message":"process_ses_event: [^"]*?: ([^"]+)"/g)) {
    failures.set(m[1] as string, (failures.get(m[1] as string) ?? 0) + 1);
  }
  // Applied events over time: all of them, and the first 99% (retries after a failure come back
  // seconds later, with backoff, and would stretch the span on their own).
  const span = (
    await db.pool.query<{ seconds: number; seconds_99: number; n: number }>(
      `select extract(epoch from max(created_at) - min(created_at))::float8 as seconds,
              extract(epoch from percentile_disc(0.99) within group (order by created_at)
                                 - min(created_at))::float8 as seconds_99,
              count(*)::int as n
         from public.email_events_op`,
    )
  ).rows[0];
  const eventsPerSecond = (span?.n ?? 0) / Math.max(0.001, span?.seconds ?? 0);
  const eventsPerSecond99 = (0.99 * (span?.n ?? 0)) / Math.max(0.001, span?.seconds_99 ?? 0);
  const outcome = (
    await db.pool.query<{ status: string; n: number }>(
      `select recipient_status as status, count(*)::int as n from campaign_recipients group by 1`,
    )
  ).rows;
  const measured = bodies.length - warmUp;
  emit({
    bench: 'events',
    notifications: bodies.length,
    signing_ms: round(signMs),
    webhook: {
      ...webhook,
      serve_cpu_us_per_request: round((serveCpu * 1000) / measured),
      postgres_cpu_us_per_request: round((webhookPostgresCpu * 1000) / measured),
      wait_events: webhookWaits,
    },
    baseline_raw_node_http: {
      ...rawHttp,
      server_cpu_us_per_request: round((echoCpu * 1000) / bodies.length),
    },
    webhook_ratio_to_raw_http: round(webhook.requests_per_second / rawHttp.requests_per_second, 2),
    process_ses_event: {
      events: span?.n,
      events_per_second: round(eventsPerSecond),
      first_99_percent_per_second: round(eventsPerSecond99),
      failed_attempts: Object.fromEntries(failures),
      worker_cpu_us_per_event: round((workerCpu * 1000) / Math.max(1, span?.n ?? 0)),
      recipients: Object.fromEntries(outcome.map((o) => [o.status, o.n])),
    },
    baseline_realistic_jobs_per_second: baseline.jobs_per_second,
    process_ratio_to_realistic: round(eventsPerSecond / baseline.jobs_per_second, 2),
    process_99_ratio_to_realistic: round(eventsPerSecond99 / baseline.jobs_per_second, 2),
    target_met:
      webhook.requests_per_second >= 2000 &&
      webhook.non_2xx === 0 &&
      eventsPerSecond >= 1500 &&
      span?.n === queued,
  });
} finally {
  await db.drop();
}
