// Worker processes SIGKILLed at random moments of a campaign: during generation, at a random point
// of the sends, while starting up. Each trial is planned from its seed (worker count, concurrency,
// SES latency, pacing, when and whom to kill, whether SES events arrive live or only after the
// campaign), and must end with no address accepted twice by SES, every recipient settled, and
// every in-doubt recipient that SES did accept reconciled to sent by its SES events.
// CI: 3 trials. Soak: FAULTS_TRIALS=50 npm test -- test/faults/sigkill.test.ts
import test from 'ava';
import { type LongRunning, startCli, waitFor } from '../helpers/cli.ts';
import {
  campaignStatus,
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
  explainStall,
  jobHealth,
  Random,
  replayHint,
  sesIdle,
  sleep,
  trialCount,
  waitForEventsApplied,
} from './support.ts';

const FILE = 'test/faults/sigkill.test.ts';
const TRIALS = trialCount(3);
const SEED = baseSeed();

interface Kill {
  /** Fraction of the eligible recipients SES has accepted when the kill happens; -1: generation. */
  at: number;
  victim: number;
  /** Start a replacement this long after the kill; null: the survivors' sweep recovers. */
  replaceAfterMs: number | null;
  /** Kill only the runner process; its supervisor restarts it (no replacement is started). */
  runner: boolean;
}

/** Sends the signal; false when there is no such process (it died meanwhile). */
function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'ESRCH') return false;
    throw error;
  }
}

function plan(random: Random) {
  const customers = random.int(150, 350);
  const kills: Kill[] = Array.from({ length: random.int(1, 3) }, () => ({
    at: random.chance(0.15) ? -1 : random.int(0, 90) / 100,
    victim: random.int(0, 9),
    replaceAfterMs: random.chance(0.8) ? random.int(0, 2000) : null,
    // Only the runner (the child of `mailer worker`): its supervisor starts a new one.
    runner: random.chance(0.4),
  })).sort((a, b) => a.at - b.at);
  return {
    customers,
    suppressed: random.int(0, 10),
    workers: random.int(2, 3),
    concurrency: random.pick([2, 4, 8, 16]),
    latencyMs: random.chance(0.3) ? random.int(100, 300) : random.int(0, 40),
    rate: random.pick([0, 100, 200, 400]),
    holdEvents: random.chance(0.5),
    kills,
    // A worker killed while it is still starting (before or after it registered).
    startupKillAfterMs: random.chance(0.4) ? random.int(50, 2500) : null,
  };
}

