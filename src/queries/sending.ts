// The SQL side of sending lives in migrations (claim_recipients, record_send_outcomes,
// finish_campaign_if_complete); claims and outcomes go through send-batches.ts, the rest are typed
// callers here, one round trip each.
import type pg from 'pg';

export interface RecipientKey {
  campaign_id: string;
  customer_id: string;
}

/**
 * What claim_recipients answers for one recipient: claimed (this job sends), or why not: the
 * recipient is gone, another job holds a fresh claim, it is in doubt, suppressed, or already
 * final (its status), or its campaign is not sending.
 */
export type ClaimOutcome =
  | 'claimed'
  | 'not_found'
  | 'in_flight'
  | 'in_doubt'
  | 'suppressed'
  | 'sent'
  | 'failed'
  | 'bounced'
  | 'complained'
  | 'unsubscribed'
  | `campaign_${'draft' | 'queued' | 'paused' | 'done'}`;

export interface SendClaim {
  outcome: ClaimOutcome;
  email: string | null;
  template_data: Record<string, unknown> | null;
  provider: 'ses' | 'internal' | null;
  provider_template_name: string | null;
  template_id: string | null;
  attempt_count: number | null;
}

export type SendOutcome =
  | { outcome: 'sent'; messageId: string }
  | { outcome: 'failed'; error: string }
  | { outcome: 'in_doubt'; error: string }
  | { outcome: 'released'; error: string; retryAt: Date }
  // An account or configuration error: back to pending, and the campaign pauses for `error`.
  | { outcome: 'paused'; error: string };

// unchanged: the recipient was not claimed (nothing recorded); stale: it has been claimed again
// since this outcome's attempt (an operator's resend), so the outcome was dropped; recorded;
// recorded_check: no recipient of the campaign is pending any more, so finishCampaignIfComplete
// must run now.
export type RecordedOutcome = 'unchanged' | 'stale' | 'recorded' | 'recorded_check';

export async function finishCampaignIfComplete(db: pg.Pool, campaignId: string): Promise<boolean> {
  const { rows } = await db.query<{ done: boolean | null }>({
    name: 'mailer_finish_campaign_if_complete',
    text: 'select public.finish_campaign_if_complete($1) as done',
    values: [campaignId],
  });
  return rows[0]?.done === true;
}

// The failure-rate guard's pause (the SES-error pause happens inside record_send_outcomes).
export async function autoPauseCampaign(
  db: pg.Pool,
  campaignId: string,
  reason: string,
): Promise<boolean> {
  const { rows } = await db.query<{ paused: boolean | null }>(
    'select public.auto_pause_campaign($1, $2) as paused',
    [campaignId, reason],
  );
  return rows[0]?.paused === true;
}
