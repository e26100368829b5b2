// Figure 4, pacing accuracy: SES_MAX_SEND_RATE = R = 200/s, 3 `mailer worker` processes, a campaign
// big enough for 30 s of sending, against the local SES endpoint with no limit of its own, so that
// every SendEmail call is accepted and counted: every one-second window (sliding, starting at each
// call) is checked. (An endpoint limited to R would answer 429 to the call that overfills a window
// and keep it out of the accepted calls, so windows over accepted sends could never exceed R.)
// Reference: R itself; the ratio is the mean rate over R.
// Targets: no window above R (violations = 0), mean >= 0.95 R.
import { createBenchDatabase, emit, quick } from './lib.ts';
import { prepareCampaign, runCampaign, workerEnv } from './support/campaign.ts';
import { startWorkers } from './support/processes.ts';
import { round } from './support/sampling.ts';
import { startSesProcess } from './support/ses-process.ts';

const rate = 200;
const seconds = quick ? 10 : 30;
// Pacing spends 96% of R (tasks/send_recipient.ts), so R * 0.96 sends take `seconds`.
const recipients = Math.round(rate * 0.96 * seconds);

const db = await createBenchDatabase('pacing');
const ses = await startSesProcess();
try {
  const campaignId = await prepareCampaign(db, recipients);
  const workers = await startWorkers(db, 3, workerEnv(ses, { SES_MAX_SEND_RATE: String(rate) }));
  try {
    const result = await runCampaign(db, ses, campaignId, workers);
    const summary = await ses.summary();
    const times = summary.acceptedAt.sort((a, b) => a - b);
    let worst = 0;
    let violations = 0;
    let end = 0;
    for (let start = 0; start < times.length; start++) {
      while (end < times.length && (times[end] as number) < (times[start] as number) + 1000) end++;
      worst = Math.max(worst, end - start);
      if (end - start > rate) violations++;
    }
    const span = ((times.at(-1) ?? 0) - (times[0] ?? 0)) / 1000;
    const mean = (times.length - 1) / span;
    emit({
      bench: 'pacing',
      rate,
      workers: workers.length,
      recipients,
      sends: times.length,
      seconds: round(span, 1),
      busiest_window: worst,
      violations,
      calls: summary.calls,
      mean_per_second: round(mean, 1),
      ratio_mean_to_rate: round(mean / rate, 3),
      duplicates: result.duplicates,
      cpu_cores_busy: result.cpu_cores_busy,
      target_met:
        violations === 0 &&
        mean >= 0.95 * rate &&
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
