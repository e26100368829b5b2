// `mailer campaign queue ID --at TIME` and `mailer campaign unschedule ID`: a draft that waits
// for its time. It stays a draft with campaigns.scheduled_at set and a graphile-worker job keyed
// per campaign (schedule_campaign, one transaction); the queue_scheduled_campaign task queues it
// then. The time is a wall-clock time in an IANA zone (src/cli/schedule-time.ts).
import type { Command } from 'commander';
import { UsageError } from '../context.ts';
import { formatTime, orFail, print, uuidArgument, withDatabase } from '../output.ts';

export const AT_HELP =
  'queue it at this time instead of now: "YYYY-MM-DD HH:MM ZONE", ZONE an IANA name ' +
  '(Europe/Berlin), UTC or an offset (+01:00); it stays a draft until then (a worker must run)';

export async function scheduleAction(campaignId: string, at: string): Promise<void> {
  const { parseScheduleTime, ScheduleTimeError } = await import('../schedule-time.ts');
  let instant: Date;
  try {
    instant = parseScheduleTime(at);
  } catch (error) {
    if (error instanceof ScheduleTimeError) throw new UsageError(error.message);
    throw error;
  }
  const { scheduleCampaign } = await import('../../queries/drafts.ts');
  await withDatabase(async (pool, ctx) => {
    const scheduled = await orFail(() => scheduleCampaign(pool, campaignId, instant));
    if (scheduled === undefined) return;
    ctx.logger.info({ campaign_id: campaignId, scheduled_at: scheduled }, 'campaign scheduled');
    print(
      `campaign ${campaignId}: draft, scheduled for ${formatTime(scheduled)} (${at.trim()}); ` +
        `cancel with: mailer campaign unschedule ${campaignId}`,
    );
  });
}

async function unscheduleAction(campaignId: string): Promise<void> {
  const { unscheduleCampaign } = await import('../../queries/drafts.ts');
  await withDatabase(async (pool, ctx) => {
    const removed = await orFail(() => unscheduleCampaign(pool, campaignId));
    if (removed === undefined) return;
    ctx.logger.info({ campaign_id: campaignId, removed }, 'campaign unschedule');
    print(
      removed
        ? `campaign ${campaignId}: no longer scheduled (still a draft)`
        : `campaign ${campaignId}: was not scheduled; nothing changed`,
    );
  });
}

export function registerCampaignSchedule(campaign: Command): void {
  campaign
    .command('unschedule')
    .description(
      'Cancel the schedule of a draft queued with --at (its job is removed; it stays a draft); ' +
        'recorded in operator_actions',
    )
    .argument('<campaign>', 'campaign id', uuidArgument('campaign'))
    .action(unscheduleAction);
}
