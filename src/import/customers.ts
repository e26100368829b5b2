// `mailer customers import`: streams a CSV file through csv-parse into COPY (a session-local
// staging table), then lets SQL validate, deduplicate and upsert it set-based
// (migrations/schema.sql: begin_customer_import, customer_import_summary,
// apply_customer_import, customer_import_problems). Memory stays flat whatever the file size:
// every stage is a stream with backpressure, and the rejected lines are read back with a cursor.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Info, parse } from 'csv-parse';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import {
  copyRow,
  csvOptions,
  EncodingError,
  HeaderError,
  type HeaderMap,
  normalizeLineEndings,
  readHeader,
  stagingRow,
  startLine,
  textDecoder,
} from './csv.ts';

// The file cannot be imported as given (missing, not a file, wrong header): bad usage.
export class ImportInputError extends Error {}
// The CSV breaks off (a quote never closed): nothing after it can be read, so nothing is imported.
export class ImportFileError extends Error {}

export type ApplyMode = 'always' | 'if-clean' | 'never';

export interface ImportProgress {
  bytesRead: number;
  bytesTotal: number;
  records: number;
}

export interface ImportProblem {
  line: number;
  problem: string;
  value: string | null;
}

export interface ImportSummary {
  rowsRead: number;
  valid: number;
  invalid: number;
  duplicates: number;
  inserted: number;
  updated: number;
  unchanged: number;
  applied: boolean;
}

export interface ImportOptions {
  apply: ApplyMode;
  /** A WHATWG encoding label; unset: UTF-8, or UTF-16 when the file starts with its BOM. */
  encoding?: string;
  onProgress?: (progress: ImportProgress) => void;
  progressIntervalMs?: number;
  // What the import is doing once the file is read (for a progress display).
  onStage?: (stage: 'validating' | 'upserting' | 'reporting') => void;
  onProblem: (problem: ImportProblem) => void | Promise<void>;
}

// A record csv-parse could not read (a stray quote) is a rejected line, not a failed file.
function skippedRow(line: number, reason: string): string {
  return copyRow([line, null, null, null, null, null, reason]);
}

// CSV records -> COPY rows. The first record is the header; it decides the column mapping.
// Rows leave in ~64 KB chunks (one COPY message per row would cost more than the parsing).
// Skipped records are written whenever they are noticed: the order of COPY rows does not matter,
// every row carries its line number.
const CHUNK_CHARS = 64 * 1024;

