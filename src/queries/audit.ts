// The audit log (operator_actions) for the console: newest first, filtered by who, what and when,
// a page at a time by keyset (action_id), so page 100 costs what page 1 does.
import type { Db } from '../db/pool.ts';

export interface AuditFilter {
  actor?: string;
  action?: string;
  /** Inclusive, UTC days (YYYY-MM-DD). */
  from?: string;
  to?: string;
  /** Rows older than this action_id (the next page). */
  before?: number;
  limit: number;
}

export interface AuditRow {
  action_id: number;
  created_at: Date;
  actor: string;
  db_user: string;
  application_name: string;
  action: string;
  email: string | null;
  campaign_id: string | null;
  customer_id: string | null;
  note: string | null;
  details: Record<string, unknown>;
}

export async function listAuditActions(
  db: Db,
  filter: AuditFilter,
): Promise<{ rows: AuditRow[]; next: number | undefined }> {
  // One more row than shown tells whether there is a next page.
  const { rows } = await db.query<AuditRow>(
    `select action_id::int, created_at, actor, db_user, application_name, action, email,
            campaign_id, customer_id, note, details
       from public.operator_actions
      where ($1::text is null or actor = $1)
        and ($2::text is null or action = $2)
        and ($3::date is null or created_at >= $3::date::timestamp at time zone 'UTC')
        and ($4::date is null or created_at < ($4::date + 1)::timestamp at time zone 'UTC')
        and ($5::bigint is null or action_id < $5)
      order by action_id desc
      limit $6`,
    [
      filter.actor ?? null,
      filter.action ?? null,
      filter.from ?? null,
      filter.to ?? null,
      filter.before ?? null,
      filter.limit + 1,
    ],
  );
  const more = rows.length > filter.limit;
  const shown = more ? rows.slice(0, filter.limit) : rows;
  return { rows: shown, next: more ? shown.at(-1)?.action_id : undefined };
}

/** Who acted lately, for the filter's suggestions (the last 1,000 actions, not the whole log). */
export async function recentActors(db: Db): Promise<string[]> {
  const { rows } = await db.query<{ actor: string }>(
    `select distinct actor from (select actor from public.operator_actions
                                  order by action_id desc limit 1000) recent
      order by actor`,
  );
  return rows.map((r) => r.actor);
}

/** The actions the log may hold: the operator_actions_action_check constraint's list. */
export async function auditActions(db: Db): Promise<string[]> {
  const { rows } = await db.query<{ def: string }>(
    `select pg_get_constraintdef(oid) as def from pg_catalog.pg_constraint
      where conname = 'operator_actions_action_check'
        and conrelid = 'public.operator_actions'::regclass`,
  );
  return [...(rows[0]?.def ?? '').matchAll(/'([a-z_]+)'/g)].map((m) => m[1] as string).sort();
}
