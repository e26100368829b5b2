// Pacing: a worker process sends at most the account's rate, shared with every other process
// through the pacer row in PostgreSQL. This module owns all of it: the rate (SES_MAX_SEND_RATE or
// the account's MaxSendRate, less a headroom), the slots (reserved in batches through
// src/queries/send-batches.ts), when a paced job claims, how late a send may leave, and how many
// paced jobs of this process may hold a slot at once. tasks/send_recipient.ts only asks it.
//
// The life of a paced send: place() (the in-flight limit) -> reserve(key), which claims with the
// slot when it is due within CLAIM_LEAD_MS, else sleeps until then -> the claim (when not made
// yet) -> sendAt(slot, ...), which prepares the request (renders, serialises, signs) and holds it
// at the SDK's last step until the slot, then writes it; a send that would leave late takes a new
// slot instead, and its prepared request waits for that one.
// Unpaced, every step passes straight on.
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { SendBatches } from '../queries/send-batches.ts';
import type { RecipientKey, SendClaim } from '../queries/sending.ts';
import { fetchMaxSendRate } from '../ses/client.ts';
import { NotWrittenError, type WriteGate } from '../ses/sdk-stack.ts';
import { createLimiter } from './limiter.ts';

// Pacing spends 96% of the allowed rate: a send that starts late (a busy CPU, a slow request)
// bunches up with the next ones, and such lateness (up to slotLatenessMs) and the way to SES must
// still never put more than the account's limit into any one-second window.
export const PACING_HEADROOM = 0.96;

// How late after its slot a send may still leave; a later one takes a new slot instead (late
// sends bunch up with the on-time ones behind them). The check runs as the last step before the
// request is written (src/ses/sdk-stack.ts writeWhen): the request is rendered, serialised and
// signed before its slot, so only the write is left.
// - Pacing spends PACING_HEADROOM of R, so a one-second window holds up to (1 - H) x R sends more
//   than the slots' own spacing puts in it. Sends up to L late add H x R x L to a window, and its
//   edge one more; half of that room goes to lateness, the other half to the way to SES (requests
//   arriving closer together than they left). So L = (1 - H) / 2H - 1 / (H x R): 19.8 ms at
//   R = 1,000/s, 15.6 ms at 200/s, 10.4 ms at 100/s, and MIN_SLOT_LATENESS_MS below 97/s.
// - At R = 1,000/s a worker process keeps about 0.6 of a core busy, and the sends woken together
//   by one claim prepare in turn: with 10 ms for every rate, 220-360 of 19,200 sends (1.1-1.9%)
//   missed their slot, 80% of them by 10-20 ms, and one process reached 0.927-0.954 R. With
//   20 ms: 0-8 missed (bench/pacing.ts 4a, 2026-12-07).
// - At the low rates the floor holds, 20 ms was too much: test/pipeline/pacing.exclusive.test.ts
//   at R = 100 saw 100 sends in its first second, and the local SES refused 1-2 as over its rate
//   in 4 of 5 runs; with 10 ms, 97-100 and none refused in 6.
const MIN_SLOT_LATENESS_MS = 10;

/** How late (ms) a send paced at `rate` (sends per second, headroom taken) may leave its slot. */
export function slotLatenessMs(rate: number): number {
  const share = (1 - PACING_HEADROOM) / (2 * PACING_HEADROOM) - 1 / rate;
  return Math.max(MIN_SLOT_LATENESS_MS, share * 1000);
}

// After this many new slots a send goes as it is.
const MAX_SLOT_TRIES = 10;

// A request signed this long before its slot is signed again just before it (SES refuses a
// signature more than 5 minutes old): a new slot can be that far ahead at a low rate.
const MAX_SIGNED_AGE_MS = 60_000;

