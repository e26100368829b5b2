// How to enqueue a campaign's sends: all at once (one add_jobs call in the status trigger) or fed in
// chunks. Measures the trigger's cost for N recipients with job keys (what the project does: a
// resume after pause refreshes queued jobs instead of doubling them) and without.
import { createBenchDatabase, emit, quick, seedCustomers, timed } from './lib.ts';

const sizes = quick ? [10_000] : [10_000, 100_000];
for (const n of sizes) {
  const db = await createBenchDatabase('enqueue');
  try {
    await seedCustomers(db.pool, n);
    const { rows } = await db.pool.query<{ id: string }>(
      // Forced: today need not be in week 1.
      `select public.generate_campaign(1, current_date, false, interval '90 days', 'http://x',
                                       p_force => true) as id`,
    );
    const campaignId = rows[0]?.id;

    // Without job keys, in a transaction we roll back (the comparison baseline).
    const client = await db.pool.connect();
    await client.query('begin');
    const plain = await timed(() =>
      client.query(
        `select count(*) from graphile_worker.add_jobs(array(
           select row('send_recipient', json_build_object('campaign_id', campaign_id,
                      'customer_id', customer_id), null, null, null, null, null, null)::graphile_worker.job_spec
             from campaign_recipients where campaign_id = $1))`,
        [campaignId],
      ),
    );
    await client.query('rollback');
    client.release();

    const keyed = await timed(() =>
      db.pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [campaignId]),
    );
    // A resume re-runs the trigger over the same pending recipients: keys dedupe.
    await db.pool.query(`update campaigns set status = 'paused' where campaign_id = $1`, [
      campaignId,
    ]);
    const resume = await timed(() =>
      db.pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [campaignId]),
    );
    const jobs = await db.pool.query<{ n: string }>(
      'select count(*) as n from graphile_worker.jobs',
    );
    emit({
      bench: 'enqueue',
      recipients: n,
      add_jobs_without_keys_ms: Math.round(plain.ms),
      queue_trigger_with_keys_ms: Math.round(keyed.ms),
      resume_with_keys_ms: Math.round(resume.ms),
      jobs_after_resume: Number(jobs.rows[0]?.n),
      jobs_per_second_with_keys: Math.round(n / (keyed.ms / 1000)),
    });
  } finally {
    await db.drop();
  }
}
