// Shared by the fault suites: seeded randomness (every trial can be replayed from its seed), the
// SES event loop (local SES -> signed SNS notification -> POST /webhooks/ses -> process_ses_event)
// with events held back on demand, and the end state every trial must reach, checked against what
// the local SES endpoint received rather than against the project's own bookkeeping.
import { randomInt } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import type pg from 'pg';
import {
  createEventPublisher,
  type EventPublisher,
  LOCAL_TOPIC_ARN,
} from '../../src/ses-local/event-publisher.ts';
import type { LocalSes, SentMessage } from '../../src/ses-local/server.ts';
import { waitFor } from '../helpers/cli.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { type RunningServer, startServer, testLogger } from '../http/helpers.ts';

// ---------------------------------------------------------------------------------------------
// Trials and seeds. CI runs a few trials per file; `FAULTS_TRIALS=50` is the soak mode. Trial i
// uses seed FAULTS_SEED + i, so `FAULTS_SEED=<a trial's seed> FAULTS_TRIALS=1` replays that trial.

export function trialCount(ciDefault: number): number {
  const raw = process.env.FAULTS_TRIALS;
  if (raw === undefined || raw === '') return ciDefault;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`FAULTS_TRIALS must be >= 1, got ${raw}`);
  return n;
}

export function baseSeed(): number {
  const raw = process.env.FAULTS_SEED;
  if (raw === undefined || raw === '') return randomInt(1, 2 ** 31);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`FAULTS_SEED must be an integer, got ${raw}`);
  return n;
}

export function replayHint(file: string, seed: number): string {
  return `replay: FAULTS_SEED=${seed} FAULTS_TRIALS=1 npm test -- ${file}`;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export class Random {
  #state: number;

  constructor(seed: number) {
    // Trials use consecutive seeds; mixing them first (murmur3's finaliser) keeps their sequences
    // unrelated (unmixed, the n-th draws of seeds s, s+1, s+2... move together).
    let z = (seed >>> 0) ^ 0x9e3779b9;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    this.#state = (z ^ (z >>> 16)) >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// SES events. The local SES endpoint calls onSend for every message it accepts; the sink turns
// them into the signed SNS notifications SES would publish, POSTed to a real webhook server
// (createPublicServer) that stores them and enqueues process_ses_event for the workers. Held
// events are only published on release(): a trial can first create in-doubt recipients, then
// check that the events reconcile them.

export interface EventSink {
  onSend(message: SentMessage): void;
  /** Starts the webhook on `pool` and the publisher; events accepted before this wait for it. */
  connect(pool: pg.Pool): Promise<void>;
  /** Publishes every held event (and stops holding), and waits until the webhook took them all. */
  release(): Promise<void>;
  close(): Promise<void>;
}

export function createEventSink(options: { hold: boolean }): EventSink {
  const held: SentMessage[] = [];
  let holding = options.hold;
  let server: RunningServer | undefined;
  let publisher: EventPublisher | undefined;
  return {
    onSend(message) {
      if (holding || publisher === undefined) held.push(message);
      else publisher.publish(message);
    },
    async connect(pool) {
      server = await startServer(pool, {
        SNS_TOPIC_ARNS: LOCAL_TOPIC_ARN,
        SNS_TRUST_LOCAL_CERT: 'true',
      });
      publisher = createEventPublisher({
        webhookUrl: `${server.url}/webhooks/ses`,
        logger: testLogger,
        attempts: 8,
      });
      if (!holding) for (const message of held.splice(0)) publisher.publish(message);
    },
    async release() {
      if (publisher === undefined) throw new Error('event sink not connected');
      holding = false;
      for (const message of held.splice(0)) publisher.publish(message);
      await publisher.drain();
    },
    async close() {
      await publisher?.drain();
      await server?.close();
    },
  };
}

/** Waits until the local SES endpoint has answered every SendEmail call it received. */
export async function sesIdle(ses: LocalSes, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      const response = await fetch(`${ses.url}/_local/stats`);
      const stats = (await response.json()) as {
        accepted: number;
        calls: number;
        rejected: number;
      };
      return stats.calls === stats.accepted + stats.rejected;
    },
    { what: 'SES calls answered', timeoutMs, intervalMs: 100 },
  );
}

/** Waits until no process_ses_event job is left; a job that failed for good fails the wait. */
export async function waitForEventsApplied(db: TestDatabase, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await db.pool.query<{ left: number; failed: number }>(
        `select count(*)::int as left, count(*) filter (where attempts >= max_attempts)::int as failed
           from graphile_worker.jobs where task_identifier = 'process_ses_event'`,
      );
      const row = rows[0];
      if (row && row.failed > 0) throw new Error(`${row.failed} process_ses_event job(s) failed`);
      return row?.left === 0;
    },
    { what: 'SES events applied', timeoutMs, intervalMs: 200 },
  );
}

// ---------------------------------------------------------------------------------------------
// The end state.

/** Where a recipient of a finished campaign may end; pending and sending mean it was lost. */
export const SETTLED = new Set([
  'sent',
  'failed',
  'suppressed',
  'unsubscribed',
  'in_doubt',
  'bounced',
  'complained',
]);

