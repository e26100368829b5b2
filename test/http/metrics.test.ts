// /metrics: on a listener of its own (never the public one with the webhook and the unsubscribe
// pages), bound to the loopback interface unless METRICS_HOST says otherwise; database gauges read
// at most once per refresh interval; prom-client's process metrics; and a worker's own counters.
import test from 'ava';
import type pg from 'pg';
import { openMetricsListener } from '../../src/http/metrics.ts';
import { createMetrics, DATABASE_REFRESH_MS } from '../../src/metrics.ts';
import { startCli, waitFor } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createCampaign, createRecipient, createTemplate } from '../helpers/factories.ts';
import { generate, seedCustomers, startPipeline, waitForDone } from '../pipeline/harness.ts';
import { startServer, testLogger } from './helpers.ts';

async function campaignWithRecipients(pool: pg.Pool, statuses: string[]): Promise<string> {
  const template = await createTemplate(pool);
  const campaign = await createCampaign(pool, { template_id: template.template_id });
  for (const status of statuses) {
    await createRecipient(pool, campaign.campaign_id, status, { attempts: 0 });
  }
  await pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [
    campaign.campaign_id,
  ]);
  return campaign.campaign_id;
}

test('GET /metrics reports queue depth, in-doubt recipients, campaign progress and the process', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const campaignId = await campaignWithRecipients(db.pool, ['pending', 'pending', 'in_doubt']);
  const listener = await openMetricsListener(createMetrics(db.pool), {
    port: 0,
    host: '127.0.0.1',
    logger: testLogger,
  });
  t.teardown(() => listener.close());

  const response = await fetch(`${listener.url}/metrics`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /text\/plain/);
  const body = await response.text();
  t.regex(body, /mailer_queue_depth\{task="send_recipient"\} 2/);
  t.regex(body, /mailer_recipients_in_doubt 1/);
  t.regex(
    body,
    new RegExp(
      `mailer_campaign_recipients\\{campaign_id="${campaignId}",campaign_status="queued",status="pending"\\} 2`,
    ),
  );
  t.regex(body, /# TYPE mailer_sends_total counter/);
  // prom-client's default process metrics.
  t.regex(body, /^process_cpu_user_seconds_total \d/m);
  t.regex(body, /^process_resident_memory_bytes \d/m);
  t.regex(body, /^nodejs_eventloop_lag_seconds \d/m);
  t.regex(body, /^nodejs_heap_size_used_bytes \d/m);
  t.is((await fetch(`${listener.url}/metrics`, { method: 'POST' })).status, 405);
  t.is((await fetch(`${listener.url}/webhooks/ses`, { method: 'POST' })).status, 404);
});

test('the public listener (webhook, unsubscribe pages) has no /metrics', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const server = await startServer(db.pool);
  t.teardown(() => server.close());
  const response = await fetch(`${server.url}/metrics`);
  t.is(response.status, 404);
  t.notRegex(await response.text(), /mailer_/);
});

test('scrapes within the refresh interval read the database once', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const campaignId = await campaignWithRecipients(db.pool, ['pending', 'pending']);
  let queries = 0;
  const counting = {
    query: (...args: Parameters<pg.Pool['query']>) => {
      queries++;
      return (db.pool.query as (...a: unknown[]) => unknown)(...args);
    },
  } as unknown as pg.Pool;
  let clock = 1_000_000;
  const metrics = createMetrics(counting, { now: () => clock });
  const pending = (body: string) =>
    new RegExp(
      `campaign_id="${campaignId}",campaign_status="queued",status="pending"\\} (\\d+)`,
    ).exec(body)?.[1];

  t.is(pending(await metrics.registry.metrics()), '2');
  const perRefresh = queries;
  t.true(perRefresh > 0);
  await db.pool.query(
    `update campaign_recipients set recipient_status = 'sent'
                        where campaign_id = $1 and recipient_status = 'pending'`,
    [campaignId],
  );
  clock += DATABASE_REFRESH_MS - 1;
  for (let i = 0; i < 5; i++) t.is(pending(await metrics.registry.metrics()), '2');
  t.is(queries, perRefresh, 'no query within the refresh interval');

  clock += 2;
  t.is(pending(await metrics.registry.metrics()), undefined, 'nobody is pending any more');
  t.is(queries, 2 * perRefresh);
});

test('mailer serve opens /metrics on METRICS_PORT, on the loopback interface by default', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const serve = startCli(['serve', '--port', '0', '--host', '127.0.0.1'], {
    DATABASE_URL: db.url,
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
  });
  t.teardown(async () => {
    serve.child.kill('SIGKILL');
    await serve.exited;
  });
  const output = () => serve.output();
  const metricsUrl = await waitFor(
    async () => /"url":"(http:[^"]+\/metrics)","msg":"metrics listening"/.exec(output())?.[1],
    { what: 'the metrics listener' },
  );
  const publicUrl = await waitFor(
    async () => /"url":"(http:[^"]+)","publicUrl"/.exec(output())?.[1],
    { what: 'mailer serve listening' },
  );
  // listen() names a wildcard address "localhost"; 127.0.0.1 means the loopback address only.
  t.regex(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const scrape = await fetch(metricsUrl);
  t.is(scrape.status, 200);
  t.regex(await scrape.text(), /mailer_queue_depth|mailer_recipients_in_doubt/);
  t.is((await fetch(`${publicUrl}/metrics`)).status, 404);
  t.is((await fetch(`${publicUrl}/healthz`)).status, 200);
});

test("a worker's /metrics counts its sends by outcome and SES errors by name", async (t) => {
  const p = await startPipeline(t, {
    ses: { faults: { rejectAddresses: ['customer1@example.com', 'customer2@example.com'] } },
  });
  await seedCustomers(p.db, { active: 10 });
  const worker = await p.startWorker({ WORKER_METRICS_PORT: '0', LOG_LEVEL: 'info' });
  const metricsUrl = await waitFor(
    async () =>
      /"url":"(http:[^"]+\/metrics)","msg":"metrics listening"/.exec(worker.output())?.[1],
    { what: "the worker's metrics listener" },
  );
  t.regex(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'METRICS_HOST by default');
  const campaignId = await generate(p.db);
  await waitForDone(p.db, campaignId);

  const body = await (await fetch(metricsUrl)).text();
  t.regex(body, /^mailer_sends_total\{outcome="sent"\} 8$/m);
  t.regex(body, /^mailer_sends_total\{outcome="failed"\} 2$/m);
  t.regex(body, /^mailer_ses_errors_total\{name="MessageRejected"\} 2$/m);
  t.regex(body, /^mailer_send_slots_missed_total \d+$/m);
  t.regex(body, /^process_cpu_user_seconds_total \d/m);
});