for (let trial = 0; trial < TRIALS; trial++) {
  const seed = SEED + trial;
  test.serial(`SIGKILL trial ${trial + 1}/${TRIALS} (seed ${seed})`, async (t) => {
    t.timeout(240_000);
    const random = new Random(seed);
    const p0 = plan(random);
    t.log(replayHint(FILE, seed));
    t.log(`plan ${JSON.stringify(p0)}`);
    const sink = createEventSink({ hold: p0.holdEvents });
    const p = await startPipeline(t, {
      ses: { faults: { latencyMs: p0.latencyMs }, onSend: sink.onSend },
      env: { SES_MAX_SEND_RATE: String(p0.rate), WORKER_CONCURRENCY: String(p0.concurrency) },
    });
    t.teardown(() => sink.close());
    await seedCustomers(p.db, { active: p0.customers, suppressed: p0.suppressed });
    await sink.connect(p.db.pool);
    const eligible = p0.customers - p0.suppressed;

    const live: LongRunning[] = await Promise.all(
      Array.from({ length: p0.workers }, () => p.startWorker()),
    );
    const alive = () =>
      live.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    let startupVictim: Promise<unknown> = Promise.resolve();
    let killed = 0;
    if (p0.startupKillAfterMs !== null) {
      killed++;
      const starting = startCli(['worker'], p.env);
      p.workers.push(starting);
      startupVictim = sleep(p0.startupKillAfterMs).then(() => starting.child.kill('SIGKILL'));
    }

    await p.db.pool.query(
      `select graphile_worker.add_job('generate_campaign',
         json_build_object('week_of_month', 1, 'generated_date', '2026-11-02'))`,
    );
    const log: string[] = [];
    for (const kill of p0.kills) {
      if (kill.at < 0) {
        await sleep(random.int(0, 300));
      } else {
        await waitFor(async () => p.ses.sent().length >= kill.at * eligible, {
          what: `${kill.at * 100}% sent`,
          timeoutMs: 120_000,
          intervalMs: 10,
        });
      }
      const candidates = alive();
      const victim = candidates[kill.victim % candidates.length];
      if (!victim) continue;
      if (kill.runner) {
        // The newest registration is the live runner; an older one may be a runner killed a moment
        // ago whose row the next runner has not released yet.
        const { rows } = await p.db.pool.query<{ pid: number }>(
          'select pid from worker_processes where supervisor_pid = $1 order by started_at desc',
          [victim.child.pid],
        );
        const runner = rows.map((r) => r.pid).find((pid) => signal(pid, 'SIGKILL'));
        if (runner !== undefined) {
          killed++;
          log.push(
            `killed runner ${runner} of ${victim.child.pid} at ${p.ses.sent().length}/${eligible}`,
          );
          continue;
        }
      }
      victim.child.kill('SIGKILL');
      await victim.exited;
      killed++;
      live.splice(live.indexOf(victim), 1);
      log.push(`killed pid ${victim.child.pid} at ${p.ses.sent().length}/${eligible} accepted`);
      if (kill.replaceAfterMs !== null || alive().length === 0) {
        await sleep(kill.replaceAfterMs ?? 0);
        live.push(await p.startWorker());
      } else {
        // Nobody restarts: the next sweep (every minute from cron; here at once) of a survivor
        // releases the dead worker's jobs.
        await p.db.pool.query(`select graphile_worker.add_job('sweep')`);
      }
    }
    await startupVictim;

    const campaignId = await waitFor(
      async () =>
        (await p.db.pool.query<{ campaign_id: string }>('select campaign_id from campaigns'))
          .rows[0]?.campaign_id,
      { what: 'campaign generated', timeoutMs: 60_000 },
    );
    await waitForDone(p.db, campaignId, 180_000).catch(async (error: Error) => {
      t.log(log.join('; '));
      t.log(await explainStall(p.db, campaignId));
      for (const w of p.workers) t.log(`worker ${w.child.pid}: ${w.output().slice(-1500)}`);
      throw error;
    });
    await sesIdle(p.ses);
    const { rows: doubt } = await p.db.pool.query<{ n: number; why: string[] }>(
      `select count(*)::int as n, coalesce(array_agg(distinct left(last_error, 120)), '{}') as why
         from campaign_recipients where recipient_status = 'in_doubt'`,
    );
    await sink.release();
    await waitForEventsApplied(p.db);
    // Only a killed worker's claims in flight can be in doubt: at most `concurrency` per kill.
    t.true(
      (doubt[0]?.n ?? 0) <= killed * p0.concurrency,
      `${doubt[0]?.n} in doubt after ${killed} kill(s) of workers running ${p0.concurrency} jobs`,
    );

    const end = await checkEndState(t, { db: p.db, ses: p.ses, campaignId, reconciled: true });
    t.is(await campaignStatus(p.db, campaignId), 'done');
    t.is(end.recipients, p0.customers, 'one recipient per active customer');
    t.is(end.byStatus.suppressed ?? 0, p0.suppressed);
    t.is(end.calls, end.accepted, 'no SendEmail call beyond the accepted ones');
    t.is((end.byStatus.sent ?? 0) + (end.byStatus.in_doubt ?? 0), eligible);
    t.is((await jobHealth(p.db)).failed, 0, 'no job failed for good');
    t.log(log.join('; '));
    t.log(
      `in doubt when the campaign was done: ${doubt[0]?.n} ${JSON.stringify(doubt[0]?.why)}; after the SES events: ` +
        `${JSON.stringify(end.byStatus)} (in doubt, never accepted by SES: ${end.unsentInDoubt})`,
    );
  });
}

test.serial(
  'a worker killed while SES holds its requests: in doubt, then sent by its SES events',
  async (t) => {
    const sink = createEventSink({ hold: true });
    const p = await startPipeline(t, {
      ses: { faults: { latencyMs: 1500 }, onSend: sink.onSend },
      env: { WORKER_CONCURRENCY: '4' },
    });
    t.teardown(() => sink.close());
    await seedCustomers(p.db, { active: 40 });
    await sink.connect(p.db.pool);
    const victim = await p.startWorker();
    const campaignId = await generate(p.db);
    // Four SendEmail calls have reached SES, which accepts each after 1.5 s.
    await waitFor(async () => p.ses.sendCallCount() >= 4, { what: 'calls at SES', intervalMs: 10 });
    victim.child.kill('SIGKILL');
    await victim.exited;
    p.ses.setFaults({});
    await p.startWorker();
    await waitForDone(p.db, campaignId);
    await sesIdle(p.ses);

    const before = await statusCounts(p.db, campaignId);
    t.deepEqual(before, { sent: 36, in_doubt: 4 }, 'the killed claims are in doubt, not resent');
    const atDone = await checkEndState(t, { db: p.db, ses: p.ses, campaignId, reconciled: false });
    t.is(atDone.unsentInDoubt, 0, 'SES did accept all four');
    await sink.release();
    await waitForEventsApplied(p.db);
    t.deepEqual(await statusCounts(p.db, campaignId), { sent: 40 });
    await checkEndState(t, { db: p.db, ses: p.ses, campaignId, reconciled: true });
  },
);
