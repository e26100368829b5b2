// Claims and outcomes of the sends a worker process runs at the same moment, written in batches:
// one statement and one commit for all of them instead of a round trip and a commit per send.
// (The done checks of a campaign's last sends are shared the same way.)
// A batch goes out as soon as fewer than `maxInFlight` are on their way; whatever arrives
// meanwhile waits for the next one. So a lone send waits for nobody, and a busy process pays per
// batch what it used to pay per send. Each job still gets its own answer, and a claim is still
// committed before its SendEmail: the answer arrives after the batch's commit.
import type pg from 'pg';
import { coalesce } from './coalesce.ts';
import {
  finishCampaignIfComplete,
  type RecipientKey,
  type RecordedOutcome,
  type SendClaim,
  type SendOutcome,
} from './sending.ts';

// Outcomes wait up to this long for others to share their statement and commit: a paced send's
// outcome arrives alone (its SES answer, one per slot), so without it a process at R = 1,000/s
// wrote several hundred one-row outcome batches a second. The cost: a process killed in that time
// leaves those sends in doubt (settled by their SES events), as it would any send still waiting
// for SES's answer.
const OUTCOME_LINGER_MS = 5;

// Row locks are taken in this order by every batch, so two batches never wait on each other in a
// cycle.
function byKey(a: RecipientKey, b: RecipientKey): number {
  if (a.campaign_id !== b.campaign_id) return a.campaign_id < b.campaign_id ? -1 : 1;
  if (a.customer_id === b.customer_id) return 0;
  return a.customer_id < b.customer_id ? -1 : 1;
}

/** Runs `query` on the items sorted by key; maps its rows (1-based `ord`) back to the items. */
async function sortedBatch<I extends { key: RecipientKey }, R extends { ord: number }>(
  items: I[],
  what: string,
  query: (sorted: I[]) => Promise<R[]>,
): Promise<R[]> {
  const sorted = items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => byKey(a.item.key, b.item.key));
  const rows = await query(sorted.map((s) => s.item));
  const results: (R | undefined)[] = items.map(() => undefined);
  for (const row of rows) {
    const target = sorted[row.ord - 1];
    if (target) results[target.index] = row;
  }
  const answered = results.filter((r): r is R => r !== undefined);
  if (answered.length !== items.length) {
    throw new Error(`${what}: expected ${items.length} rows, got ${rows.length}`);
  }
  return answered;
}

/**
 * A slot (ms since the epoch; undefined: the recipient is not pending or its campaign not
 * sendable) and the claim made with it, if its slot was due.
 */
export interface Reservation {
  at: number | undefined;
  claim?: SendClaim;
}

export interface SendBatches {
  /**
   * A pacing slot at `rate` per second, and the claim too when the slot is due within `leadMs`
   * (committed before the answer, as any claim). One round trip per batch of callers.
   */
  reserve(key: RecipientKey, rate: number, leadMs: number): Promise<Reservation>;
  /** A new slot for a send that would have left late (ms since the epoch); batched likewise. */
  reserveAgain(rate: number): Promise<number>;
  /** paced: the caller holds a send slot and claims just before it (a batch of its own kind). */
  claim(key: RecipientKey, paced: boolean): Promise<SendClaim>;
  /** attempt: the claim's attempt_count; an outcome is recorded only for the claim it names. */
  record(key: RecipientKey, attempt: number, outcome: SendOutcome): Promise<RecordedOutcome>;
  /**
   * finish_campaign_if_complete for the campaign, shared by the callers that ask while one check
   * is on its way; true for the first caller of a check that finished the campaign only.
   */
  finishIfComplete(campaignId: string): Promise<boolean>;
}

