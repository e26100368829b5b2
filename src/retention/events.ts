// Retention of email_events_op (the retain_email_events task). The table keeps recent events for
// support; history belongs in Redshift. Rows older than EVENTS_RETENTION_DAYS go out in batches:
//   1. stream a batch (oldest first) through a cursor into a gzip NDJSON file, fsync, rename;
//   2. read the file back and check it holds exactly those event ids;
//   3. hand it to the sink (stays local, or S3 upload verified by checksum and size);
//   4. delete exactly those ids and record the file, in one transaction (delete_exported_events).
// Any failure before step 4 deletes nothing, so a row is never deleted unless it is in a verified
// file. A crash between 3 and 4 exports the same rows again next time (same file name, so a local
// or S3 file is overwritten, not duplicated); Redshift loads should still dedupe on event_id.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { verifyGzipLines, writeGzipLines } from './export-file.ts';
import { type ExportSink, localSink, s3Sink } from './sinks.ts';

const projectRoot = resolve(import.meta.dirname, '..', '..');
const FETCH_ROWS = 1000;

// One session-level advisory lock: two runs at once would export the same rows twice.
const LOCK_KEY = 'mailer:retain_email_events';

export function exportDirectory(config: Config): string {
  return resolve(config.retention.exportDir ?? join(projectRoot, '.data', 'exports'));
}

export async function createSink(config: Config): Promise<ExportSink> {
  return config.retention.s3Bucket
    ? s3Sink(config.retention, config.ses.region)
    : localSink(exportDirectory(config));
}

export interface RetentionResult {
  files: string[];
  deleted: number;
  skipped?: 'locked';
}

interface Batch {
  ids: string[];
  first: { created_at: string; event_id: string } | undefined;
}

// Streams one batch into `path` via a cursor; returns the ids in file order.
async function writeBatch(
  client: pg.PoolClient,
  cutoff: Date,
  limit: number,
  path: (first: NonNullable<Batch['first']>) => string,
): Promise<{ batch: Batch; file: string | undefined }> {
  const batch: Batch = { ids: [], first: undefined };
  await client.query('begin isolation level repeatable read read only');
  try {
    // Timestamps as UTC ISO 8601 with a Z, which Redshift's TIMEFORMAT 'auto' reads.
    await client.query(
      `declare retention_batch no scroll cursor for
       select e.event_id::text,
              to_char(e.created_at at time zone 'UTC', 'YYYYMMDD"T"HH24MISS') as created_key,
              json_build_object(
                'event_id', e.event_id, 'event_type', e.event_type, 'email', e.email,
                'campaign_id', e.campaign_id, 'customer_id', e.customer_id,
                'ses_message_id', e.ses_message_id,
                'event_time', to_char(e.event_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'created_at', to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'payload', e.payload)::text as line
         from public.email_events_op e
        where e.created_at < $1
        order by e.created_at, e.event_id
        limit $2`,
      [cutoff, limit],
    );
    let firstRows = await fetchRows(client);
    const head = firstRows[0];
    if (!head) return { batch, file: undefined };
    batch.first = { created_at: head.created_key, event_id: head.event_id };
    const file = path(batch.first);
    async function* lines() {
      while (firstRows.length > 0) {
        for (const row of firstRows) {
          batch.ids.push(row.event_id);
          yield row.line;
        }
        firstRows = firstRows.length < FETCH_ROWS ? [] : await fetchRows(client);
      }
    }
    await writeGzipLines(file, lines());
    return { batch, file };
  } finally {
    await client.query('commit');
  }
}

async function fetchRows(client: pg.PoolClient) {
  const { rows } = await client.query<{ event_id: string; created_key: string; line: string }>(
    `fetch ${FETCH_ROWS} from retention_batch`,
  );
  return rows;
}

export async function retainEmailEvents(deps: {
  pool: pg.Pool;
  config: Config;
  logger: Logger;
  sink?: ExportSink;
}): Promise<RetentionResult> {
  const { pool, config, logger } = deps;
  const dir = exportDirectory(config);
  const client = await pool.connect();
  const result: RetentionResult = { files: [], deleted: 0 };
  let sink: ExportSink | undefined;
  try {
    const lock = await client.query<{ locked: boolean }>(
      'select pg_try_advisory_lock(hashtext($1)) as locked',
      [LOCK_KEY],
    );
    if (!lock.rows[0]?.locked) return { ...result, skipped: 'locked' };
    try {
      await mkdir(dir, { recursive: true });
      sink = deps.sink ?? (await createSink(config));
      const { rows } = await client.query<{ cutoff: Date }>(
        'select now() - make_interval(days => $1) as cutoff',
        [config.retention.eventsDays],
      );
      const cutoff = rows[0]?.cutoff ?? new Date(0);
      for (;;) {
        const { batch, file } = await writeBatch(client, cutoff, config.retention.batchRows, (f) =>
          join(dir, `email_events_op-${f.created_at}Z-${f.event_id}.ndjson.gz`),
        );
        if (!file) break;
        const verified = await verifyGzipLines(file, batch.ids);
        const location = await sink.store(verified);
        const deleted = await client.query<{ deleted: number }>(
          'select public.delete_exported_events($1::uuid[], $2, $3, $4) as deleted',
          [batch.ids, location, verified.sha256, verified.bytes],
        );
        const count = deleted.rows[0]?.deleted ?? 0;
        result.files.push(location);
        result.deleted += count;
        logger.info(
          { location, rows: batch.ids.length, deleted: count, bytes: verified.bytes },
          'retention: exported and deleted a batch of email_events_op',
        );
        if (batch.ids.length < config.retention.batchRows) break;
      }
      return result;
    } finally {
      // Ending the session would release it too; a failed unlock must not hide the real error.
      await client
        .query('select pg_advisory_unlock(hashtext($1))', [LOCK_KEY])
        .catch(() => undefined);
    }
  } finally {
    client.release();
    if (sink && !deps.sink) await sink.close();
  }
}
