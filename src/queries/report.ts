// The campaign report (`mailer campaign report`): campaign_report() and
// campaign_report_recipients() in migrations/current/4-after-campaign.sql.
import type { Db } from '../db/pool.ts';
import { RECIPIENT_STATUSES, type RecipientStatus } from './operations.ts';

/** campaign_report()'s row; a count for each recipient status besides. */
export interface CampaignReportRow extends Record<RecipientStatus, number> {
  campaign_id: string;
  campaign_name: string;
  status: string;
  pause_reason: string | null;
  generating: boolean;
  created_at: Date;
  started_at: Date | null;
  last_attempt_at: Date | null;
  finished_at: Date | null;
  recipients: number;
  accepted: number;
  delivered: number;
  opened: number;
  clicked: number;
  bounce_rate: number | null;
  complaint_rate: number | null;
}

export interface ReportRecipient {
  customer_id: string;
  email: string;
  recipient_status: string;
  last_error: string | null;
  ses_message_id: string | null;
  attempt_count: number;
  last_attempt_at: Date | null;
  updated_at: Date;
}

const COUNTS = [
  'recipients',
  ...RECIPIENT_STATUSES,
  'accepted',
  'delivered',
  'opened',
  'clicked',
] as const;

export async function campaignReport(
  db: Db,
  campaignId: string,
): Promise<CampaignReportRow | undefined> {
  const { rows } = await db.query<Record<string, unknown>>(
    'select * from public.campaign_report($1)',
    [campaignId],
  );
  const row = rows[0];
  if (!row) return undefined;
  // count() is bigint and round() numeric: pg hands both over as strings.
  for (const key of COUNTS) row[key] = Number(row[key]);
  for (const key of ['bounce_rate', 'complaint_rate']) {
    row[key] = row[key] === null ? null : Number(row[key]);
  }
  return row as unknown as CampaignReportRow;
}

export async function reportRecipients(db: Db, campaignId: string): Promise<ReportRecipient[]> {
  const { rows } = await db.query<ReportRecipient>(
    'select * from public.campaign_report_recipients($1)',
    [campaignId],
  );
  return rows;
}