// A paced job claims this long before its slot, so that the claim's commit is done by then. A
// claim committed after its slot's slotLatenessMs loses the slot, and on these 2-core hosts
// at R = 1,000/s one claim in a hundred took 25-40 ms (bench/pacing.ts, WORKER_CONCURRENCY 128:
// with 8 ms, 250-260 of a run's 19,200 sends missed their slot, 0.947 R; with 50 ms, 86 and
// 0.956-0.957 R). A job whose slot is nearer claims at once: with 64 jobs a process
// reserves its slots only ~20 ms ahead at that rate (0.948-0.951 R, against 0.945-0.950 R with
// 8 ms), and such a claim is made in the reservation's own statement. The price: a worker killed
// in between leaves up to rate x this many more recipients claimed and never sent, in doubt (50
// at R = 1,000/s, beside the rate x SES latency in flight).
const CLAIM_LEAD_MS = 50;

// Paced jobs wake up to claim on a grid of this step, so that the jobs whose slots fall in one
// step claim in one statement and one commit (R = 1,000/s: five claims a batch instead of one).
// A claim is then committed at most CLAIM_LEAD_MS + CLAIM_TICK_MS before its slot.
const CLAIM_TICK_MS = 5;

// How far ahead the paced jobs of one process may hold send slots: at most rate x this many jobs
// wait for their slots at once (never fewer than MIN_PACED_WAITING), the others wait before
// reserving. Reserved slots queue up to (jobs waiting) / rate seconds ahead; with many jobs
// asleep on their slots, a busy CPU wakes more of them late, each late one takes a new slot at
// the back of that queue, and the rate collapses (seen at concurrency 64 under load: 26/s for
// R = 100/s). A job leaves the limit when its request starts: jobs waiting on SES's answer hold
// no slot, so the sends in flight follow rate x latency.
const PACED_HORIZON_S = 0.1;
const MIN_PACED_WAITING = 16;

// The send jobs a paced process runs at once unless WORKER_CONCURRENCY (or -c) says otherwise:
// enough to keep every slot filled. Up to rate x PACED_HORIZON_S jobs hold slots, rate x SES's
// latency wait on SES, and each spends a few ms in its claim and its outcome: rate x 0.15 s covers
// 30-50 ms of SES latency. Never fewer than an unpaced process runs. At most 128: every job holds
// its prepared request, and flat out one process sends ~2,300/s on these 2-core hosts, which 128
// jobs keep busy with up to 50 ms of SES latency.
// - bench/pacing.ts 4a (R = 1,000/s, 30 ms, one process, slots up to 20 ms late), three pairs
//   alternated on 2026-12-07: 0.950, 0.955, 0.955 R with 128 jobs against 0.950, 0.938, 0.947 R
//   with 64, whose slots were reserved only 20-35 ms ahead, so a slow claim left the pacer row
//   behind the clock.
const PACED_JOBS_S = 0.15;
const MAX_PACED_CONCURRENCY = 128;

/** Send jobs at once for a process paced at accountRate (undefined or 0: unpaced). */
export function sendConcurrency(accountRate: number | undefined, unpaced: number): number {
  const jobs = Math.ceil((accountRate ?? 0) * PACING_HEADROOM * PACED_JOBS_S);
  return Math.max(unpaced, Math.min(MAX_PACED_CONCURRENCY, jobs));
}

/**
 * A reserved send slot: its time (ms since the epoch), the rate it was taken at, and the claim
 * made with it when the slot was due within CLAIM_LEAD_MS (then the job claims no more).
 */
export interface Slot {
  at: number;
  rate: number;
  claim?: SendClaim;
}

/** A place in the in-flight limit; release() is idempotent. */
export interface Place {
  release(): void;
}

export interface Pacer {
  /** The paced rate (sends per second), or undefined when unpaced. */
  rate(): number | undefined;
  /** Waits for a place among the paced jobs that may hold a slot (at once when unpaced). */
  place(): Promise<Place>;
  /**
   * The recipient's slot, with its claim when the slot was due within CLAIM_LEAD_MS (one round
   * trip for both), else after sleeping until it is time to claim; undefined when unpaced, or
   * when the recipient is not pending or its campaign not sendable (such a job claims at once and
   * ends without spending the account's rate).
   */
  reserve(key: RecipientKey): Promise<Slot | undefined>;
  /**
   * Runs `send` at once with the gate its request must wait at (src/ses/sdk-stack.ts writeWhen;
   * undefined when unpaced): the gate opens at the slot (paced and no slot yet: a campaign resumed
   * between the reservation and the claim takes one now) and frees the place. A request that
   * would leave late takes a new slot and waits for it; one prepared too long before its slot
   * is dropped unwritten (NotWrittenError) and `send` runs again.
   */
  sendAt<T>(
    slot: Slot | undefined,
    place: Place,
    send: (gate: WriteGate | undefined) => Promise<T>,
  ): Promise<T>;
}

