// Runs the real `mailer` binary (src/cli/main.ts) as a child process.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type pg from 'pg';

export const cliPath = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function baseEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, LOG_LEVEL: 'info', ...env };
}

export function runCli(
  args: string[],
  env: Record<string, string> = {},
  options: { input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return runNodeScript(cliPath, args, {
    env: baseEnv(env),
    input: options.input,
    timeoutMs: options.timeoutMs ?? 60_000,
  });
}

/**
 * Runs `node script args` with exactly `env` until it closes, collecting its output; SIGKILLed
 * after `timeoutMs` when given.
 */
export function runNodeScript(
  script: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: options.env,
      cwd: options.cwd,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

export interface LongRunning {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCli(args: string[], env: Record<string, string> = {}): LongRunning {
  const child = spawn(process.execPath, [cliPath, ...args], { env: baseEnv(env) });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${options.what ?? 'condition'}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

/** For a worker whose jobs never reach SES: nothing listens on the discard port; unpaced. */
export const NO_SES_ENV = { SES_ENDPOINT: 'http://127.0.0.1:9', SES_MAX_SEND_RATE: '0' };

/** `mailer worker` with `args` as a child process, SIGKILLed when the test ends. */
export function startWorkerCli(
  t: ExecutionContext,
  env: Record<string, string>,
  args: string[] = [],
): LongRunning {
  const worker = startCli(['worker', ...args], env);
  t.teardown(() => {
    worker.child.kill('SIGKILL');
  });
  return worker;
}

/** Until some worker process has registered itself in the database. */
export async function waitForWorkerRegistration(pool: pg.Pool): Promise<void> {
  await waitFor(
    async () => ((await pool.query('select 1 from public.worker_processes')).rowCount ?? 0) > 0,
    { what: 'worker registration' },
  );
}

/** `mailer serve` on a free local port, SIGKILLed when the test ends; resolves once it listens. */
export async function startServeCli(
  t: ExecutionContext,
  env: Record<string, string>,
): Promise<{ serve: LongRunning; url: string }> {
  const serve = startCli(['serve', '--port', '0', '--host', '127.0.0.1'], env);
  t.teardown(async () => {
    serve.child.kill('SIGKILL');
    await serve.exited;
  });
  const url = await waitFor(async () => /"url":"(http:[^"]+)"/.exec(serve.output())?.[1], {
    what: 'mailer serve listening',
  });
  return { serve, url };
}
