import { z } from 'zod';
import {
  accessDenied,
  accountSuspended,
  GatewayError,
  injectedFailure,
  messageRejected,
  type SesApiError,
  sendingPaused,
} from './errors.ts';
import type { Faults } from './model.ts';
import { bareAddress } from './raw-mime.ts';

const statusSchema = z.union([z.literal(429), z.literal(500), z.literal(503)]);

// Strict so that a typo in an admin request (`failnext`) is a 400, not a silently ignored fault.
export const faultsSchema = z.strictObject({
  rejectAddresses: z.array(z.string()).optional(),
  sendingPaused: z.boolean().optional(),
  accountSuspended: z.boolean().optional(),
  failNext: z
    .strictObject({ status: statusSchema, count: z.number().int().nonnegative() })
    .optional(),
  errorRate: z
    .strictObject({ status: statusSchema, fraction: z.number().min(0).max(1) })
    .optional(),
  accessDenied: z.boolean().optional(),
  failAfterAccept: z
    .strictObject({
      status: z.union([z.literal(500), z.literal(502), z.literal(504)]),
      count: z.number().int().nonnegative(),
    })
    .optional(),
  latencyMs: z.number().nonnegative().optional(),
  hangMs: z.number().nonnegative().optional(),
});

/** The faults currently injected, with the countdown of `failNext` kept apart from the input. */
export class FaultState {
  #faults: Faults = {};
  #failNextLeft = 0;
  #failAfterAcceptLeft = 0;
  #rejected = new Set<string>();
  readonly #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  /** Replaces all faults; throws a ZodError on an invalid description. */
  set(faults: Faults): void {
    const parsed = faultsSchema.parse(faults);
    this.#faults = parsed;
    this.#failNextLeft = parsed.failNext?.count ?? 0;
    this.#failAfterAcceptLeft = parsed.failAfterAccept?.count ?? 0;
    this.#rejected = new Set(parsed.rejectAddresses?.map((address) => address.toLowerCase()));
  }

  get sendingPaused(): boolean {
    return this.#faults.sendingPaused === true;
  }

  get accountSuspended(): boolean {
    return this.#faults.accountSuspended === true;
  }

  delayMs(): number {
    return (this.#faults.latencyMs ?? 0) + (this.#faults.hangMs ?? 0);
  }

  /** A simulated front-end failure for this SendEmail call, consuming one `failNext`. */
  takeInjectedFailure(): SesApiError | undefined {
    const { failNext, errorRate } = this.#faults;
    if (failNext && this.#failNextLeft > 0) {
      this.#failNextLeft--;
      return injectedFailure(failNext.status);
    }
    if (errorRate && this.#random() < errorRate.fraction) return injectedFailure(errorRate.status);
    return undefined;
  }

  /** Before anything else: the caller may not call SendEmail at all. */
  authFailure(): SesApiError | undefined {
    return this.#faults.accessDenied ? accessDenied('ses:SendEmail') : undefined;
  }

  /** The answer that replaces "accepted" for a message already recorded, consuming one count. */
  takeFailureAfterAccept(): SesApiError | GatewayError | undefined {
    const fault = this.#faults.failAfterAccept;
    if (!fault || this.#failAfterAcceptLeft <= 0) return undefined;
    this.#failAfterAcceptLeft--;
    return fault.status === 500 ? injectedFailure(500) : new GatewayError(fault.status);
  }

  accountFailure(): SesApiError | undefined {
    if (this.accountSuspended) return accountSuspended();
    if (this.sendingPaused) return sendingPaused();
    return undefined;
  }

  recipientFailure(recipients: string[]): SesApiError | undefined {
    if (this.#rejected.size === 0) return undefined;
    const hit = recipients.find((address) =>
      this.#rejected.has(bareAddress(address).toLowerCase()),
    );
    return hit === undefined ? undefined : messageRejected(`Address rejected: ${hit}.`);
  }
}
