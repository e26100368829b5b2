// `npm run demo`: the whole loop on a machine with nothing configured. Embedded PostgreSQL (its own
// `mailer_demo` database, recreated each run), the local SES endpoint publishing simulator events
// as signed SNS notifications to our own webhook, a worker and the HTTP server in this process, a
// generated campaign sent end to end, one reader unsubscribing by one-click POST, then a report.
import { type Config, loadConfig } from '../config.ts';
import { recreateDatabase } from '../db/databases.ts';
import { EmbeddedPostgresError } from '../db/embedded.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { createPool, describeConnectFailure, resolveDatabaseUrl } from '../db/pool.ts';
import { freePort } from '../free-port.ts';
import { createPublicServer } from '../http/server.ts';
import { createLogger } from '../logger.ts';
import { generateCampaign, weekOfMonth } from '../queries/campaigns.ts';
import { createSesClient } from '../ses/client.ts';
import { checkSesAccount } from '../ses/preflight.ts';
import { createEventPublisher, LOCAL_TOPIC_ARN } from '../ses-local/event-publisher.ts';
import { startLocalSes } from '../ses-local/server.ts';
import { configureLocalSes } from '../ses-local/setup.ts';
import { newProcessId, startWorker } from '../worker/runner.ts';
import { seedDemoData } from './seed.ts';

const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
const started = performance.now();

async function demoDatabase(): Promise<string> {
  // DATABASE_URL, or the embedded server (EMBEDDED_PG_PORT, EMBEDDED_PG_DIR) like every command.
  return recreateDatabase(await resolveDatabaseUrl(loadConfig(), logger), 'mailer_demo');
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const databaseUrl = await demoDatabase().catch((error: unknown) => {
  // An embedded server that cannot start (a taken port, a folder the `postgres` user cannot
  // enter) or a DATABASE_URL that does not answer: one line that says why and what to do.
  const line =
    describeConnectFailure(error) ??
    (error instanceof EmbeddedPostgresError ? error.message : undefined);
  if (line === undefined) throw error;
  process.stderr.write(`npm run demo: ${line}\n`);
  process.exit(1);
});
await migrateDatabase(databaseUrl, logger);
const port = await freePort();
const publisher = createEventPublisher({
  webhookUrl: `http://127.0.0.1:${port}/webhooks/ses`,
  logger,
});
const ses = await startLocalSes({ onSend: (m) => publisher.publish(m), logger });
const config: Config = loadConfig({
  ...process.env,
  DATABASE_URL: databaseUrl,
  SES_ENDPOINT: ses.url,
  // The local endpoint has no sending limit; pacing is shown by the tests and benchmarks.
  SES_MAX_SEND_RATE: '0',
  SES_CONFIGURATION_SET: 'mailer-demo',
  // The simulator's complaint address makes 1 complaint in ~480 sends, above SES's 0.1% review
  // level: whether the reputation guard pauses would depend on when the complaint arrives. The
  // demo shows the loop end to end; the guard is shown by its tests and the README's ses-local.
  REPUTATION_MIN_SENT: '1000',
  PUBLIC_URL: `http://127.0.0.1:${port}`,
  PORT: String(port),
  SNS_TOPIC_ARNS: LOCAL_TOPIC_ARN,
  SNS_TRUST_LOCAL_CERT: 'true',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
});
const processId = newProcessId();
const pool = createPool(databaseUrl, logger, { max: 24, applicationName: processId });
const sesClient = createSesClient(config, ses.url);
// Set up like a real account (verified From domain, configuration set publishing to the SNS
// topic), then the worker's preflight, as `mailer ses check` runs it.
await configureLocalSes(sesClient, {
  from: config.ses.from,
  configurationSet: 'mailer-demo',
  topicArn: LOCAL_TOPIC_ARN,
});
const preflight = await checkSesAccount({ client: sesClient, config, pool });
if (preflight.problems.length > 0) {
  throw new Error(`demo: ses check failed: ${preflight.problems.join('; ')}`);
}
const http = await createPublicServer({ pool, config, logger });
await http.listen(port, '127.0.0.1');
const worker = await startWorker({
  config,
  logger,
  pool,
  processId,
  ses: sesClient,
  crontab: false,
});

try {
  const customers = await seedDemoData(pool);
  const today = new Date().toISOString().slice(0, 10);
  // Days 29-31 are a fifth week, which has no campaign of its own: the demo sends week 4's,
  // forced, since it has to send something whatever the day.
  const week = Math.min(4, weekOfMonth(today));
  const sendStart = performance.now();
  const campaign = await generateCampaign(pool, {
    weekOfMonth: week,
    generatedDate: today,
    send: true,
    tokenTtlDays: config.unsubscribeTokenTtlDays,
    publicUrl: config.publicUrl,
    force: weekOfMonth(today) > 4,
  });
  await waitUntil('the campaign to finish', async () => {
    const { rows } = await pool.query('select status from campaigns where campaign_id = $1', [
      campaign.campaign_id,
    ]);
    return rows[0]?.status === 'done';
  });
  const sendSeconds = (performance.now() - sendStart) / 1000;

  // One reader uses the List-Unsubscribe header the way Gmail does (RFC 8058 one-click POST).
  const reader = ses.sent().find((m) => m.to[0]?.startsWith('reader'));
  const link = reader?.headers.find((h) => h.name === 'List-Unsubscribe')?.value.slice(1, -1);
  if (link) {
    const response = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    if (response.status !== 200) throw new Error(`demo: unsubscribe answered ${response.status}`);
  }

  await publisher.drain();
  await waitUntil('SES events to be processed', async () => {
    const { rows } = await pool.query(
      `select count(*)::int as n from graphile_worker.jobs where task_identifier = 'process_ses_event'`,
    );
    return rows[0]?.n === 0;
  });

  const { rows } = await pool.query<{ recipient_status: string; n: number }>(
    `select recipient_status, count(*)::int as n from campaign_recipients
      where campaign_id = $1 group by 1 order by 1`,
    [campaign.campaign_id],
  );
  const counts = Object.fromEntries(rows.map((r) => [r.recipient_status, r.n]));
  const suppression = await pool.query<{ reason: string; n: number }>(
    'select reason, count(*)::int as n from suppression_list group by 1 order by 1',
  );
  const events = await pool.query<{ event_type: string; n: number }>(
    'select event_type, count(*)::int as n from email_events_op group by 1 order by 1',
  );
  const sent = ses.sent().length;
  const report = {
    customers,
    campaign: campaign.campaign_name,
    emails_accepted_by_ses: sent,
    recipients: counts,
    suppression_list: Object.fromEntries(suppression.rows.map((r) => [r.reason, r.n])),
    events: Object.fromEntries(events.rows.map((r) => [r.event_type, r.n])),
    send_seconds: Number(sendSeconds.toFixed(2)),
    send_rate_per_second: Math.round(sent / sendSeconds),
    total_seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  const ok =
    (counts.bounced ?? 0) >= 1 && (counts.complained ?? 0) >= 1 && (counts.unsubscribed ?? 0) >= 1;
  if (!ok) throw new Error('demo: the events loop did not produce the expected outcomes');
} finally {
  await worker.stop();
  await http.close();
  await pool.end();
  sesClient.destroy();
  await ses.close();
}
