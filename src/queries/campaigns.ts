import pg from 'pg';

export interface GenerateOptions {
  weekOfMonth: number;
  generatedDate: string;
  send: boolean;
  tokenTtlDays: number;
  publicUrl: string;
  /** A second campaign for the (month, week), or a date outside the week: the operator's call. */
  force?: boolean;
}

/**
 * The week of the month a YYYY-MM-DD date falls in: its seven-day block (days 1-7 week 1 ...
 * 22-28 week 4, 29-31 week 5, which has no campaign). For a Monday this is the Monday count.
 * public.week_of_month() in SQL is the same rule, and generate_campaign refuses a date in another
 * week than the campaign's unless forced.
 */
export function weekOfMonth(date: string): number {
  return Math.ceil(Number(date.slice(8, 10)) / 7);
}

export interface CampaignSummary {
  campaign_id: string;
  campaign_name: string;
  status: string;
  recipients: number;
}

// Generation commits chunk by chunk: the first small chunk with the campaign (queued when send is
// set, so sending starts at once), then one chunk per transaction (50,000 recipients, or the
// database's mailer.generation_chunk) until a call adds nothing, in each of the campaign's lanes
// (customer_id ranges, mailer.generation_lanes, default 2) at the same time. A rerun after a
// crash finds the campaign still generating and carries on from each lane's last recipient.
// Inside a caller's transaction (a PoolClient in BEGIN) it is all one, lane after lane.

export async function generateCampaign(
  db: pg.Pool | pg.PoolClient,
  options: GenerateOptions,
): Promise<CampaignSummary> {
  const generated = await db.query<{ campaign_id: string }>(
    `select public.begin_campaign_generation($1, $2::date, $3, make_interval(days => $4), $5,
                                              p_force => $6) as campaign_id`,
    [
      options.weekOfMonth,
      options.generatedDate,
      options.send,
      options.tokenTtlDays,
      options.publicUrl,
      options.force === true,
    ],
  );
  const campaignId = generated.rows[0]?.campaign_id;
  const { rows: lanes } = await db.query<{ lane: number }>(
    `select l.lane from public.campaign_generation_lanes l
      where l.campaign_id = $1 and not l.done order by l.lane`,
    [campaignId],
  );
  const writeLane = async (lane: number) => {
    for (;;) {
      const { rows } = await db.query<{ added: number }>(
        'select public.generate_campaign_chunk($1, make_interval(days => $2), $3, p_lane => $4) as added',
        [campaignId, options.tokenTtlDays, options.publicUrl, lane],
      );
      if ((rows[0]?.added ?? 0) === 0) break;
    }
  };
  if (db instanceof pg.Pool) {
    // Each lane on a connection of its own, at the same time; every lane runs to its end (or its
    // error) before this returns, so a failed job leaves no chunk behind it still writing.
    const results = await Promise.allSettled(lanes.map((l) => writeLane(l.lane)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  } else {
    for (const l of lanes) await writeLane(l.lane);
  }
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
