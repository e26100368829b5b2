// The campaigns the console lists: the campaign rows only (no recipient is read here; their
// counts come from src/queries/campaign-figures.ts), with a pending queue request.
import type { Db } from '../db/pool.ts';

export interface ConsoleCampaign {
  campaign_id: string;
  campaign_name: string;
  week_of_month: number;
  status: string;
  pause_reason: string | null;
  scheduled_at: Date | null;
  generating: boolean;
  template_version: number;
  /** Actor who asked for it to be queued (CONSOLE_QUEUE_APPROVAL), while not approved. */
  queue_requested_by: string | null;
}

export async function listConsoleCampaigns(db: Db, limit: number): Promise<ConsoleCampaign[]> {
  const { rows } = await db.query<ConsoleCampaign>(
    `select c.campaign_id, c.campaign_name, c.week_of_month, c.status, c.pause_reason,
            c.scheduled_at, c.generating, t.version as template_version,
            q.requested_by as queue_requested_by
       from public.campaigns c
       join public.templates t on t.template_id = c.template_id
       left join public.campaign_queue_requests q
         on q.campaign_id = c.campaign_id and q.approved_by is null
      order by c.generated_date desc, c.created_at desc
      limit $1`,
    [limit],
  );
  return rows;
}
