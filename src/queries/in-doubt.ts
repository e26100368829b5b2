// In-doubt recipients (SendEmail called, outcome never recorded): typed callers of
// in_doubt_recipients, resolve_in_doubt, reconcile_in_doubt and auto_resend_in_doubt.
import type { Db } from '../db/pool.ts';

export interface InDoubtRecipient {
  campaign_id: string;
  campaign_name: string;
  customer_id: string;
  email: string;
  attempt_count: number;
  last_attempt_at: Date;
  last_error: string | null;
  events: number;
}

export async function inDoubtRecipients(
  db: Db,
  options: { campaignId?: string | undefined; olderThanSeconds?: number; limit?: number } = {},
): Promise<InDoubtRecipient[]> {
  const { rows } = await db.query<InDoubtRecipient>(
    `select campaign_id, campaign_name, customer_id, email, attempt_count, last_attempt_at,
            last_error, events::int
       from public.in_doubt_recipients(make_interval(secs => $1))
      where $2::uuid is null or campaign_id = $2
      limit $3`,
    [options.olderThanSeconds ?? 0, options.campaignId ?? null, options.limit ?? null],
  );
  return rows;
}

export type InDoubtDecision = 'sent' | 'resend' | 'failed';

export async function resolveInDoubt(
  db: Db,
  key: { campaignId: string; customerId: string },
  decision: InDoubtDecision,
  note: string | undefined,
): Promise<string> {
  const { rows } = await db.query<{ result: string }>(
    'select public.resolve_in_doubt($1, $2, $3, $4) as result',
    [key.campaignId, key.customerId, decision, note ?? null],
  );
  return rows[0]?.result ?? '';
}

export interface Reconciled {
  campaign_id: string;
  customer_id: string;
  recipient_status: string;
  /** Null when `error` says why this recipient could not be looked at (the others were). */
  event_id: string | null;
  event_type: string | null;
  error: string | null;
}

/** Settles in-doubt recipients with their own SES events; the lease bounds an attempt's window. */
export async function reconcileInDoubt(
  db: Db,
  options: { leaseSeconds: number },
): Promise<Reconciled[]> {
  const { rows } = await db.query<Reconciled>(
    'select * from public.reconcile_in_doubt(make_interval(secs => $1))',
    [options.leaseSeconds],
  );
  return rows;
}

export interface AutoResend {
  campaign_id: string;
  customer_id: string;
  resent: boolean;
  /** What was done, or why the recipient was kept in doubt. */
  result: string;
}

/**
 * IN_DOUBT_RESEND_AFTER_MINUTES: queues again, once, the in-doubt recipients with no SES event
 * `afterSeconds` after their attempt. Only for a configuration set that publishes Send events.
 */
export async function autoResendInDoubt(
  db: Db,
  options: { afterSeconds: number; leaseSeconds: number },
): Promise<AutoResend[]> {
  const { rows } = await db.query<AutoResend>(
    `select * from public.auto_resend_in_doubt(make_interval(secs => $1),
                                               make_interval(secs => $2))`,
    [options.afterSeconds, options.leaseSeconds],
  );
  return rows;
}

// A customer named by id or by address.
export async function findCustomerId(db: Db, ref: string): Promise<string | undefined> {
  const { rows } = await db.query<{ customer_id: string }>(
    ref.includes('@')
      ? 'select customer_id from public.customers where email = public.normalize_email($1)'
      : 'select customer_id from public.customers where customer_id = $1::uuid',
    [ref],
  );
  return rows[0]?.customer_id;
}
