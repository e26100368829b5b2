// One circuit breaker per worker process for SES outages. When SES cannot be reached or throttles
// (an outage) or answers in a way that leaves the send in doubt, OPEN_AFTER times in a row with no
// answer in between, the process stops sending as a whole instead of releasing, logging and retrying every recipient on its own: new sends wait in
// admit() before they reserve a pacing slot or claim anyone. After the back-off one send goes
// through as a probe; its success closes the breaker and the held sends carry on by themselves, its
// failure opens it again for twice as long (up to maxBackoffMs).
import type { Logger } from '../logger.ts';

export interface BreakerOptions {
  logger: Logger;
  /** Failures in a row that open the breaker (one alone may be a single throttled call). */
  openAfter?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
}

export interface Permit {
  /** Ends the permit; a probe that made no SES call lets the next waiter probe instead. */
  release(): void;
}

type State =
  | { kind: 'closed' }
  | { kind: 'open'; until: number; backoffMs: number }
  | { kind: 'probing'; backoffMs: number; probe: object };

export interface CircuitBreaker {
  admit(signal?: AbortSignal): Promise<Permit>;
  /** SES answered (accepted or refused for a reason of its own): it is reachable. */
  succeeded(): void;
  /** An outage or ambiguous answer; `reason` names it in the one log line per outage. */
  failed(reason: string): void;
  /** When a send released now should run again (the end of the current back-off). */
  retryAt(): Date;
  isOpen(): boolean;
}

export function createCircuitBreaker(options: BreakerOptions): CircuitBreaker {
  const initialBackoffMs = options.initialBackoffMs ?? 1_000;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const openAfter = options.openAfter ?? 3;
  const now = options.now ?? Date.now;
  const log = options.logger;
  let state: State = { kind: 'closed' };
  let openedAt = 0;
  let failuresWhileOpen = 0;
  let failuresInARow = 0;
  const waiters = new Set<() => void>();

  function wakeAll(): void {
    for (const wake of [...waiters]) wake();
  }

  function open(backoffMs: number): void {
    state = { kind: 'open', until: now() + backoffMs, backoffMs };
    // Sends that waited for a probe have no timer of their own: they wake now and each times
    // its wake-up at the end of this back-off.
    wakeAll();
  }

  const released: Permit = { release: () => undefined };

  async function admit(signal?: AbortSignal): Promise<Permit> {
    for (;;) {
      signal?.throwIfAborted();
      if (state.kind === 'closed') return released;
      if (state.kind === 'open' && now() >= state.until) {
        const probe = {};
        state = { kind: 'probing', backoffMs: state.backoffMs, probe };
        return {
          release() {
            // The probe ended without telling us anything about SES: let another send probe.
            if (state.kind === 'probing' && state.probe === probe) {
              state = { kind: 'open', until: now(), backoffMs: state.backoffMs };
              wakeAll();
            }
          },
        };
      }
      // Each waiter times its own wake-up at the end of the back-off (a timer can fire a
      // millisecond before Date.now() reaches `until`: it then simply waits again).
      const backoffLeft = state.kind === 'open' ? Math.max(1, state.until - now() + 1) : undefined;
      await new Promise<void>((resolve, reject) => {
        const timer = backoffLeft === undefined ? undefined : setTimeout(() => done(), backoffLeft);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          signal?.removeEventListener('abort', done);
          if (signal?.aborted) reject(signal.reason);
          else resolve();
        };
        waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  return {
    admit,
    succeeded() {
      failuresInARow = 0;
      if (state.kind === 'closed') return;
      log.info(
        { outageMs: now() - openedAt, failures: failuresWhileOpen },
        'SES answers again: sending resumes',
      );
      state = { kind: 'closed' };
      wakeAll();
    },
    failed(reason) {
      failuresInARow++;
      if (state.kind === 'closed' && failuresInARow < openAfter) return;
      if (state.kind === 'closed') {
        openedAt = now();
        failuresWhileOpen = failuresInARow;
        log.warn(
          { reason, backoffMs: initialBackoffMs },
          'SES unavailable: this worker holds its sends and probes again after the back-off',
        );
        open(initialBackoffMs);
        return;
      }
      failuresWhileOpen++;
      if (state.kind === 'probing') {
        const backoffMs = Math.min(maxBackoffMs, state.backoffMs * 2);
        log.debug({ reason, backoffMs }, 'SES still unavailable');
        open(backoffMs);
      }
    },
    retryAt() {
      const until = state.kind === 'open' ? state.until : now();
      return new Date(Math.max(until, now()) + Math.random() * initialBackoffMs);
    },
    isOpen: () => state.kind !== 'closed',
  };
}