export function createSendBatches(
  db: pg.Pool,
  options: {
    leaseSeconds: number;
    maxBatch?: number;
    maxInFlight?: number;
  },
): SendBatches {
  const limits = { maxBatch: options.maxBatch ?? 64, maxInFlight: options.maxInFlight ?? 1 };

  const claimBatch = (items: { key: RecipientKey }[]) =>
    sortedBatch(items, 'claim_recipients', async (sorted) => {
      const { rows } = await db.query<SendClaim & { ord: number }>({
        name: 'mailer_claim_recipients',
        text: `select * from public.claim_recipients($1::uuid[], $2::uuid[],
                                                       make_interval(secs => $3))`,
        values: [
          sorted.map((i) => i.key.campaign_id),
          sorted.map((i) => i.key.customer_id),
          options.leaseSeconds,
        ],
      });
      return rows;
    });
  const batchedClaim = coalesce(claimBatch, limits);
  // Paced sends claim just before their slot, together with the paced sends waking at the same
  // moment (at a rate that does not bind, all the jobs of a reservation batch). A claim must not
  // wait long behind another batch (the send would be late for its slot and take a new one), so
  // a few paced batches may be on their way at once.
  const pacedClaim = coalesce(claimBatch, { maxBatch: limits.maxBatch, maxInFlight: 4 });

  // Slots: one call for the jobs asking at the same moment; it moves the shared pacer row once,
  // and claims the recipients whose slots are due (the others claim just before their slots).
  const reserve = coalesce<{ key: RecipientKey; rate: number; leadMs: number }, Reservation>(
    async (items) =>
      (
        await sortedBatch(items, 'reserve_send_slots_and_claim', async (sorted) => {
          const { rows } = await db.query<
            SendClaim & { ord: number; slot: Date | null; claimed: boolean }
          >({
            name: 'mailer_reserve_send_slots_and_claim',
            text: `select * from public.reserve_send_slots_and_claim($1, $2::uuid[], $3::uuid[],
                     make_interval(secs => $4), make_interval(secs => $5))`,
            values: [
              // The rate is the process's (deps.sendRate()); a change mid-batch waits one batch.
              sorted[0]?.rate ?? 1,
              sorted.map((i) => i.key.campaign_id),
              sorted.map((i) => i.key.customer_id),
              options.leaseSeconds,
              (sorted[0]?.leadMs ?? 0) / 1000,
            ],
          });
          return rows;
        })
      ).map(({ slot, claimed, ord: _ord, ...claim }) =>
        claimed ? { at: slot?.getTime(), claim } : { at: slot?.getTime() },
      ),
    limits,
  );

  const record = coalesce<
    { key: RecipientKey; attempt: number; result: SendOutcome },
    RecordedOutcome
  >(
    async (items) =>
      (
        await sortedBatch(items, 'record_send_outcomes', async (sorted) => {
          const { rows } = await db.query<{ ord: number; recorded: RecordedOutcome }>({
            name: 'mailer_record_send_outcomes',
            text: `select * from public.record_send_outcomes($1::uuid[], $2::uuid[], $3::int[],
                                                             $4::text[], $5::text[], $6::text[],
                                                             $7::timestamptz[])`,
            values: [
              sorted.map((i) => i.key.campaign_id),
              sorted.map((i) => i.key.customer_id),
              sorted.map((i) => i.attempt),
              sorted.map((i) => i.result.outcome),
              sorted.map((i) => (i.result.outcome === 'sent' ? i.result.messageId : null)),
              sorted.map((i) => (i.result.outcome === 'sent' ? null : i.result.error)),
              sorted.map((i) => (i.result.outcome === 'released' ? i.result.retryAt : null)),
            ],
          });
          return rows;
        })
      ).map((row) => row.recorded),
    { ...limits, lingerMs: OUTCOME_LINGER_MS },
  );

  const reserveAgain = coalesce<number, number>(async (rates) => {
    const rate = rates[0] ?? 1;
    const { rows } = await db.query<{ first: Date }>({
      name: 'mailer_reserve_send_slots',
      text: 'select public.reserve_send_slots($1, $2) as first',
      values: [rate, rates.length],
    });
    const first = rows[0]?.first?.getTime();
    if (first === undefined) throw new Error('reserve_send_slots returned nothing');
    return rates.map((_, i) => first + (i * 1000) / rate);
  }, limits);

  // The last sends of a campaign each ask whether it is done, and each check reads the campaign's
  // pending recipients (at the end, past the dead entries of all of them). Those that ask while a
  // check is on its way share the next one, which starts after their outcomes committed and so
  // sees them.
  const finishIfComplete = coalesce<string, boolean>(
    async (campaignIds) => {
      const done = new Map<string, boolean>();
      for (const id of [...new Set(campaignIds)].sort()) {
        done.set(id, await finishCampaignIfComplete(db, id));
      }
      // One true per campaign: the first of its callers (the others see it already done).
      return campaignIds.map((id) => {
        const first = done.get(id) === true;
        done.delete(id);
        return first;
      });
    },
    { maxBatch: 1_000, maxInFlight: 1 },
  );

  return {
    reserve: (key, rate, leadMs) => reserve({ key, rate, leadMs }),
    reserveAgain: (rate) => reserveAgain(rate),
    claim: (key, paced) => (paced ? pacedClaim({ key }) : batchedClaim({ key })),
    record: (key, attempt, result) => record({ key, attempt, result }),
    finishIfComplete,
  };
}
