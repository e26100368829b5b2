// Figure 3c, generation as campaigns accumulate: the weekly campaign of 1,000,000 active
// customers, generated again each week on the same database, each after the last one was sent
// (one set-based update leaves its recipients as sending does: sent, with a message id) and
// vacuumed (autovacuum's work, done here so every week starts alike). Recipients and the tokens
// of mail that went out are kept (docs/architecture.md), so each week's generation writes into
// indexes the earlier weeks filled. Each generation is generateCampaign in this process, in 2
// lanes, as the generate_campaign task calls it; figure 3 measures the task in a worker.
// Baseline, same database: week 1, the first campaign on empty tables. Reported per week: time,
// WAL, full-page images, the sizes of the tokens' primary key and the recipients' indexes, and
// the blocks each table and index read back from outside shared_buffers while generating.
// Target: week 8 still under 20 s (issue 16, target 5, for a database that has been in use).
import { generateCampaign } from '../src/queries/campaigns.ts';
import { createBenchDatabase, emit, quick, seedCustomers, timed } from './lib.ts';
import { databaseCounters, round } from './support/sampling.ts';

const customers = quick ? 100_000 : 1_000_000;
const weeks = quick ? 3 : 8;
const db = await createBenchDatabase('generation_history');

async function indexSizesMb(): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ name: string; mb: number }>(
    `select c.relname as name, round(pg_relation_size(c.oid) / 1048576.0)::int as mb
       from pg_class c
      where c.relname in ('unsubscribe_tokens_pkey', 'campaign_recipients_pkey',
                          'campaign_recipients_customer_id_idx')
      order by c.relname`,
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.mb]));
}

// Blocks each table and index read from outside shared_buffers so far (the OS's cache or disk).
async function blocksRead(): Promise<Map<string, number>> {
  const { rows } = await db.pool.query<{ name: string; n: string }>(
    `select relname as name, heap_blks_read as n from pg_statio_user_tables
      where schemaname = 'public'
     union all
     select indexrelname, idx_blks_read from pg_statio_user_indexes where schemaname = 'public'`,
  );
  return new Map(rows.map((r) => [r.name, Number(r.n)]));
}

/** The relations that read the most blocks between two samples, most first. */
function topReads(before: Map<string, number>, after: Map<string, number>) {
  const reads = [...after].map(([name, n]) => [name, n - (before.get(name) ?? 0)] as const);
  return Object.fromEntries(reads.filter(([, n]) => n >= 1000).sort((a, b) => b[1] - a[1]));
}

try {
  await seedCustomers(db.pool, customers, { suppressedPercent: 1 });
  const perWeek: { week: number; ms: number; wal_mb: number; fpi: number }[] = [];
  for (let week = 1; week <= weeks; week++) {
    await db.pool.query('checkpoint');
    const before = await databaseCounters(db.pool);
    const readBefore = await blocksRead();
    const generated = await timed(() =>
      generateCampaign(db.pool, {
        weekOfMonth: 1,
        // A week apart, forced: a benchmark's dates need not be first weeks of their month.
        generatedDate: new Date(Date.UTC(2030, 0, 7 * week)).toISOString().slice(0, 10),
        send: false,
        tokenTtlDays: 30,
        publicUrl: 'https://mailer.example',
        force: true,
      }),
    );
    const after = await databaseCounters(db.pool);
    const figures = {
      week,
      ms: round(generated.ms),
      wal_mb: round((after.walBytes - before.walBytes) / 1_048_576),
      fpi: after.walFpi - before.walFpi,
    };
    perWeek.push(figures);
    emit({
      bench: 'generation_history_week',
      customers,
      recipients: generated.value.recipients,
      ...figures,
      index_mb: await indexSizesMb(),
      blocks_read: topReads(readBefore, await blocksRead()),
    });
    await db.pool.query(
      `update public.campaign_recipients
          set recipient_status = 'sent', ses_message_id = gen_random_uuid()::text,
              attempt_count = 1, last_attempt_at = now(), updated_at = now()
        where campaign_id = $1 and recipient_status = 'pending'`,
      [generated.value.campaign_id],
    );
    await db.pool.query('vacuum analyze public.campaign_recipients, public.unsubscribe_tokens');
  }
  const first = perWeek[0];
  const last = perWeek[perWeek.length - 1];
  if (!first || !last) throw new Error('no week generated');
  emit({
    bench: 'generation_history',
    customers,
    weeks,
    first_week_ms: first.ms,
    last_week_ms: last.ms,
    ratio_last_to_first: round(last.ms / first.ms, 2),
    first_week_wal_mb: first.wal_mb,
    last_week_wal_mb: last.wal_mb,
    first_week_fpi: first.fpi,
    last_week_fpi: last.fpi,
    target_met: last.ms < 20_000,
  });
} finally {
  await db.drop();
}
