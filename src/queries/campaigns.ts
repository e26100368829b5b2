import type pg from 'pg';

export interface GenerateOptions {
  weekOfMonth: number;
  generatedDate: string;
  send: boolean;
  tokenTtlDays: number;
  publicUrl: string;
}

export interface CampaignSummary {
  campaign_id: string;
  campaign_name: string;
  status: string;
  recipients: number;
}

export async function generateCampaign(
  db: pg.Pool | pg.PoolClient,
  options: GenerateOptions,
): Promise<CampaignSummary> {
  const generated = await db.query<{ campaign_id: string }>(
    `select public.generate_campaign($1, $2::date, $3, make_interval(days => $4), $5) as campaign_id`,
    [
      options.weekOfMonth,
      options.generatedDate,
      options.send,
      options.tokenTtlDays,
      options.publicUrl,
    ],
  );
  const campaignId = generated.rows[0]?.campaign_id;
  // A separate statement: the function's inserts are invisible to the statement that called it.
  const { rows } = await db.query<CampaignSummary>(
    `select c.campaign_id, c.campaign_name, c.status,
            (select count(*)::int from public.campaign_recipients r
              where r.campaign_id = c.campaign_id) as recipients
       from public.campaigns c where c.campaign_id = $1`,
    [campaignId],
  );
  const row = rows[0];
  if (!row) throw new Error('generate_campaign returned no campaign');
  return row;
}