function stagingRows(skipped: string[]): Transform & { header(): HeaderMap | undefined } {
  let header: HeaderMap | undefined;
  let buffered = '';
  const transform = new Transform({
    writableObjectMode: true,
    readableObjectMode: false,
    transform(item: { record: string[]; info: Info }, _encoding, callback: TransformCallback) {
      try {
        if (skipped.length > 0) buffered += skipped.splice(0).join('');
        if (!header) {
          header = readHeader(item.record);
        } else {
          buffered += stagingRow(startLine(item.info.lines, item.record), item.record, header);
        }
        if (buffered.length < CHUNK_CHARS) return callback();
        const chunk = buffered;
        buffered = '';
        callback(null, chunk);
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(callback: TransformCallback) {
      const chunk = header ? buffered + skipped.splice(0).join('') : '';
      callback(null, chunk === '' ? undefined : chunk);
    },
  }) as Transform & { header(): HeaderMap | undefined };
  transform.header = () => header;
  return transform;
}

async function copyFile(
  client: pg.PoolClient,
  file: string,
  bytesTotal: number,
  options: ImportOptions,
): Promise<HeaderMap> {
  const source = createReadStream(file, { highWaterMark: 256 * 1024 });
  const skipped: string[] = [];
  let fatal: ImportFileError | undefined;
  let lastRecordLine = 0;
  const parser = parse({
    ...csvOptions,
    on_record: (record, context) => {
      lastRecordLine = context.lines;
      return record;
    },
    on_skip: (error) => {
      if (error?.code === 'CSV_QUOTE_NOT_CLOSED' || error?.code === 'CSV_MAX_RECORD_SIZE') {
        fatal ??= new ImportFileError(
          `line ${lastRecordLine + 1}: a quoted field is never closed, so the rest of the file ` +
            'cannot be read; fix the quote and import again (nothing was imported)',
        );
        source.destroy(fatal);
        return undefined;
      }
      const reason = (error?.message ?? 'unreadable CSV record').replace(/\s+/g, ' ');
      const line = typeof error?.lines === 'number' ? error.lines : lastRecordLine + 1;
      skipped.push(skippedRow(line, `unreadable CSV: ${reason}`));
      return undefined;
    },
  });
  const rows = stagingRows(skipped);
  const timer = options.onProgress
    ? setInterval(
        () =>
          options.onProgress?.({
            bytesRead: source.bytesRead,
            bytesTotal,
            records: Math.max(0, parser.info.records - 1),
          }),
        options.progressIntervalMs ?? 200,
      )
    : undefined;
  const copy = client.query(
    copyFrom(
      `copy pg_temp.customer_import (line, raw_email, name, company, country, is_active, csv_problem)
       from stdin`,
    ),
  );
  try {
    await pipeline(source, normalizeLineEndings(options.encoding), parser, rows, copy);
  } catch (error) {
    if (fatal) throw fatal;
    if (error instanceof HeaderError) throw new ImportInputError(`${file}: ${error.message}`);
    throw error;
  } finally {
    if (timer) clearInterval(timer);
  }
  if (fatal) throw fatal;
  const header = rows.header();
  if (!header) throw new ImportInputError(`${file}: empty file; the first line must be a header`);
  return header;
}

async function readProblems(client: pg.PoolClient, options: ImportOptions): Promise<void> {
  await client.query('begin');
  try {
    await client.query(
      'declare import_problems no scroll cursor for select * from public.customer_import_problems()',
    );
    for (;;) {
      const { rows } = await client.query<ImportProblem>('fetch 1000 from import_problems');
      for (const row of rows) await options.onProblem(row);
      if (rows.length < 1000) break;
    }
  } finally {
    await client.query('commit');
  }
}

export async function importCustomersCsv(
  pool: pg.Pool,
  file: string,
  options: ImportOptions,
): Promise<ImportSummary> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw new ImportInputError(`${file}: no such file`);
  if (options.encoding !== undefined) {
    try {
      textDecoder(options.encoding);
    } catch (error) {
      if (error instanceof EncodingError) throw new ImportInputError(error.message);
      throw error;
    }
  }
  const client = await pool.connect();
  let broken: unknown;
  try {
    await client.query('select public.begin_customer_import()');
    const header = await copyFile(client, file, info.size, options);
    options.onStage?.('validating');
    // Fresh statistics: without them the planner guesses a few thousand rows and plans the
    // window and distinct-on sorts for that.
    await client.query('analyze pg_temp.customer_import');
    const { rows } = await client.query<{
      rows_read: string;
      valid: string;
      invalid: string;
      duplicates: string;
    }>('select * from public.customer_import_summary()');
    const s = rows[0];
    const summary: ImportSummary = {
      rowsRead: Number(s?.rows_read ?? 0),
      valid: Number(s?.valid ?? 0),
      invalid: Number(s?.invalid ?? 0),
      duplicates: Number(s?.duplicates ?? 0),
      inserted: 0,
      updated: 0,
      unchanged: 0,
      applied: false,
    };
    const clean = summary.invalid === 0 && summary.duplicates === 0;
    if (options.apply === 'always' || (options.apply === 'if-clean' && clean)) {
      options.onStage?.('upserting');
      const applied = await client.query<{ inserted: string; updated: string; unchanged: string }>(
        'select * from public.apply_customer_import($1)',
        [header.index.is_active !== undefined],
      );
      const a = applied.rows[0];
      summary.inserted = Number(a?.inserted ?? 0);
      summary.updated = Number(a?.updated ?? 0);
      summary.unchanged = Number(a?.unchanged ?? 0);
      summary.applied = true;
    }
    options.onStage?.('reporting');
    await readProblems(client, options);
    await client.query('drop table if exists pg_temp.customer_import');
    return summary;
  } catch (error) {
    broken = error;
    throw error;
  } finally {
    // A connection whose COPY was aborted is not reused.
    client.release(broken instanceof Error ? broken : undefined);
  }
}
