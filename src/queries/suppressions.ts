// The suppression list as the console searches and exports it: by the start of an address, by
// reason and by source, in address order a page at a time (keyset on the address, so page 500
// costs what page 1 does), and the export's rows in batches of the same query. Adding and
// lifting entries stays with suppress_email/unsuppress_email (src/queries/operations.ts).
import type { Db } from '../db/pool.ts';
import type { SuppressionEntry } from './operations.ts';

export const SUPPRESSION_REASONS = ['manual', 'unsubscribe', 'bounce_hard', 'complaint'] as const;
export const SUPPRESSION_SOURCES = ['ops', 'user', 'ses'] as const;

export interface SuppressionFilter {
  /** The start of the address (any case); '' for all. */
  prefix: string;
  reason: string | undefined;
  source: string | undefined;
}

/** A `like` pattern for addresses starting with `prefix` (any case); null for ''. */
export function likePrefix(prefix: string): string | null {
  if (prefix === '') return null;
  return `${prefix.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Entries after `after` (an address), in address order; `next` is set when there are more. */
export async function searchSuppressions(
  db: Db,
  filter: SuppressionFilter,
  after: string | undefined,
  limit: number,
): Promise<{ rows: SuppressionEntry[]; next: string | undefined }> {
  // `like` with a constant prefix uses suppression_list_email_prefix_idx; without a prefix the
  // primary key gives the order and the keyset.
  const { rows } = await db.query<SuppressionEntry>(
    `select email, reason, source, created_at, updated_at from public.suppression_list
      where ($1::text is null or email like $1)
        and ($2::text is null or reason = $2) and ($3::text is null or source = $3)
        and ($4::text is null or email > $4)
      order by email
      limit $5`,
    [
      likePrefix(filter.prefix),
      filter.reason ?? null,
      filter.source ?? null,
      after ?? null,
      limit + 1,
    ],
  );
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  return { rows: page, next: more ? page[page.length - 1]?.email : undefined };
}

/** Every entry matching the filter, a batch at a time (an export of a million rows streams). */
export async function* allSuppressions(
  db: Db,
  filter: SuppressionFilter,
  batch = 5000,
): AsyncGenerator<SuppressionEntry[]> {
  let after: string | undefined;
  for (;;) {
    const { rows, next } = await searchSuppressions(db, filter, after, batch);
    if (rows.length > 0) yield rows;
    if (!next) return;
    after = next;
  }
}

export async function countSuppressions(db: Db, filter: SuppressionFilter): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `select count(*)::int as n from public.suppression_list
      where ($1::text is null or email like $1)
        and ($2::text is null or reason = $2) and ($3::text is null or source = $3)`,
    [likePrefix(filter.prefix), filter.reason ?? null, filter.source ?? null],
  );
  return rows[0]?.n ?? 0;
}

/** Records an export in operator_actions: who took which part of the list, and how much. */
export async function recordSuppressionExport(
  db: Db,
  filter: SuppressionFilter,
  rows: number,
): Promise<void> {
  await db.query(
    `select public.record_operator_action('export_suppressions', null, null, null, null,
              jsonb_build_object('prefix', $1::text, 'reason', $2::text, 'source', $3::text,
                                 'rows', $4::int))`,
    [filter.prefix || null, filter.reason ?? null, filter.source ?? null, rows],
  );
}

export interface OptOut {
  reason: string;
  recorded_at: Date;
  recorded_in: string;
}

/** What unsuppress_email weighs before lifting an entry without force (opt_out_record). */
export async function optOutRecord(db: Db, email: string): Promise<OptOut[]> {
  const { rows } = await db.query<OptOut>('select * from public.opt_out_record($1)', [email]);
  return rows;
}
