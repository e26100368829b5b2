// Numbers and database observations the figures are explained with.
import type pg from 'pg';
import { sleep } from './processes.ts';

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

export const round = (n: number, digits = 0) => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

export interface WaitEventShare {
  samples: number;
  active_backends_avg: number;
  share: Record<string, number>;
  /** Heavyweight lock waits seen: "locktype relation: statement" -> samples. */
  lock_waits: Record<string, number>;
  /** Autovacuum workers seen in the database: "autovacuum: VACUUM table" -> samples. */
  autovacuum: Record<string, number>;
}

/**
 * Samples pg_stat_activity for one database every intervalMs: what its active backends wait on
 * ("CPU" when they wait on nothing: running, or waiting for the OS scheduler), and what
 * autovacuum works on (it shares the cores with the figure being measured).
 */
export function sampleWaitEvents(pool: pg.Pool, database: string, intervalMs = 50) {
  const counts = new Map<string, number>();
  const locks = new Map<string, number>();
  const vacuums = new Map<string, number>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      await sampleOnce().catch(() => {
        // The pool is gone (the benchmark failed and is cleaning up): stop sampling.
        running = false;
      });
      await sleep(intervalMs);
    }
  })();
  async function sampleOnce() {
    const { rows } = await pool.query<{ wait: string; n: number; autovacuum: string[] | null }>(
      `select coalesce(wait_event_type || ':' || wait_event, 'CPU') as wait, count(*)::int as n,
              array_agg(left(query, 80)) filter (where backend_type = 'autovacuum worker')
                as autovacuum
         from pg_stat_activity
        where datname = $1 and state = 'active' and pid <> pg_backend_pid()
        group by 1`,
      [database],
    );
    samples++;
    for (const r of rows) counts.set(r.wait, (counts.get(r.wait) ?? 0) + r.n);
    for (const query of rows.flatMap((r) => r.autovacuum ?? [])) {
      vacuums.set(query, (vacuums.get(query) ?? 0) + 1);
    }
    if (rows.some((r) => r.wait.startsWith('Lock:'))) {
      const waits = await pool.query<{ what: string }>(
        `select l.locktype || coalesce(' ' || l.relation::regclass::text, '') || ': ' ||
                left(regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 60) as what
           from pg_locks l join pg_stat_activity a using (pid)
          where not l.granted and a.datname = $1`,
        [database],
      );
      for (const w of waits.rows) locks.set(w.what, (locks.get(w.what) ?? 0) + 1);
    }
  }
  return {
    async stop(): Promise<WaitEventShare> {
      running = false;
      await loop;
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8);
      return {
        samples,
        active_backends_avg: round(total / Math.max(1, samples), 2),
        share: Object.fromEntries(top.map(([k, v]) => [k, round(v / Math.max(1, total), 3)])),
        lock_waits: Object.fromEntries([...locks].sort((a, b) => b[1] - a[1]).slice(0, 5)),
        autovacuum: Object.fromEntries([...vacuums].sort((a, b) => b[1] - a[1]).slice(0, 5)),
      };
    },
  };
}

export interface DatabaseCounters {
  commits: number;
  walBytes: number;
  walFpi: number;
}

/** Commits of the current database and WAL written by the whole server (pg_stat_wal, PG 14+). */
export async function databaseCounters(pool: pg.Pool): Promise<DatabaseCounters> {
  const { rows } = await pool.query<DatabaseCounters>(
    `select (select xact_commit from pg_stat_database where datname = current_database())::float8
              as "commits",
            wal_bytes::float8 as "walBytes", wal_fpi::float8 as "walFpi"
       from pg_stat_wal`,
  );
  return rows[0] as DatabaseCounters;
}
