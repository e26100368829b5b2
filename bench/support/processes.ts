// Child processes the benchmarks run (`mailer worker`, `mailer serve`, the CLI) and what they cost:
// CPU time (user and kernel) and memory, read from /proc, so every figure can say who used the CPU.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runnerNodeArgs } from '../../src/worker/supervisor.ts';
import type { BenchDatabase } from '../lib.ts';

export const projectRoot = resolve(import.meta.dirname, '..', '..');
export const cliPath = join(projectRoot, 'src', 'cli', 'main.ts');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'it'}`);
    await sleep(options.intervalMs ?? 50);
  }
}

const CLOCK_TICKS = 100;

/** User and kernel (syscalls, network stack) CPU time of a process so far, in ms. */
export function processCpuSplitMs(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      user: (Number(fields[11]) * 1000) / CLOCK_TICKS,
      system: (Number(fields[12]) * 1000) / CLOCK_TICKS,
    };
  } catch {
    return undefined;
  }
}

/** CPU time (user + kernel) of a process so far, in ms; undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  const split = processCpuSplitMs(pid);
  return split && split.user + split.system;
}

/** Resident memory of a process in MB: now (VmRSS) and its peak so far (VmHWM). */
export function processMemoryMb(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]);
    return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Busy and total CPU time of the whole machine in ms (every process, other people's too). */
export function machineCpuMs(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: ((total - idle) * 1000) / CLOCK_TICKS, total: (total * 1000) / CLOCK_TICKS };
}

export interface ChildHandle {
  pid: number;
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM (graceful), SIGKILL after 15 s. */
  stop(): Promise<void>;
}

// BENCH_CPU_PROF=dir: every child writes a V8 CPU profile there (node --cpu-prof) when it exits.
// BENCH_NODE_FLAGS: node flags for every child, after the runner's heap flags for workers, e.g.
// V8's own heap sizing for a comparison ('--max-semi-space-size=0 --heap-growing-percent=0').
function nodeFlags(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  const extra = process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  return [...extra, ...(dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [])];
}

/** Runs `mailer <args>` with the database and extra environment; keeps the last 2 MB of output. */
export function startCli(
  db: BenchDatabase,
  args: string[],
  env: Record<string, string>,
  node: string[] = nodeFlags(),
) {
  const child = spawn(process.execPath, [...node, cliPath, ...args], {
    env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-2_000_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const handle: ChildHandle = {
    pid: child.pid ?? 0,
    child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return handle;
}

/** Starts `mailer worker --no-crontab --no-supervise` processes (the runners themselves, so CPU
 * and memory figures are theirs), with node's options as `mailer worker` gives its runner, and
 * waits until each has registered. */
export async function startWorkers(
  db: BenchDatabase,
  count: number,
  env: Record<string, string>,
): Promise<ChildHandle[]> {
  const workers = Array.from({ length: count }, () =>
    startCli(
      db,
      ['worker', '--no-crontab', '--no-supervise'],
      env,
      runnerNodeArgs(nodeFlags(), process.env.NODE_OPTIONS),
    ),
  );
  for (const w of workers) {
    await waitFor(
      async () =>
        w.child.exitCode !== null ||
        (await db.pool.query('select 1 from public.worker_processes where pid = $1', [w.pid]))
          .rowCount === 1,
      { what: 'worker start', timeoutMs: 60_000 },
    );
    if (w.child.exitCode !== null) throw new Error(`worker exited:\n${w.output()}`);
  }
  return workers;
}

/** CPU time so far of the PostgreSQL backends connected to one database, by pid. */
export async function backendCpuByPid(db: BenchDatabase): Promise<Map<number, number>> {
  const { rows } = await db.pool.query<{ pid: number }>(
    'select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
    [db.name],
  );
  return new Map(rows.map((r) => [r.pid, processCpuMs(r.pid) ?? 0]));
}

/** CPU used by those backends since `before` (backends that appeared since count in full). */
export async function backendCpuSince(
  db: BenchDatabase,
  before: Map<number, number>,
): Promise<number> {
  let total = 0;
  for (const [pid, ms] of await backendCpuByPid(db)) total += ms - (before.get(pid) ?? 0);
  return total;
}
