// Figure 4, pacing: paced campaigns against the local SES endpoint with no limit of its own, so
// that every SendEmail call is accepted and counted and every one-second window (sliding, starting
// at each call) is checked. (An endpoint limited to R would answer 429 to the call that overfills a
// window and keep it out of the accepted calls, so windows over accepted sends could never exceed
// R.) Scenarios (issue 16, target 2), each with a fresh endpoint and fresh worker processes,
// which send a 14 s warm-up campaign and idle 12 s first (WARM_UP_SECONDS, IDLE_BETWEEN_MS):
// - R = 1,000/s, 1 process, 30 ms added to every SES answer: mean >= 0.95 R;
// - R = 2,000/s, 2 processes, 30 ms: mean >= 0.9 R, or the CPU figures say what ran out;
// - R = 200/s, 3 processes, no latency (the accuracy check of earlier runs): mean >= 0.95 R.
// Every scenario: no window above R. Reference: R itself; the ratio is the mean rate over R.
// The mean rate is measured only here: test/pipeline/pacing.exclusive.test.ts asserts the window
// (a correctness property) and logs the mean, which a busy machine lowers.
import { PACING_HEADROOM } from '../src/worker/pacing.ts';
import { createBenchDatabase, emit, quick } from './lib.ts';
import { draftCampaign, prepareCampaign, runCampaign, workerEnv } from './support/campaign.ts';
import { sleep, startWorkers } from './support/processes.ts';
import { round } from './support/sampling.ts';
import { startSesProcess } from './support/ses-process.ts';

const scenarios = [
  { rate: 1000, workers: 1, latencyMs: 30, target: 0.95 },
  { rate: 2000, workers: 2, latencyMs: 30, target: 0.9 },
  { rate: 200, workers: 3, latencyMs: 0, target: 0.95 },
];
const seconds = quick ? 10 : 20;
// Each scenario's runners first send a warm-up campaign of WARM_UP_SECONDS, then idle this long,
// then send the measured one: a worker process runs for days and sends campaigns after idle hours,
// so its JIT is warm and its connections are the ones it kept (the first campaign of a fresh
// process, whose JavaScript is not compiled yet, starts at about half the rate for half a second:
// the warm-up's first second is printed too). Longer than the 10 s after which pg closes idle
// connections.
const IDLE_BETWEEN_MS = 12_000;
// 14 s, not the 2 it was: V8's optimising compiler takes the send path up, in the runner and in
// the local SES alike, after some 11-12 s of sends at 1,000/s. After a 2 s warm-up that came ~9 s
// into the measured campaign: perf (2026-12-07) showed their V8 worker threads compiling
// (v8::internal::compiler) on half the machine's CPU for 100-300 ms, and one 100 ms step held
// 10-50 sends instead of 96. 4a then gave 0.947-0.960 R; with 14 s, 0.956-0.959 R in three runs
// and no such stall.
const WARM_UP_SECONDS = 14;

/** The busiest sliding one-second window, and how many windows (one per call) exceed `rate`. */
function windows(times: number[], rate: number) {
  let worst = 0;
  let violations = 0;
  let end = 0;
  for (let start = 0; start < times.length; start++) {
    while (end < times.length && (times[end] as number) < (times[start] as number) + 1000) end++;
    worst = Math.max(worst, end - start);
    if (end - start > rate) violations++;
  }
  return { worst, violations };
}

/** The accepted sends of each 100 ms from the first one (times sorted). */
function per100ms(times: number[]): number[] {
  const steps: number[] = [];
  for (const at of times) {
    const step = Math.floor((at - (times[0] ?? 0)) / 100);
    steps[step] = (steps[step] ?? 0) + 1;
  }
  return Array.from(steps, (n) => n ?? 0);
}

/** The 100 ms steps after the first second, but the last, that fell below 80% of R / 10. */
function stalls(steps: number[], rate: number) {
  const low = steps
    .map((n, step) => ({ step, n }))
    .filter(({ step, n }) => step >= 10 && step < steps.length - 1 && n < 0.08 * rate);
  return {
    stalled_100ms_steps: low.length,
    first_stalls: low.slice(0, 8).map(({ step, n }) => `${step / 10}s:${n}`),
  };
}

for (const scenario of scenarios) {
  const { rate } = scenario;
  // Pacing spends PACING_HEADROOM of R, so that many sends take `seconds`.
  const recipients = Math.round(rate * PACING_HEADROOM * seconds);
  const db = await createBenchDatabase('pacing');
  const ses = await startSesProcess({ latencyMs: scenario.latencyMs });
  try {
    // The warm-up campaign: WARM_UP_SECONDS of sends to the first customers (all of them in a
    // --quick run).
    const warmUpId = await prepareCampaign(db, recipients);
    await db.pool.query(
      `delete from public.campaign_recipients
        where campaign_id = $1 and customer_id not in (
          select customer_id from public.campaign_recipients where campaign_id = $1
           order by customer_id limit $2)`,
      [warmUpId, rate * WARM_UP_SECONDS],
    );
    const campaignId = await draftCampaign(db, 1, 1);
    const workers = await startWorkers(
      db,
      scenario.workers,
      workerEnv(ses, { SES_MAX_SEND_RATE: String(rate) }),
    );
    try {
      await runCampaign(db, ses, warmUpId, workers);
      const warmUp = (await ses.summary()).acceptedAt.sort((a, b) => a - b);
      const coldStart = per100ms(warmUp).slice(0, 10);
      await sleep(IDLE_BETWEEN_MS);
      const result = await runCampaign(db, ses, campaignId, workers);
      const summary = await ses.summary();
      const times = summary.acceptedAt.sort((a, b) => a - b);
      const { worst, violations } = windows(times, rate);
      const span = ((times.at(-1) ?? 0) - (times[0] ?? 0)) / 1000;
      const mean = (times.length - 1) / span;
      // Where a shortfall comes from: the sends of each 100 ms from the first one (the start),
      // and the stalls after it.
      const steps = per100ms(times);
      emit({
        bench: `pacing_${rate}_${scenario.workers}p_${scenario.latencyMs}ms`,
        rate,
        workers: workers.length,
        ses_latency_ms: scenario.latencyMs,
        recipients,
        sends: times.length,
        seconds: round(span, 1),
        busiest_window: worst,
        violations,
        calls: summary.calls,
        mean_per_second: round(mean, 1),
        ratio_mean_to_rate: round(mean / rate, 3),
        first_second_per_100ms: steps.slice(0, 10),
        last_second_per_100ms: steps.slice(-10),
        warm_up_first_second_per_100ms: coldStart,
        ...stalls(steps, rate),
        target_ratio: scenario.target,
        duplicates: result.duplicates,
        cpu_us_per_send: result.cpu_us_per_send,
        cpu_cores_busy: result.cpu_cores_busy,
        wait_events: result.wait_events,
        target_met:
          violations === 0 &&
          mean >= scenario.target * rate &&
          result.duplicates === 0 &&
          summary.calls === times.length,
      });
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  } finally {
    await ses.close();
    await db.drop();
  }
}
