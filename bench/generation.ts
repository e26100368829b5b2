// Figure 3, generation: the generate_campaign task in a real `mailer worker` for 1,000,000 active
// customers (1% suppressed): campaign, recipients with template_data, one unsubscribe token each,
// and the queueing of the sends (the status trigger's add_jobs), in one transaction. Timed from
// adding the job to the queued campaign being visible (committed). The worker's resident memory
// is sampled throughout (set-based SQL: nothing is streamed through Node).
// Where the time goes: the sizes of the three tables written are sampled while the transaction
// runs; each stops growing when its statement ends.
// Baseline, same database: one INSERT ... SELECT of the same rows into a table with the same
// columns and no index, constraint or trigger (the cost of writing the rows at all).
// Targets: < 60 s, worker RSS < 200 MB.
import { createBenchDatabase, emit, quick, seedCustomers, timed } from './lib.ts';
import { workerEnv } from './support/campaign.ts';
import { processMemoryMb, sleep, startWorkers } from './support/processes.ts';
import { databaseCounters, round } from './support/sampling.ts';
import { startSesProcess } from './support/ses-process.ts';

const customers = quick ? 100_000 : 1_000_000;
const db = await createBenchDatabase('generation');
const ses = await startSesProcess();
try {
  await seedCustomers(db.pool, customers, { suppressedPercent: 1 });

  // Baseline: the rows alone.
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

  const [worker] = await startWorkers(db, 1, workerEnv(ses));
  if (!worker) throw new Error('no worker');
  try {
    const rssBefore = processMemoryMb(worker.pid)?.rss ?? 0;
    const before = await databaseCounters(db.pool);
    const sizes = `select pg_relation_size('public.unsubscribe_tokens')::float8 as tokens,
                          pg_relation_size('public.campaign_recipients')::float8 as recipients,
                          pg_relation_size('graphile_worker._private_jobs')::float8 as jobs`;
    const samples: Array<{ ms: number; tokens: number; recipients: number; jobs: number }> = [];
    let peakRss = rssBefore;
    const t0 = performance.now();
    await db.pool.query(
      // Forced: today need not be in week 1.
      `select graphile_worker.add_job('generate_campaign',
         json_build_object('week_of_month', 1, 'generated_date', current_date::text, 'send', true,
                           'force', true))`,
    );
    let status: string | undefined;
    while (status === undefined) {
      const { rows } = await db.pool.query<{ status: string }>(
        'select status from public.campaigns where week_of_month = 1 and generated_date = current_date',
      );
      status = rows[0]?.status;
      const s = (await db.pool.query(sizes)).rows[0];
      samples.push({ ms: performance.now() - t0, ...s });
      peakRss = Math.max(peakRss, processMemoryMb(worker.pid)?.rss ?? 0);
      if (worker.child.exitCode !== null) throw new Error(`worker died:\n${worker.output()}`);
      if (status === undefined) await sleep(200);
    }
    const totalMs = performance.now() - t0;
    const memory = processMemoryMb(worker.pid);
    const after = await databaseCounters(db.pool);
    const counts = (
      await db.pool.query<{ recipients: number; suppressed: number; tokens: number }>(
        `select (select count(*)::int from public.campaign_recipients) as recipients,
                (select count(*)::int from public.campaign_recipients
                  where recipient_status = 'suppressed') as suppressed,
                (select count(*)::int from public.unsubscribe_tokens) as tokens`,
      )
    ).rows[0];
    // A statement ends when its table stops growing: the first sample at the size the table had
    // in the last sample before the commit (after it, the worker's sends grow the tables again).
    const last = samples.at(-2);
    const doneAt = (key: 'tokens' | 'recipients' | 'jobs') =>
      samples.find((s) => s[key] >= (last?.[key] ?? 0))?.ms ?? totalMs;
    const tokensMs = doneAt('tokens');
    const recipientsMs = doneAt('recipients');
    emit({
      bench: 'generation',
      customers,
      ...counts,
      status,
      total_ms: round(totalMs),
      stages_ms_approx: {
        tokens: round(tokensMs),
        recipients: round(recipientsMs - tokensMs),
        enqueue_and_commit: round(totalMs - recipientsMs),
      },
      worker_rss_mb: { before: round(rssBefore), peak_sampled: round(peakRss) },
      worker_rss_high_water_mb: round(memory?.peak ?? 0),
      wal_mb: round((after.walBytes - before.walBytes) / 1_048_576),
      baseline_raw_insert_ms: round(raw.ms),
      ratio_to_raw_insert: round(totalMs / raw.ms, 2),
      target_met:
        totalMs < 60_000 &&
        memory !== undefined &&
        memory.peak < 200 &&
        counts?.recipients === customers &&
        counts.tokens === customers &&
        (status === 'queued' || status === 'sending'),
    });
  } finally {
    await worker.stop();
  }
} finally {
  await ses.close();
  await db.drop();
}
