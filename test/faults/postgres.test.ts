// PostgreSQL going away under a running system, on a server of this file's own (never the shared
// one): restarted mid-campaign (clean fast shutdown, immediate shutdown, or the postmaster
// SIGKILLed), and down while SNS delivers SES events to the webhook.
// CI: 2 restart trials + the webhook test. Soak: FAULTS_TRIALS=20 npm test -- test/faults/postgres.test.ts
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { LOCAL_TOPIC_ARN } from '../../src/ses-local/event-publisher.ts';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { LOCAL_SIGNING_CERT_URL, loadLocalSigningKeys } from '../../src/sns/local-signing.ts';
import { signSnsEnvelope } from '../../src/sns/sign.ts';
import { type LongRunning, startCli, waitFor } from '../helpers/cli.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { startServer } from '../http/helpers.ts';
import { generate, seedCustomers, statusCounts } from '../pipeline/harness.ts';
import { type OwnPostgres, type StopMode, startOwnPostgres } from './own-postgres.ts';
import {
  baseSeed,
  checkEndState,
  createEventSink,
  explainStall,
  jobHealth,
  Random,
  replayHint,
  sesIdle,
  sleep,
  trialCount,
  waitForEventsApplied,
} from './support.ts';

const FILE = 'test/faults/postgres.test.ts';
const TRIALS = trialCount(2);
const SEED = baseSeed();

let server: OwnPostgres;
test.before(async () => {
  server = await startOwnPostgres();
});
test.after.always(async () => {
  await server?.destroy();
});

function lastLine(output: string): string {
  const lines = output
    .trim()
    .split('\n')
    .filter((line) => !/^\s+at /.test(line))
    .reverse();
  const error = lines.find((line) => /^(mailer: )?\w*Error\b|^error:|"level":50/.test(line));
  return (error ?? lines[0] ?? '').replace(/:\d{4,5}\b/, ':<port>').slice(0, 200);
}

/** A probe that counts a failed query (the server is down) as "not yet". */
function tolerant<T>(probe: () => Promise<T>): () => Promise<T | false> {
  return () => probe().catch(() => false as const);
}

async function campaignDone(db: TestDatabase, campaignId: string): Promise<boolean> {
  const { rows } = await db.pool.query(
    'select 1 from campaigns where campaign_id = $1 and status = $2',
    [campaignId, 'done'],
  );
  return rows.length === 1;
}

const MODES: StopMode[] = ['fast', 'immediate', 'kill'];