export interface EndState {
  recipients: number;
  byStatus: Record<string, number>;
  accepted: number;
  calls: number;
  duplicates: string[];
  /** in_doubt recipients SES never accepted a message for: visible, never resent. */
  unsentInDoubt: number;
}

/**
 * Checks a finished campaign against what SES received:
 * - no address was accepted twice (duplicates counted at the endpoint);
 * - every recipient is settled (nobody pending or sending: nobody lost);
 * - a sent recipient got exactly one message, with the message id SES gave it;
 * - suppressed, unsubscribed and failed recipients got nothing;
 * - after the events are in (`reconciled`), an in_doubt recipient is one SES never accepted.
 */
export async function checkEndState(
  t: ExecutionContext,
  options: { db: TestDatabase; ses: LocalSes; campaignId: string; reconciled: boolean },
): Promise<EndState> {
  const { db, ses, campaignId } = options;
  const messages = ses.sent();
  const byAddress = new Map<string, SentMessage[]>();
  for (const message of messages) {
    for (const to of message.to) byAddress.set(to, [...(byAddress.get(to) ?? []), message]);
  }
  const duplicates = [...byAddress].filter(([, m]) => m.length > 1).map(([address]) => address);
  t.deepEqual(duplicates, [], 'no address was accepted twice by SES');

  const { rows } = await db.pool.query<{
    email: string;
    recipient_status: string;
    ses_message_id: string | null;
  }>(
    `select email, recipient_status, ses_message_id from campaign_recipients
      where campaign_id = $1`,
    [campaignId],
  );
  const byStatus: Record<string, number> = {};
  const problems: string[] = [];
  let unsentInDoubt = 0;
  const ours = new Set<string>();
  for (const row of rows) {
    ours.add(row.email);
    byStatus[row.recipient_status] = (byStatus[row.recipient_status] ?? 0) + 1;
    const got = byAddress.get(row.email) ?? [];
    const status = row.recipient_status;
    if (!SETTLED.has(status)) problems.push(`${row.email} is ${status}: lost`);
    else if (status === 'sent' || status === 'bounced' || status === 'complained') {
      if (got.length !== 1) problems.push(`${row.email} is ${status} but SES has ${got.length}`);
      else if (row.ses_message_id !== got[0]?.messageId) {
        problems.push(`${row.email}: message id ${row.ses_message_id} <> ${got[0]?.messageId}`);
      }
    } else if (status === 'in_doubt') {
      if (got.length === 0) unsentInDoubt++;
      else if (options.reconciled) problems.push(`${row.email} still in_doubt after its events`);
    } else if (got.length !== 0) {
      problems.push(`${row.email} is ${status} but SES accepted ${got.length}`);
    }
  }
  for (const address of byAddress.keys()) {
    if (!ours.has(address)) problems.push(`SES accepted a message for a stranger: ${address}`);
  }
  t.deepEqual(problems.slice(0, 20), [], `${problems.length} recipient(s) inconsistent`);
  return {
    recipients: rows.length,
    byStatus,
    accepted: messages.length,
    calls: ses.sendCallCount(),
    duplicates,
    unsentInDoubt,
  };
}

/** What a campaign that does not finish is stuck on, for the test log. */
export async function explainStall(db: TestDatabase, campaignId: string): Promise<string> {
  const query = async (sql: string, values: unknown[] = []) =>
    JSON.stringify((await db.pool.query(sql, values)).rows);
  return [
    `campaign: ${await query('select status from campaigns where campaign_id = $1', [campaignId])}`,
    `recipients: ${await query(
      `select recipient_status, count(*)::int, max(last_error) as error from campaign_recipients
        where campaign_id = $1 group by 1`,
      [campaignId],
    )}`,
    `jobs: ${await query(
      `select task_identifier, locked_by, attempts, max_attempts, run_at, left(last_error, 120) as error,
              count(*)::int as n
         from graphile_worker.jobs group by 1, 2, 3, 4, 5, 6 order by n desc limit 15`,
    )}`,
    `workers: ${await query(
      `select w.pid, w.supervisor_pid, w.process_id, cardinality(w.worker_ids) as ids,
              exists (select 1 from pg_stat_activity a where a.application_name = w.process_id) as connected
         from worker_processes w`,
    )}`,
  ].join('\n');
}

/** Jobs still locked (by anyone), and jobs that failed for good. */
export async function jobHealth(
  db: TestDatabase,
): Promise<{ locked: number; failed: number; errors: string[] }> {
  const { rows } = await db.pool.query<{ locked: number; failed: number; errors: string[] }>(
    `select count(*) filter (where locked_at is not null)::int as locked,
            count(*) filter (where attempts >= max_attempts)::int as failed,
            coalesce(array_agg(distinct left(last_error, 200))
                       filter (where attempts >= max_attempts), '{}') as errors
       from graphile_worker.jobs`,
  );
  return rows[0] ?? { locked: -1, failed: -1, errors: [] };
}
