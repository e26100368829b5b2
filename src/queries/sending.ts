// The SQL side of sending lives in migrations (claim_recipient, record_send_result,
// finish_campaign_if_complete); these are their typed callers, one round trip each.
import type pg from 'pg';

export interface RecipientKey {
  campaign_id: string;
  customer_id: string;
}

export interface SendClaim {
  outcome: string;
  email: string | null;
  template_data: Record<string, unknown> | null;
  provider: 'ses' | 'internal' | null;
  provider_template_name: string | null;
  template_id: string | null;
  send_at: Date | null;
  attempt_count: number | null;
}

export async function claimRecipientForSend(
  db: pg.Pool,
  key: RecipientKey,
  leaseSeconds: number,
  ratePerSecond: number | undefined,
): Promise<SendClaim> {
  const { rows } = await db.query<SendClaim>(
    'select * from public.claim_recipient($1, $2, make_interval(secs => $3), $4)',
    [key.campaign_id, key.customer_id, leaseSeconds, ratePerSecond ?? null],
  );
  const claim = rows[0];
  if (!claim) throw new Error('claim_recipient returned no row');
  return claim;
}

export async function reserveSendSlot(db: pg.Pool, ratePerSecond: number): Promise<Date> {
  const { rows } = await db.query<{ slot: Date }>('select public.reserve_send_slot($1) as slot', [
    ratePerSecond,
  ]);
  const slot = rows[0]?.slot;
  if (!slot) throw new Error('reserve_send_slot returned nothing');
  return slot;
}

export type SendOutcome =
  | { outcome: 'sent'; messageId: string }
  | { outcome: 'failed'; error: string }
  | { outcome: 'in_doubt'; error: string }
  | { outcome: 'released'; error: string; retryAt: Date };

export async function recordSendResult(
  db: pg.Pool,
  key: RecipientKey,
  result: SendOutcome,
): Promise<boolean> {
  const { rows } = await db.query<{ recorded: boolean }>(
    'select public.record_send_result($1, $2, $3, $4, $5, $6) as recorded',
    [
      key.campaign_id,
      key.customer_id,
      result.outcome,
      result.outcome === 'sent' ? result.messageId : null,
      result.outcome === 'sent' ? null : result.error,
      result.outcome === 'released' ? result.retryAt : null,
    ],
  );
  return rows[0]?.recorded === true;
}

export async function finishCampaignIfComplete(db: pg.Pool, campaignId: string): Promise<boolean> {
  const { rows } = await db.query<{ done: boolean | null }>(
    'select public.finish_campaign_if_complete($1) as done',
    [campaignId],
  );
  return rows[0]?.done === true;
}

export async function pauseAllSendingCampaigns(db: pg.Pool): Promise<string[]> {
  const { rows } = await db.query<{ campaign_id: string }>(
    `update public.campaigns set status = 'paused'
      where status in ('queued', 'sending') returning campaign_id`,
  );
  return rows.map((r) => r.campaign_id);
}