for (let trial = 0; trial < TRIALS; trial++) {
  const seed = SEED + trial;
  test.serial(`PostgreSQL restart trial ${trial + 1}/${TRIALS} (seed ${seed})`, async (t) => {
    t.timeout(300_000);
    const random = new Random(seed);
    const p0 = {
      customers: random.int(200, 400),
      workers: random.int(1, 3),
      mode: MODES[(trial + random.int(0, 2)) % MODES.length] as StopMode,
      at: random.int(10, 70) / 100,
      downMs: random.int(300, 6000),
      restarts: random.int(1, 2),
    };
    t.log(replayHint(FILE, seed));
    t.log(`plan ${JSON.stringify(p0)}`);
    const db = await server.createDatabase();
    const sink = createEventSink({ hold: true });
    const ses = await startLocalSes({ onSend: sink.onSend });
    const workers: LongRunning[] = [];
    t.teardown(async () => {
      for (const w of workers) w.child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
      await sink.close();
      await ses.close();
      await db.drop();
    });
    const env = {
      DATABASE_URL: db.url,
      SES_ENDPOINT: ses.url,
      SES_MAX_SEND_RATE: '100',
      SES_TIMEOUT_MS: '3000',
      SEND_CLAIM_LEASE_SECONDS: '6',
      WORKER_CONCURRENCY: '8',
      LOG_LEVEL: 'warn',
    };
    await seedCustomers(db, { active: p0.customers });
    await sink.connect(db.pool);
    // Plain `mailer worker` processes and nothing restarting them: each supervises its own runner
    // (src/worker/supervisor.ts), so none may exit, and the campaign must finish by itself.
    const exits: string[] = [];
    let stopped = false;
    for (let i = 0; i < p0.workers; i++) {
      const worker = startCli(['worker'], env);
      workers.push(worker);
      void worker.exited.then(({ code, signal }) => {
        if (!stopped) exits.push(`exit ${code ?? signal}: ${lastLine(worker.output())}`);
      });
    }
    t.teardown(() => {
      stopped = true;
    });
    await waitFor(
      async () => (await db.pool.query('select 1 from worker_processes')).rowCount === p0.workers,
      { what: 'workers registered', timeoutMs: 60_000 },
    );
    const campaignId = await generate(db);

    for (let restart = 0; restart < p0.restarts; restart++) {
      const target = Math.ceil(p0.customers * (p0.at + restart * 0.2));
      await waitFor(async () => ses.sent().length >= Math.min(target, p0.customers - 20), {
        what: 'sending under way',
        timeoutMs: 120_000,
        intervalMs: 20,
      });
      const sentAtStop = ses.sent().length;
      await server.stop(p0.mode);
      await sleep(p0.downMs);
      await server.start();
      t.log(`restart ${restart + 1} (${p0.mode}, down ${p0.downMs} ms) at ${sentAtStop} accepted`);
    }

    await waitFor(
      tolerant(() => campaignDone(db, campaignId)),
      {
        what: 'campaign done after the restart',
        timeoutMs: 200_000,
        intervalMs: 500,
      },
    ).catch(async (error: Error) => {
      t.log(
        await explainStall(db, campaignId).catch((e: Error) => `no stall report: ${e.message}`),
      );
      for (const w of workers) t.log(`worker ${w.child.pid}: ${w.output().slice(-3000)}`);
      throw error;
    });
    await sesIdle(ses);
    const atDone = await statusCounts(db, campaignId);
    await sink.release();
    await waitForEventsApplied(db);
    const end = await checkEndState(t, { db, ses, campaignId, reconciled: true });
    t.is(end.recipients, p0.customers);
    t.is(end.calls, end.accepted, 'no SendEmail call beyond the accepted ones');
    t.is((await jobHealth(db)).failed, 0, 'no job failed for good');
    t.log(
      `at done ${JSON.stringify(atDone)}; after the SES events ${JSON.stringify(end.byStatus)}`,
    );
    t.deepEqual(exits, [], 'every mailer worker process stayed up');
    const restarts = workers
      .map((w) => w.output().split('worker runner died; restarting').length - 1)
      .reduce((a, b) => a + b, 0);
    t.log(`runners restarted by their supervisors: ${restarts}`);
  });
}

// One `mailer worker` alone through a PostgreSQL restart. graphile-worker gives up when it cannot
// complete a job ("committing seppuku"); the runner process then exits (or throws from its local
// queue), and its supervisor waits for the database and starts a new runner, which releases the
// old one's jobs. Before the supervisor, the process exited or lingered as a zombie.
test.serial(
  'a worker process stays up through a PostgreSQL restart and finishes by itself',
  async (t) => {
    t.timeout(120_000);
    const db = await server.createDatabase();
    const ses = await startLocalSes({ faults: { latencyMs: 20 } });
    const env = {
      DATABASE_URL: db.url,
      SES_ENDPOINT: ses.url,
      SES_MAX_SEND_RATE: '100',
      SEND_CLAIM_LEASE_SECONDS: '6',
      LOG_LEVEL: 'warn',
    };
    const worker = startCli(['worker'], env);
    t.teardown(async () => {
      worker.child.kill('SIGKILL');
      await worker.exited;
      await ses.close();
      await db.drop();
    });
    await seedCustomers(db, { active: 200 });
    await waitFor(async () => (await db.pool.query('select 1 from worker_processes')).rowCount, {
      what: 'worker registered',
      timeoutMs: 60_000,
    });
    const campaignId = await generate(db);
    await waitFor(async () => ses.sent().length >= 50, {
      what: 'sending under way',
      intervalMs: 20,
    });
    await server.stop('fast');
    await sleep(2000);
    await server.start();
    // Done, exited, or alive without a single database connection for 15 s (a zombie).
    let connectedAt = Date.now();
    const state = await waitFor(
      async () => {
        if (worker.child.exitCode !== null) return `exited ${worker.child.exitCode}`;
        if (await tolerant(() => campaignDone(db, campaignId))()) return 'done';
        const connections = await tolerant(
          async () =>
            (
              await db.pool.query(
                `select 1 from pg_stat_activity where application_name like 'mailer-worker-%'`,
              )
            ).rowCount,
        )();
        if (connections) connectedAt = Date.now();
        return Date.now() - connectedAt > 15_000
          ? 'alive without a database connection'
          : undefined;
      },
      { what: 'campaign done or worker gone', timeoutMs: 100_000, intervalMs: 500 },
    );
    t.log(`worker: ${state}; ${lastLine(worker.output())}`);
    t.is(state, 'done');
    t.is(worker.child.exitCode, null, 'the mailer worker process is still running');
    const { rows } = await db.pool.query<{ supervisor_pid: number }>(
      'select supervisor_pid from worker_processes',
    );
    t.deepEqual(
      rows.map((r) => r.supervisor_pid),
      [worker.child.pid],
      'one live runner, registered by this supervisor',
    );
  },
);

