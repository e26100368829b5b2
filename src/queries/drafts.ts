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
