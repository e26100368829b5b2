// `npm run bench [-- --quick] [-- name ...]`: every benchmark, one after the other, each in its own
// process with its own fresh database, so none inherits another's load. Their JSON lines go to
// stdout unchanged; progress goes to stderr; a last line sums up which targets were met.
// DATABASE_URL set: that server; unset: the embedded PostgreSQL.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const benchmarks = [
  'baselines',
  'send-throughput',
  'ses-client',
  'latency',
  'generation',
  'generation-history',
  'pacing',
  'events',
  'import',
  'scaling',
  'enqueue',
  'console',
  'unsubscribe',
];

const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('-'));
const chosen = args.filter((a) => !a.startsWith('-'));
const unknown = chosen.filter((name) => !benchmarks.includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${benchmarks}\n`);
  process.exit(2);
}

const results: Record<string, unknown>[] = [];
const failed: string[] = [];
const started = Date.now();
for (const name of chosen.length > 0 ? chosen : benchmarks) {
  const t0 = Date.now();
  process.stderr.write(`bench: ${name}...\n`);
  const child = spawn(process.execPath, [join(import.meta.dirname, `${name}.ts`), ...flags], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let pending = '';
  child.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        results.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a result line
      }
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) failed.push(name);
  process.stderr.write(
    `bench: ${name} ${code === 0 ? 'done' : `FAILED (${code})`} in ` +
      `${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
  );
}

const targets = Object.fromEntries(
  results.filter((r) => 'target_met' in r).map((r) => [String(r.bench), r.target_met]),
);
process.stdout.write(
  `${JSON.stringify({
    at: new Date().toISOString(),
    bench: 'summary',
    seconds: Math.round((Date.now() - started) / 1000),
    quick: flags.includes('--quick'),
    targets_met: targets,
    failed,
  })}\n`,
);
process.exitCode = failed.length > 0 ? 1 : 0;
