// The SES endpoint misbehaving for a while: a seeded schedule of phases (slow answers, requests
// held past the client timeout, 5xx, 429 storms, the account rate limit, runs of failures), then
// healthy again. The campaign must finish with no address accepted twice, nobody failed by
// throttling or 5xx, and in-doubt recipients only where a timeout or 5xx phase happened (neither
// proves that SES did not take the message); once
// the SES events are in, the in-doubt recipients SES did accept are sent.
// CI: 2 trials. Soak: FAULTS_TRIALS=50 npm test -- test/faults/ses-faults.test.ts
import test from 'ava';
import type { Faults } from '../../src/ses-local/server.ts';
import {
  campaignStatus,
  generate,
  seedCustomers,
  startPipeline,
  waitForDone,
} from '../pipeline/harness.ts';
import {
  baseSeed,
  checkEndState,
  createEventSink,
  jobHealth,
  Random,
  replayHint,
  sesIdle,
  sleep,
  trialCount,
  waitForEventsApplied,
} from './support.ts';

const FILE = 'test/faults/ses-faults.test.ts';
const TRIALS = trialCount(2);
const SEED = baseSeed();
const TIMEOUT_MS = 1500;

type Phase = { kind: string; faults: Faults; maxSendRate?: number; ms: number };

const PHASES: Record<string, (r: Random) => Omit<Phase, 'kind' | 'ms'>> = {
  healthy: () => ({ faults: {} }),
  slow: (r) => ({ faults: { latencyMs: r.int(100, 500) } }),
  timeout: (r) => ({ faults: { hangMs: TIMEOUT_MS + r.int(300, 1500) } }),
  error5xx: (r) => ({
    faults: { errorRate: { status: r.pick([500, 503] as const), fraction: r.int(30, 100) / 100 } },
  }),
  throttled: (r) => ({ faults: { errorRate: { status: 429, fraction: r.int(30, 100) / 100 } } }),
  failRun: (r) => ({
    faults: { failNext: { status: r.pick([429, 500, 503] as const), count: r.int(5, 60) } },
  }),
  rateLimited: (r) => ({ faults: {}, maxSendRate: r.int(10, 60) }),
};

function plan(random: Random) {
  const kinds = Object.keys(PHASES);
  const phases: Phase[] = Array.from({ length: random.int(3, 6) }, () => {
    const kind = random.pick(kinds);
    return { kind, ms: random.int(300, 1500), ...(PHASES[kind]?.(random) ?? { faults: {} }) };
  });
  return {
    customers: random.int(200, 350),
    workers: random.int(1, 2),
    concurrency: random.pick([4, 8, 16]),
    // Paced, so the campaign lasts longer than the faults, which start soon after generation.
    rate: random.pick([60, 100, 150]),
    startAfterMs: random.int(0, 500),
    phases,
  };
}

for (let trial = 0; trial < TRIALS; trial++) {
  const seed = SEED + trial;
  test.serial(`SES fault trial ${trial + 1}/${TRIALS} (seed ${seed})`, async (t) => {
    t.timeout(240_000);
    const random = new Random(seed);
    const p0 = plan(random);
    t.log(replayHint(FILE, seed));
    t.log(`plan ${JSON.stringify(p0)}`);
    const sink = createEventSink({ hold: true });
    const p = await startPipeline(t, {
      ses: { onSend: sink.onSend },
      env: {
        SES_MAX_SEND_RATE: String(p0.rate),
        SES_TIMEOUT_MS: String(TIMEOUT_MS),
        WORKER_CONCURRENCY: String(p0.concurrency),
      },
    });
    t.teardown(() => sink.close());
    await seedCustomers(p.db, { active: p0.customers });
    await sink.connect(p.db.pool);
    await Promise.all(Array.from({ length: p0.workers }, () => p.startWorker()));
    const campaignId = await generate(p.db);

    await sleep(p0.startAfterMs);
    for (const phase of p0.phases) {
      p.ses.setFaults(phase.faults);
      p.ses.setMaxSendRate(phase.maxSendRate);
      await sleep(phase.ms);
    }
    const acceptedDuringFaults = p.ses.sent().length;
    p.ses.setFaults({});
    p.ses.setMaxSendRate(undefined);
    await waitForDone(p.db, campaignId, 200_000);
    await sesIdle(p.ses);

    const { rows } = await p.db.pool.query<{ in_doubt: number; failed: number; attempts: number }>(
      `select count(*) filter (where recipient_status = 'in_doubt')::int as in_doubt,
              count(*) filter (where recipient_status = 'failed')::int as failed,
              max(attempt_count)::int as attempts
         from campaign_recipients where campaign_id = $1`,
      [campaignId],
    );
    const atDone = rows[0];
    t.is(atDone?.failed, 0, 'no recipient failed because SES was slow, throttled or down');
    const ambiguous = p0.phases.some(
      (phase) =>
        phase.kind === 'timeout' ||
        phase.kind === 'error5xx' ||
        (phase.kind === 'failRun' && phase.faults.failNext?.status !== 429),
    );
    if (!ambiguous) t.is(atDone?.in_doubt, 0, 'without timeouts or 5xx nothing is in doubt');
    await sink.release();
    await waitForEventsApplied(p.db);

    const end = await checkEndState(t, { db: p.db, ses: p.ses, campaignId, reconciled: true });
    t.is(await campaignStatus(p.db, campaignId), 'done');
    t.is(end.recipients, p0.customers);
    t.is((end.byStatus.sent ?? 0) + (end.byStatus.in_doubt ?? 0), p0.customers);
    t.is((await jobHealth(p.db)).failed, 0, 'no job failed for good');
    t.log(
      `SendEmail calls ${end.calls}, accepted ${end.accepted} (${acceptedDuringFaults} during the ` +
        `faults), most claims of one recipient ${atDone?.attempts}; in doubt at done ` +
        `${atDone?.in_doubt}; after the SES events ${JSON.stringify(end.byStatus)}`,
    );
  });
}
