// Before a campaign is sent: typed callers of schedule_campaign, unschedule_campaign and
// delete_draft_campaign (migrations/current/3-before-campaign.sql), and the schedules that
// `campaign status` and `campaign list` show.
import type { Db } from '../db/pool.ts';

export async function scheduleCampaign(db: Db, campaignId: string, at: Date): Promise<Date> {
  const { rows } = await db.query<{ at: Date }>('select public.schedule_campaign($1, $2) as at', [
    campaignId,
    at,
  ]);
  return rows[0]?.at ?? at;
}

/** False when the campaign had no schedule. */
export async function unscheduleCampaign(db: Db, campaignId: string): Promise<boolean> {
  const { rows } = await db.query<{ removed: boolean }>(
    'select public.unschedule_campaign($1) as removed',
    [campaignId],
  );
  return rows[0]?.removed === true;
}

/** Deletes a draft with its recipients and tokens; returns how many recipients went. */
export async function deleteDraftCampaign(
  db: Db,
  campaignId: string,
  note: string | undefined,
): Promise<number> {
  const { rows } = await db.query<{ recipients: number }>(
    'select public.delete_draft_campaign($1, $2) as recipients',
    [campaignId, note ?? null],
  );
  return rows[0]?.recipients ?? 0;
}

/** scheduled_at of the given campaigns that have one. */
export async function campaignSchedules(db: Db, campaignIds: string[]): Promise<Map<string, Date>> {
  const { rows } = await db.query<{ campaign_id: string; scheduled_at: Date }>(
    `select campaign_id, scheduled_at from public.campaigns
      where campaign_id = any($1::uuid[]) and scheduled_at is not null`,
    [campaignIds],
  );
  return new Map(rows.map((r) => [r.campaign_id, r.scheduled_at]));
}
