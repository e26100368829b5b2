// Typed callers of the SES event SQL (the baseline migration's section "SES events and SNS";
// today's bodies in migrations/schema.sql), one round trip each.
import type { Config } from '../config.ts';
import type { Db } from '../db/pool.ts';
import type { SnsNotification } from '../sns/message.ts';

/**
 * Stores verified notifications and enqueues one process_ses_event per new MessageId, in one
 * statement (so one transaction and one commit for the batch). Per envelope, in order: false when
 * its MessageId was accepted before (a redelivery, nothing done).
 */
export async function recordSnsNotifications(
  db: Db,
  envelopes: SnsNotification[],
): Promise<boolean[]> {
  const { rows } = await db.query<{ ord: number; fresh: boolean }>(
    'select ord, fresh from public.record_sns_notifications($1, $2, $3::json[])',
    [
      envelopes.map((e) => e.MessageId),
      envelopes.map((e) => e.TopicArn),
      envelopes.map((e) => JSON.stringify(e)),
    ],
  );
  const fresh = envelopes.map(() => false);
  for (const row of rows) fresh[row.ord - 1] = row.fresh;
  return fresh;
}

export interface SesEventOutcome {
  event_id: string;
  event_type: string;
  ses_message_id: string | null;
  campaign_id: string | null;
  customer_id: string | null;
  /** What changed, for the log line ("recipient bounced; 1 address(es) newly suppressed"). */
  effect: string;
  /** Set when the reputation guard paused the campaign because of this event. */
  paused_reason: string | null;
}

export async function applySesEvent(
  db: Db,
  event: Record<string, unknown>,
  limits: Config['reputation'],
): Promise<SesEventOutcome> {
  const { rows } = await db.query<SesEventOutcome>(
    'select * from public.apply_ses_event($1::jsonb, $2, $3, $4)',
    [JSON.stringify(event), limits.maxBounceRate, limits.maxComplaintRate, limits.minSent],
  );
  const outcome = rows[0];
  if (!outcome) throw new Error('apply_ses_event returned no row');
  return outcome;
}