test.serial(
  'webhook deliveries while the database is down get 5xx, and SNS retries store each exactly once',
  async (t) => {
    t.timeout(120_000);
    const db = await server.createDatabase();
    t.teardown(() => db.drop());
    const http = await startServer(db.pool, {
      SNS_TOPIC_ARNS: LOCAL_TOPIC_ARN,
      SNS_TRUST_LOCAL_CERT: 'true',
    });
    t.teardown(() => http.close());
    const { privateKeyPem } = await loadLocalSigningKeys();
    const bodies = Array.from({ length: 120 }, (_, i) =>
      JSON.stringify(
        signSnsEnvelope(
          {
            Type: 'Notification',
            MessageId: randomUUID(),
            TopicArn: LOCAL_TOPIC_ARN,
            Message: JSON.stringify({
              eventType: 'Delivery',
              mail: { messageId: `ses-outage-${i}`, destination: [`r${i}@example.com`] },
              delivery: { recipients: [`r${i}@example.com`] },
            }),
            Timestamp: new Date().toISOString(),
          },
          { privateKeyPem, signingCertUrl: LOCAL_SIGNING_CERT_URL, version: '2' },
        ),
      ),
    );

    // SNS: POST, and on anything but 2xx try again later. A 4xx would end the delivery for good.
    const statuses: number[] = [];
    async function deliver(body: string): Promise<void> {
      for (let attempt = 0; attempt < 200; attempt++) {
        const status = await fetch(`${http.url}/webhooks/ses`, { method: 'POST', body })
          .then(async (r) => {
            await r.body?.cancel();
            return r.status;
          })
          .catch(() => 0);
        statuses.push(status);
        if (status >= 200 && status < 300) return;
        await sleep(100);
      }
      throw new Error('never accepted');
    }
    const health: number[] = [];
    let delivered = 0;
    const outage = (async () => {
      await waitFor(async () => delivered >= 30, { what: 'some deliveries', intervalMs: 5 });
      await server.stop('fast');
      const h = await fetch(`${http.url}/healthz`);
      health.push(h.status);
      await h.body?.cancel();
      await sleep(2000);
      await server.start();
    })();
    // Ten deliveries at a time, like SNS's parallel HTTP deliveries.
    const queue = [...bodies];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let body = queue.shift(); body; body = queue.shift()) {
          await deliver(body);
          delivered++;
          await sleep(20);
        }
      }),
    );
    await outage;

    t.deepEqual(health, [503], '/healthz says the database is down');
    const refused = statuses.filter((s) => s >= 400 && s < 500);
    t.deepEqual(refused, [], 'never a 4xx, which SNS would not retry');
    t.true(
      statuses.some((s) => s >= 500 || s === 0),
      'some deliveries did meet the outage',
    );
    const { rows } = await db.pool.query<{ messages: number; jobs: number; orphans: number }>(
      `select (select count(*)::int from sns_messages) as messages,
            (select count(*)::int from graphile_worker.jobs where task_identifier = 'process_ses_event') as jobs,
            (select count(*)::int from sns_messages m
              where not exists (select 1 from graphile_worker._private_jobs j
                                 where j.task_id = (select id from graphile_worker._private_tasks
                                                     where identifier = 'process_ses_event')
                                   and j.payload ->> 'MessageId' = m.sns_message_id)) as orphans`,
    );
    t.deepEqual(
      rows[0],
      { messages: 120, jobs: 120, orphans: 0 },
      'each message stored with its job, once',
    );
    t.log(
      `responses: ${statuses.length} for 120 messages; ` +
        `${statuses.filter((s) => s >= 500).length} 5xx, ${statuses.filter((s) => s === 0).length} cut`,
    );
  },
);
