// The local SES endpoint in its own process (forked with an IPC channel), so its CPU is counted
// apart from the workers' and the bench's, as real SES would be on another machine.
// Parent -> child: {type: 'summary'} | {type: 'clear'} | {type: 'faults', faults}
// Child -> parent: {type: 'ready', url} once listening, and one reply per request.
import { fork } from 'node:child_process';
import type { Faults } from '../../src/ses-local/server.ts';
import { processCpuMs } from './processes.ts';

export interface SesSummary {
  calls: number;
  accepted: number;
  /** acceptedAt (ms since epoch) of every accepted message, in acceptance order. */
  acceptedAt: number[];
  /** Addresses that received more than one message. */
  duplicates: number;
  distinctRecipients: number;
}

export interface SesProcess {
  url: string;
  pid: number;
  cpuMs(): number;
  summary(): Promise<SesSummary>;
  clear(): Promise<void>;
  setFaults(faults: Faults): Promise<void>;
  close(): Promise<void>;
}

/** latencyMs: added to every SES answer (the endpoint's `latencyMs` fault), as a real SES's. */
export async function startSesProcess(options: { latencyMs?: number } = {}): Promise<SesProcess> {
  const child = fork(new URL('./ses-child.ts', import.meta.url), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const replies: Array<(value: unknown) => void> = [];
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`local SES process exited (${code})`)));
    child.once('message', (m) => resolve((m as { url: string }).url));
  });
  child.on('message', (m) => replies.shift()?.(m));
  const ask = <T>(message: object) =>
    new Promise<T>((resolve) => {
      replies.push(resolve as (value: unknown) => void);
      child.send(message);
    });
  const pid = child.pid ?? 0;
  const latency = options.latencyMs ? { latencyMs: options.latencyMs } : {};
  const ses: SesProcess = {
    url,
    pid,
    cpuMs: () => processCpuMs(pid) ?? 0,
    summary: () => ask<SesSummary>({ type: 'summary' }),
    clear: async () => void (await ask({ type: 'clear' })),
    // The latency option stays under any faults set later.
    setFaults: async (faults) =>
      void (await ask({ type: 'faults', faults: { ...latency, ...faults } })),
    close: async () => {
      child.removeAllListeners('exit');
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
  if (options.latencyMs) await ses.setFaults({});
  return ses;
}