// Never before `at` by the clock slots are compared with: a timer may fire up to a millisecond
// early by Date.now() (it runs on the monotonic clock, rounded).
async function sleepUntil(at: number): Promise<void> {
  for (let wait = at - Date.now(); wait > 0; wait = at - Date.now()) {
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/**
 * accountRate: sends per second allowed (see resolveAccountRate); undefined or 0: unpaced.
 * onSlotMissed: called for every send that takes a new slot because it would have left late.
 */
export function createPacer(
  accountRate: () => number | undefined,
  batches: SendBatches,
  options: { maxSignedAgeMs?: number; onSlotMissed?: () => void } = {},
): Pacer {
  const maxSignedAgeMs = options.maxSignedAgeMs ?? MAX_SIGNED_AGE_MS;
  const rate = () => (accountRate() ?? 0) * PACING_HEADROOM || undefined;
  const limiter = createLimiter(() =>
    Math.max(MIN_PACED_WAITING, Math.ceil((rate() ?? 0) * PACED_HORIZON_S)),
  );
  const unlimited: Place = { release: () => undefined };

  return {
    rate,
    async place() {
      if (!rate()) return unlimited;
      return { release: await limiter.acquire() };
    },
    async reserve(key) {
      const current = rate();
      if (!current) return undefined;
      const { at, claim } = await batches.reserve(key, current, CLAIM_LEAD_MS);
      if (at === undefined) return undefined;
      if (claim) return { at, rate: current, claim };
      await sleepUntil(Math.floor((at - CLAIM_LEAD_MS) / CLAIM_TICK_MS) * CLAIM_TICK_MS);
      return { at, rate: current };
    },
    async sendAt(slot, place, send) {
      const current = slot?.rate ?? rate();
      if (current === undefined) {
        place.release();
        return send(undefined);
      }
      const lateness = slotLatenessMs(current);
      let at = slot?.at ?? (await batches.reserveAgain(current));
      let tries = 1;
      for (;;) {
        const prepared = Date.now();
        const gate: WriteGate = {
          async wait() {
            for (;;) {
              if (at - prepared > maxSignedAgeMs) throw new NotWrittenError('signed too early');
              await sleepUntil(at);
              if (tries > MAX_SLOT_TRIES || Date.now() <= at + lateness) {
                place.release();
                return;
              }
              tries++;
              options.onSlotMissed?.();
              at = await batches.reserveAgain(current);
            }
          },
        };
        try {
          return await send(gate);
        } catch (error) {
          if (!(error instanceof NotWrittenError)) throw error;
        }
        await sleepUntil(at - CLAIM_LEAD_MS);
      }
    },
  };
}

/**
 * The account rate a worker paces to, fetched once at start-up: SES_MAX_SEND_RATE when set (0:
 * unpaced), otherwise the account's MaxSendRate, refreshed every 10 minutes.
 */
export async function resolveAccountRate(
  config: Config,
  ses: SESv2Client,
  logger: Logger,
): Promise<() => number | undefined> {
  const configured = config.ses.maxSendRate;
  if (configured !== undefined) return () => configured || undefined;
  let rate = await fetchMaxSendRate(ses);
  logger.info({ maxSendRate: rate }, 'pacing at the SES account MaxSendRate');
  const refresh = setInterval(() => {
    fetchMaxSendRate(ses).then(
      (r) => {
        rate = r;
      },
      (error) => logger.warn({ err: error }, 'GetAccount failed; keeping the last rate'),
    );
  }, 600_000);
  refresh.unref();
  return () => rate;
}
