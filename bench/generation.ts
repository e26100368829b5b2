// Figures 3 and 3b, generation and big campaigns (issue 16, targets 4 and 5), in a real
// `mailer worker` for 1,000,000 active customers (1% suppressed).
// A. Generation alone (send false): the generate_campaign task writes the campaign, recipients
//    with template_data and one unsubscribe token each, in chunks (one transaction each). Timed
//    from adding the job to the campaign no longer generating. Target: < 20 s, worker RSS < 200 MB.
// B. The same with send true at R = 1,000/s (the paced path production runs): the first email at
//    the SES endpoint after adding the job (target < 5 s), generation's end while sending, the
//    largest graphile-worker jobs table seen (sampled every 200 ms; target <= 100,000 rows), then
//    pause_campaign and resume_campaign of the 1,000,000-recipient campaign, each timed as its
//    statement (target < 1 s each), and the first email after the resume.
// Baseline, same database: one INSERT ... SELECT of the same rows into a table with the same
// columns and no index, constraint or trigger (the cost of writing the rows at all). Comparison,
// same database, right before A: the same generation in one lane (mailer.generation_lanes = 1,
// generateCampaign in this process, as the task calls it), then dropped (VACUUM FULL), so that A
// starts on tables as empty as its comparison did.
import { loadavg } from 'node:os';
import pg from 'pg';
import { generateCampaign } from '../src/queries/campaigns.ts';
import { createBenchDatabase, emit, quick, seedCustomers, timed } from './lib.ts';
import { workerEnv } from './support/campaign.ts';
import { processMemoryMb, sleep, startWorkers } from './support/processes.ts';
import { databaseCounters, round, sampleWaitEvents } from './support/sampling.ts';
import { startSesProcess } from './support/ses-process.ts';

const customers = quick ? 100_000 : 1_000_000;
const RATE = 1_000;
const db = await createBenchDatabase('generation');
const ses = await startSesProcess();
const load = () => loadavg().map((l) => round(l));

// Both campaigns are week 1 (the one template seeded), B a day later: forced.
async function campaignState(dayOffset: number) {
  const { rows } = await db.pool.query<{
    campaign_id: string;
    status: string;
    generating: boolean;
  }>(
    `select campaign_id, status, generating from public.campaigns
      where week_of_month = 1 and generated_date = current_date + $1::int`,
    [dayOffset],
  );
  return rows[0];
}

async function addGenerateJob(dayOffset: number, send: boolean) {
  await db.pool.query(
    // Forced: today need not be in the week.
    `select graphile_worker.add_job('generate_campaign',
       json_build_object('week_of_month', 1, 'generated_date', (current_date + $1::int)::text,
                         'send', $2::boolean, 'force', true))`,
    [dayOffset, send],
  );
}

async function counts(campaignId: string) {
  const { rows } = await db.pool.query<{ recipients: number; suppressed: number; tokens: number }>(
    `select (select count(*)::int from public.campaign_recipients where campaign_id = $1) as recipients,
            (select count(*)::int from public.campaign_recipients
              where campaign_id = $1 and recipient_status = 'suppressed') as suppressed,
            (select count(*)::int from public.unsubscribe_tokens where campaign_id = $1) as tokens`,
    [campaignId],
  );
  return rows[0];
}

const jobRows = async () =>
  Number(
    (await db.pool.query<{ n: string }>('select count(*) as n from graphile_worker._private_jobs'))
      .rows[0]?.n ?? 0,
  );

