// Figure 1, send throughput: a 100,000-recipient campaign (internal template, rendered per send)
// through `mailer worker` (default options) with the real SESv2 client against the local SES
// endpoint in its own process, zero latency, paced at a rate that never binds (1,000,000/s): the
// path production runs. Comparison in the same run: the same campaign size unpaced
// (SES_MAX_SEND_RATE=0), right after it.
// Baseline, same database, measured before and after: the realistic job (lock a row, update it).
// Targets: paced >= 1,500 recipients/s and >= 0.8x the realistic-job baseline; paced >= 0.9x
// unpaced (issue 16, target 1).
// BENCH_WORKERS=n runs n worker processes (default 1).
import { measureRealisticJobs } from './baselines.ts';
import type { BenchDatabase } from './lib.ts';
import { createBenchDatabase, emit, quick } from './lib.ts';
import {
  type CampaignRun,
  draftCampaign,
  prepareCampaign,
  runCampaign,
  UNPACED,
  workerEnv,
} from './support/campaign.ts';
import { startWorkers } from './support/processes.ts';
import { round } from './support/sampling.ts';
import { type SesProcess, startSesProcess } from './support/ses-process.ts';

const recipients = quick ? 20_000 : 100_000;
const workerCount = Number(process.env.BENCH_WORKERS ?? 1);

async function send(
  db: BenchDatabase,
  ses: SesProcess,
  campaignId: string,
  env: Record<string, string>,
): Promise<CampaignRun> {
  const workers = await startWorkers(db, workerCount, workerEnv(ses, env));
  try {
    return await runCampaign(db, ses, campaignId, workers);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

const db = await createBenchDatabase('send');
const ses = await startSesProcess();
try {
  const pacedCampaign = await prepareCampaign(db, recipients);
  const unpacedCampaign = await draftCampaign(db, 1, 1);
  await db.pool.query('vacuum analyze');
  const baselineJobs = quick ? 10_000 : 20_000;
  const before = await measureRealisticJobs(db, baselineJobs);
  const result = await send(db, ses, pacedCampaign, {});
  const unpaced = await send(db, ses, unpacedCampaign, UNPACED);
  // The baseline again after the campaigns: on a machine whose speed drifts (shared host, CPU
  // steal), the mean of the two brackets the sends better than either alone.
  const after = await measureRealisticJobs(db, baselineJobs);
  const baselinePerSecond = (before.jobs_per_second + after.jobs_per_second) / 2;
  const ratio = round(result.recipients_per_second / baselinePerSecond, 2);
  const pacedToUnpaced = round(result.recipients_per_second / unpaced.recipients_per_second, 2);
  const sendCpu =
    (result.cpu_us_per_send.worker ?? 0) + (result.cpu_us_per_send.postgres_backends ?? 0);
  const jobCpu =
    (before.cpu_us_per_job.worker +
      before.cpu_us_per_job.postgres_backends +
      after.cpu_us_per_job.worker +
      after.cpu_us_per_job.postgres_backends) /
    2;
  emit({
    bench: 'send_throughput_unpaced_comparison',
    paced: false,
    ...unpaced,
    ratio_to_realistic: round(unpaced.recipients_per_second / baselinePerSecond, 2),
  });
  emit({
    bench: 'send_throughput',
    paced: true,
    rate: 1_000_000,
    ...result,
    unpaced_recipients_per_second: unpaced.recipients_per_second,
    ratio_paced_to_unpaced: pacedToUnpaced,
    baseline_realistic_jobs_per_second: round(baselinePerSecond),
    baseline_realistic_before_after: [before.jobs_per_second, after.jobs_per_second],
    baseline_realistic_cpu_us_per_job: before.cpu_us_per_job,
    ratio_to_realistic: ratio,
    // Load-independent view: CPU (worker + PostgreSQL) one send costs per realistic job.
    cpu_ratio_send_to_realistic: round(sendCpu / jobCpu, 2),
    target_met:
      result.recipients_per_second >= 1500 &&
      ratio >= 0.8 &&
      pacedToUnpaced >= 0.9 &&
      result.duplicates === 0 &&
      result.ses_calls === result.recipients &&
      unpaced.duplicates === 0,
  });
} finally {
  await ses.close();
  await db.drop();
}
