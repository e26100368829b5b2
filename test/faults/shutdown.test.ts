// SIGTERM (a deploy, a scale-down) in the middle of a campaign: the worker stops taking jobs,
// finishes the sends in flight, gives back the jobs it had fetched ahead (graphile-worker's local
// queue), unregisters and exits 0, leaving no job locked; a new worker finishes the campaign.
// Seeded variants: one worker or all of them, SES slow or holding requests past the client
// timeout at that moment, and an impatient second SIGTERM (exit at once, 130).
// CI: 2 trials. Soak: FAULTS_TRIALS=30 npm test -- test/faults/shutdown.test.ts
import test from 'ava';
import type { LongRunning } from '../helpers/cli.ts';
import { waitFor } from '../helpers/cli.ts';
import {
  generate,
  seedCustomers,
  startPipeline,
  statusCounts,
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

const FILE = 'test/faults/shutdown.test.ts';
// How soon after the second signal a victim that was already exiting is seen to exit.
const ALREADY_EXITING_MS = 50;
const TRIALS = trialCount(2);
const SEED = baseSeed();
const TIMEOUT_MS = 2000;

for (let trial = 0; trial < TRIALS; trial++) {
  const seed = SEED + trial;
  test.serial(`SIGTERM trial ${trial + 1}/${TRIALS} (seed ${seed})`, async (t) => {
    t.timeout(240_000);
    const random = new Random(seed);
    const p0 = {
      customers: random.int(200, 400),
      workers: random.int(1, 3),
      stopAll: random.chance(0.5),
      concurrency: random.pick([4, 8, 16]),
      latencyMs: random.int(20, 400),
      at: random.int(5, 70) / 100,
      // SES holds the requests in flight past the client timeout when the signal comes.
      hangAtStop: random.chance(0.25),
      secondSignal: random.chance(0.2),
    };
    t.log(replayHint(FILE, seed));
    t.log(`plan ${JSON.stringify(p0)}`);
    const sink = createEventSink({ hold: true });
    const p = await startPipeline(t, {
      ses: { faults: { latencyMs: p0.latencyMs }, onSend: sink.onSend },
      env: {
        SES_MAX_SEND_RATE: '150',
        SES_TIMEOUT_MS: String(TIMEOUT_MS),
        WORKER_CONCURRENCY: String(p0.concurrency),
      },
    });
    t.teardown(() => sink.close());
    await seedCustomers(p.db, { active: p0.customers });
    await sink.connect(p.db.pool);
    const workers: LongRunning[] = await Promise.all(
      Array.from({ length: p0.workers }, () => p.startWorker()),
    );
    const campaignId = await generate(p.db);
    await waitFor(async () => p.ses.sent().length >= p0.at * p0.customers, {
      what: 'sending under way',
      timeoutMs: 120_000,
      intervalMs: 10,
    });

    const victims = p0.stopAll ? workers : workers.slice(0, 1);
    const { rows: registered } = await p.db.pool.query<{ ids: string[] }>(
      `select coalesce(array_agg(id), '{}') as ids
         from worker_processes, unnest(worker_ids) id
        where pid = any($1::int[]) or supervisor_pid = any($1::int[])`,
      [victims.map((w) => w.child.pid)],
    );
    const victimIds = registered[0]?.ids ?? [];
    t.true(victimIds.length > 0, 'the victims registered their graphile-worker ids');
    if (p0.hangAtStop) p.ses.setFaults({ hangMs: TIMEOUT_MS + 1000 });
    const signalled = Date.now();
    for (const victim of victims) victim.child.kill('SIGTERM');
    // The impatient second SIGTERM goes to the victims still running 100 ms later; one that has
    // already finished its graceful stop exited 0 before it could arrive.
    const signalledTwice = new Set<LongRunning>();
    // Each exit with the moment this process saw it (taken now, before the second signal).
    const exited = victims.map((w) => w.exited.then((e) => ({ ...e, at: Date.now() })));
    let secondSignalAt = 0;
    if (p0.secondSignal) {
      await sleep(100);
      secondSignalAt = Date.now();
      for (const victim of victims) {
        if (victim.child.exitCode !== null || victim.child.signalCode !== null) continue;
        victim.child.kill('SIGTERM');
        signalledTwice.add(victim);
      }
    }
    const exits = await Promise.all(exited);
    const stopMs = Date.now() - signalled;
    p.ses.setFaults({ latencyMs: p0.latencyMs });
    // A victim signalled once stops gracefully (0). One signalled twice exits at once (130),
    // unless it had already finished its graceful stop and was exiting when the second signal
    // came, before this process saw it go: then it exits 0 within moments of that signal. Never
    // killed by the signal itself.
    t.deepEqual(
      exits.map((e, i) => {
        const alreadyExiting = e.at - secondSignalAt < ALREADY_EXITING_MS;
        if (e.signal === null && e.code === 0 && !signalledTwice.has(victims[i] as LongRunning)) {
          return 'stopped gracefully';
        }
        if (e.signal === null && (e.code === 130 || (e.code === 0 && alreadyExiting))) {
          return 'stopped by the second signal or before it';
        }
        return { code: e.code, signal: e.signal };
      }),
      victims.map((w) =>
        signalledTwice.has(w) ? 'stopped by the second signal or before it' : 'stopped gracefully',
      ),
      victims.map((w) => w.output().slice(-500)).join('\n'),
    );
    t.true(stopMs < TIMEOUT_MS + p0.latencyMs + 8000, `stopped in ${stopMs} ms`);

    if (!p0.secondSignal) {
      const { rows } = await p.db.pool.query<{ locked: number; registered: number }>(
        `select (select count(*)::int from graphile_worker.jobs where locked_by = any($1::text[])) as locked,
                (select count(*)::int from worker_processes
                  where pid = any($2::int[]) or supervisor_pid = any($2::int[])) as registered`,
        [victimIds, victims.map((w) => w.child.pid)],
      );
      t.deepEqual(rows[0], { locked: 0, registered: 0 }, 'no job left locked, unregistered');
      if (p0.stopAll) {
        const counts = await statusCounts(p.db, campaignId);
        t.is(counts.sending ?? 0, 0, `no send left half-done: ${JSON.stringify(counts)}`);
        if (!p0.hangAtStop) t.is(counts.in_doubt ?? 0, 0, 'a clean stop leaves nothing in doubt');
      }
    }

    await p.startWorker();
    await waitForDone(p.db, campaignId, 180_000);
    await sesIdle(p.ses);
    const atDone = await statusCounts(p.db, campaignId);
    await sink.release();
    await waitForEventsApplied(p.db);
    const end = await checkEndState(t, { db: p.db, ses: p.ses, campaignId, reconciled: true });
    t.is(end.recipients, p0.customers);
    t.is(end.calls, end.accepted, 'no SendEmail call beyond the accepted ones');
    if (!p0.hangAtStop && !p0.secondSignal) {
      t.deepEqual(end.byStatus, { sent: p0.customers }, 'a graceful stop loses nothing');
    }
    t.is((await jobHealth(p.db)).failed, 0, 'no job failed for good');
    t.log(
      `stopped ${victims.length} of ${workers.length} in ${stopMs} ms; at done ` +
        `${JSON.stringify(atDone)}; after the SES events ${JSON.stringify(end.byStatus)}`,
    );
  });
}
