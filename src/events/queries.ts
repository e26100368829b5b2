// Typed callers of the SES event SQL (migrations/current/2-events.sql), one round trip each.
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { SnsNotification } from '../sns/message.ts';

type Db = pg.Pool | pg.PoolClient;

/**
 * Stores a verified notification and enqueues process_ses_event with it, in one statement (so one
 * transaction). False when the MessageId was accepted before: a redelivery, nothing done.
 */
export async function recordSnsNotification(db: Db, envelope: SnsNotification): Promise<boolean> {
  const { rows } = await db.query<{ fresh: boolean }>(
    'select public.record_sns_notification($1, $2, $3::json) as fresh',
    [envelope.MessageId, envelope.TopicArn, JSON.stringify(envelope)],
  );
  return rows[0]?.fresh === true;
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