try {
  await seedCustomers(db.pool, customers, { suppressedPercent: 1 });
  await db.pool.query(
    'create table public.bench_raw_rows (like public.campaign_recipients including defaults)',
  );
  const raw = await timed(() =>
    db.pool.query(
      `insert into public.bench_raw_rows (campaign_id, customer_id, email, recipient_status,
                                          template_data)
       select gen_random_uuid(), c.customer_id, c.email, 'pending',
              jsonb_build_object('name', c.name, 'company', c.company, 'country', c.country,
                                 'email', c.email,
                                 'unsubscribe_url', 'https://mailer.example/unsubscribe/'
                                                    || gen_random_uuid())
         from public.customers c where c.is_active`,
    ),
  );
  await db.pool.query('drop table public.bench_raw_rows');
  await db.pool.query('checkpoint');

  // The comparison: one lane, on connections that say so.
  const oneLanePool = new pg.Pool({
    connectionString: db.url,
    max: 4,
    options: '-c mailer.generation_lanes=1',
  });
  const oneLane = await timed(() =>
    generateCampaign(oneLanePool, {
      weekOfMonth: 1,
      generatedDate: '2000-01-03',
      send: false,
      tokenTtlDays: 30,
      publicUrl: 'https://mailer.example',
      force: true,
    }),
  );
  await oneLanePool.end();
  await db.pool.query('delete from public.campaigns where campaign_id = $1', [
    oneLane.value.campaign_id,
  ]);
  await db.pool.query('vacuum full public.campaign_recipients, public.unsubscribe_tokens');
  await db.pool.query('checkpoint');

  const [worker] = await startWorkers(db, 1, workerEnv(ses, { SES_MAX_SEND_RATE: String(RATE) }));
  if (!worker) throw new Error('no worker');
  let peakRss = processMemoryMb(worker.pid)?.rss ?? 0;
  const sampleRss = () => {
    peakRss = Math.max(peakRss, processMemoryMb(worker.pid)?.rss ?? 0);
    if (worker.child.exitCode !== null) throw new Error(`worker died:\n${worker.output()}`);
  };
  try {
    // A. Generation alone.
    const loadBefore = load();
    const before = await databaseCounters(db.pool);
    const waits = sampleWaitEvents(db.pool, db.name, 200);
    const t0 = performance.now();
    await addGenerateJob(0, false);
    let state = await campaignState(0);
    while (state === undefined || state.generating) {
      sampleRss();
      await sleep(200);
      state = await campaignState(0);
    }
    const generationMs = performance.now() - t0;
    const waitEvents = await waits.stop();
    const after = await databaseCounters(db.pool);
    const generated = await counts(state.campaign_id);
    emit({
      bench: 'generation',
      customers,
      ...generated,
      total_ms: round(generationMs),
      worker_rss_peak_sampled_mb: round(peakRss),
      wal_mb: round((after.walBytes - before.walBytes) / 1_048_576),
      baseline_raw_insert_ms: round(raw.ms),
      ratio_to_raw_insert: round(generationMs / raw.ms, 2),
      comparison_one_lane_ms: round(oneLane.ms),
      speedup_over_one_lane: round(oneLane.ms / generationMs, 2),
      wait_events: waitEvents,
      load_average_before: loadBefore,
      load_average_after: load(),
      target_met:
        generationMs < 20_000 &&
        peakRss < 200 &&
        generated?.recipients === customers &&
        generated.tokens === customers,
    });

    // B. Generation with sending at R, the jobs table, pause and resume.
    await ses.clear();
    const loadBeforeB = load();
    const wall0 = Date.now();
    const t1 = performance.now();
    await addGenerateJob(1, true);
    let firstEmailMs: number | undefined;
    let generatedMs: number | undefined;
    let maxJobs = 0;
    let campaign = await campaignState(1);
    while (firstEmailMs === undefined || generatedMs === undefined) {
      sampleRss();
      maxJobs = Math.max(maxJobs, await jobRows());
      if (firstEmailMs === undefined) {
        const first = (await ses.summary()).acceptedAt[0];
        if (first !== undefined) firstEmailMs = first - wall0;
      }
      campaign = await campaignState(1);
      if (generatedMs === undefined && campaign && !campaign.generating) {
        generatedMs = performance.now() - t1;
      }
      if (performance.now() - t1 > 300_000) throw new Error('no email or generation in 300 s');
      await sleep(200);
    }
    if (!campaign) throw new Error('no campaign');
    // A few seconds of steady sending, still sampling the jobs table.
    for (let i = 0; i < 15; i++) {
      sampleRss();
      maxJobs = Math.max(maxJobs, await jobRows());
      await sleep(200);
    }
    const sentBeforePause = (await ses.summary()).accepted;
    const pause = await timed(() =>
      db.pool.query('select public.pause_campaign($1)', [campaign?.campaign_id]),
    );
    const jobsAfterPause = await jobRows();
    await sleep(2_000);
    const sentWhilePaused = (await ses.summary()).accepted;
    await ses.clear();
    const resumeWall = Date.now();
    const resume = await timed(() =>
      db.pool.query('select public.resume_campaign($1)', [campaign?.campaign_id]),
    );
    let firstAfterResumeMs: number | undefined;
    while (firstAfterResumeMs === undefined && Date.now() - resumeWall < 60_000) {
      const first = (await ses.summary()).acceptedAt[0];
      if (first !== undefined) firstAfterResumeMs = first - resumeWall;
      maxJobs = Math.max(maxJobs, await jobRows());
      await sleep(100);
    }
    await db.pool.query('select public.pause_campaign($1)', [campaign.campaign_id]);
    const summary = await ses.summary();
    const b = await counts(campaign.campaign_id);
    emit({
      bench: 'big_campaign',
      customers,
      rate: RATE,
      ...b,
      first_email_after_generate_job_ms: firstEmailMs,
      generation_while_sending_ms: round(generatedMs),
      jobs_table_max_rows: maxJobs,
      sent_before_pause: sentBeforePause,
      pause_ms: round(pause.ms),
      jobs_after_pause: jobsAfterPause,
      sent_in_2_s_after_pause: sentWhilePaused - sentBeforePause,
      resume_ms: round(resume.ms),
      first_email_after_resume_ms: firstAfterResumeMs,
      duplicates_after_resume: summary.duplicates,
      worker_rss_peak_sampled_mb: round(peakRss),
      worker_rss_high_water_mb: round(processMemoryMb(worker.pid)?.peak ?? 0),
      load_average_before: loadBeforeB,
      load_average_after: load(),
      target_met:
        firstEmailMs < 5_000 && maxJobs <= 100_000 && pause.ms < 1_000 && resume.ms < 1_000,
    });
  } finally {
    await worker.stop();
  }
} finally {
  await ses.close();
  await db.drop();
}
