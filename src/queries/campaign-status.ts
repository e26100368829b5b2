// What `campaign status` adds to campaign_progress(): the send rate from sends SES accepted in a
// recent window, the SES errors of the recipients not settled yet, and when a done campaign
// finished (see migrations/schema.sql), and the
// rate the workers pace at (send_pacer.rate).
import type { Db } from '../db/pool.ts';

/** The window of the live send rate: recent enough to show an outage within seconds. */
export const RATE_WINDOW_SECONDS = 30;

export interface SendErrorCount {
  recipient_status: string;
  kind: string;
  recipients: number;
  last_at: Date;
}

export interface CampaignLive {
  now: Date;
  /** When the campaign row last changed: for a done campaign, when it became done. */
  updated_at: Date;
  /** Sends SES accepted (recorded sent with a message id) within the last RATE_WINDOW_SECONDS. */
  accepted_recently: number;
  /** When the campaign's last accepted send was recorded. */
  last_accepted_at: Date | null;
  /** The workers' paced rate at their last slot reservation (null before any, or unpaced). */
  pacer_rate: number | null;
  errors: SendErrorCount[];
}

/**
 * The rate an ETA is capped at: SES_MAX_SEND_RATE when this process has it (0: unpaced);
 * otherwise the rate the workers recorded, taken from the account's MaxSendRate.
 */
export function pacingRateFor(
  configured: number | undefined,
  live: CampaignLive,
): number | undefined {
  return configured ?? live.pacer_rate ?? undefined;
}

export async function campaignLive(db: Db, campaignId: string): Promise<CampaignLive | undefined> {
  // campaign_accepted_since reads the tail of campaign_recipients_accepted_at_idx, and
  // campaign_send_errors the partial index of unsettled recipients with an error: neither
  // touches the campaign's other recipients, however many.
  const { rows } = await db.query<Omit<CampaignLive, 'errors'>>(
    `select now() as now, c.updated_at, a.accepted::int as accepted_recently, a.last_accepted_at,
            (select p.rate from public.send_pacer p) as pacer_rate
       from public.campaigns c
       cross join lateral public.campaign_accepted_since(c.campaign_id,
                                                         now() - make_interval(secs => $2)) a
      where c.campaign_id = $1`,
    [campaignId, RATE_WINDOW_SECONDS],
  );
  const row = rows[0];
  if (!row) return undefined;
  const errors = await db.query<SendErrorCount>(
    `select recipient_status, kind, recipients::int, last_at
       from public.campaign_send_errors($1)`,
    [campaignId],
  );
  return { ...row, errors: errors.rows };
}
