// What entering queued costs: the status trigger feeds the first batch (2,000 send jobs) and starts
// the feeder, whatever the campaign size; a resume after pause does the same. Comparison: adding
// every recipient's job at once (enqueue_campaign_sends, the design before the feeder) with job
// keys, and add_jobs without keys, each in a transaction rolled back.
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
    await client.query('begin');
    const allAtOnce = await timed(() =>
      client.query('select public.enqueue_campaign_sends($1)', [campaignId]),
    );
    await client.query('rollback');
    client.release();

    const keyed = await timed(() =>
      db.pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [campaignId]),
    );
    // A resume runs the trigger again: its first batch again (keys dedupe), the feeder again.
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
      queue_trigger_ms: Math.round(keyed.ms),
      resume_ms: Math.round(resume.ms),
      jobs_after_resume: Number(jobs.rows[0]?.n),
      comparison_all_at_once_with_keys_ms: Math.round(allAtOnce.ms),
      comparison_add_jobs_without_keys_ms: Math.round(plain.ms),
    });
  } finally {
    await db.drop();
  }
}
