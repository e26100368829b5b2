// Figure 6, import: `mailer customers import FILE.csv` (a child process, as an operator runs it) on
// a generated 1,000,000-row CSV (0.1% invalid addresses, 0.1% duplicates, quoted fields) into an
// empty customers table. The child's resident memory is sampled every 100 ms; "flat" means the
// same peak for a file five times smaller, imported first.
// Baseline, same database: COPY of the same file into a plain five-column text table (getting the
// bytes into PostgreSQL at all), through pg-copy-streams from this process.
// Targets: < 30 s, flat memory.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { type BenchDatabase, createBenchDatabase, emit, quick, timed } from './lib.ts';
import { processMemoryMb, sleep, startCli } from './support/processes.ts';
import { percentile, round } from './support/sampling.ts';

const rows = quick ? 200_000 : 1_000_000;

async function writeCsv(path: string, count: number): Promise<void> {
  const out = createWriteStream(path);
  out.write('email,name,company,country,is_active\n');
  let chunk = '';
  for (let i = 1; i <= count; i++) {
    const email =
      i % 1000 === 500
        ? `not-an-address-${i}`
        : `customer${i % 1000 === 999 ? i - 1 : i}@example.com`;
    chunk += `${email},Customer ${i},"Company ${i % 5000}, Inc.",NL,${i % 10 === 0 ? 'false' : 'true'}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      chunk = '';
    }
  }
  out.end(chunk);
  await new Promise<void>((r) => out.once('finish', () => r()));
}

async function rawCopy(db: BenchDatabase, path: string): Promise<number> {
  await db.pool.query(
    'create table public.bench_raw_csv (email text, name text, company text, country text, is_active text)',
  );
  const client = await db.pool.connect();
  try {
    const { ms } = await timed(() =>
      pipeline(
        createReadStream(path),
        client.query(copyFrom('copy public.bench_raw_csv from stdin (format csv, header true)')),
      ),
    );
    return ms;
  } finally {
    client.release();
    await db.pool.query('drop table public.bench_raw_csv');
  }
}

/** Runs the import; returns its time, summary and memory samples (MB). */
async function runImport(db: BenchDatabase, path: string) {
  const t0 = performance.now();
  const child = startCli(db, ['customers', 'import', path, '--json'], {});
  const rss: number[] = [];
  while (child.child.exitCode === null) {
    const m = processMemoryMb(child.pid);
    if (m) rss.push(m.rss);
    await sleep(100);
  }
  const code = await child.exited;
  const ms = performance.now() - t0;
  const output = child.output();
  const summary = /"summary":(\{[^}]*\})/.exec(output)?.[1];
  if (code !== 0 || !summary) throw new Error(`import failed (${code}):\n${output.slice(-2000)}`);
  return { ms, summary: JSON.parse(summary) as Record<string, number>, rss };
}

const dir = await mkdtemp(join(tmpdir(), 'mailer-bench-import-'));
const db = await createBenchDatabase('import');
try {
  const small = join(dir, 'small.csv');
  const big = join(dir, 'customers.csv');
  await writeCsv(small, rows / 5);
  await writeCsv(big, rows);
  const copyMs = await rawCopy(db, big);
  const reference = await runImport(db, small);
  await db.pool.query('truncate public.customers cascade');
  await db.pool.query('vacuum analyze public.customers');
  const run = await runImport(db, big);
  const peak = Math.max(0, ...run.rss);
  const referencePeak = Math.max(0, ...reference.rss);
  // writeCsv: one row in 1,000 is invalid and one repeats the row before it.
  const expected = rows - (2 * rows) / 1000;
  const { rows: stored } = await db.pool.query<{ n: number }>(
    'select count(*)::int as n from public.customers',
  );
  emit({
    bench: 'import',
    rows,
    ms: round(run.ms),
    rows_per_second: round(rows / (run.ms / 1000)),
    summary: run.summary,
    rss_mb: {
      p50: round(percentile(run.rss, 50)),
      peak: round(peak),
      [`peak_for_${rows / 5}_rows`]: round(referencePeak),
    },
    baseline_raw_copy_ms: round(copyMs),
    ratio_to_raw_copy: round(run.ms / copyMs, 2),
    customers_stored: stored[0]?.n,
    target_met:
      run.ms < 30_000 &&
      referencePeak > 0 &&
      peak < referencePeak * 1.25 + 10 &&
      stored[0]?.n === expected,
  });
} finally {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
}
