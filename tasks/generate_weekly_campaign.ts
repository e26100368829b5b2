// generate_weekly_campaign (recurring, Mondays; see crontab): generates and queues the campaign of
// the week of the month the scheduled day falls in: days 1-7 -> week 1, 8-14 -> 2, 15-21 -> 3,
// 22-28 -> 4. Days 29-31 (a fifth Monday, about four times a year) send nothing: there is no week 5
// template line, and repeating week 4 a week later would mail everyone the same content twice. An
// operator who wants a mail that week runs `mailer campaign generate --week N`.
// Payload: graphile-worker cron's {"_cron": {"ts": ISO time, "backfilled": bool}}; the date comes
//   from _cron.ts (the scheduled time, also for a backfilled run), else {"date": "YYYY-MM-DD"},
//   else today (UTC).
// Rerun-safe: public.generate_campaign is idempotent per (week_of_month, generated_date), and a
//   week that already has its campaign on another day (an operator generated it by hand on the
//   Sunday) is left alone with a log line: one campaign per (month, week).
// Enqueues: the campaign's send_recipient jobs (campaigns status trigger). No active template for
//   the week is a permanent failure with a clear message (visible in `mailer jobs`; add the
//   template, then `mailer jobs retry ID`).
import { z } from 'zod';
import { generateCampaign, weekOfMonth } from '../src/queries/campaigns.ts';
import { publicUrlProblem } from '../src/ses/target.ts';
import { defineTask, PermanentJobError } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

const payloadSchema = z.object({
  _cron: z
    .object({ ts: z.iso.datetime({ offset: true }), backfilled: z.boolean().optional() })
    .optional(),
  date: z.iso.date().optional(),
});

export { weekOfMonth };

export default function createGenerateWeeklyCampaign(deps: TaskDeps) {
  return defineTask('generate_weekly_campaign', payloadSchema, async (payload, helpers) => {
    const date =
      payload._cron?.ts !== undefined
        ? new Date(payload._cron.ts).toISOString().slice(0, 10)
        : (payload.date ?? new Date().toISOString().slice(0, 10));
    const week = weekOfMonth(date);
    const log = deps.logger.child({ task: 'generate_weekly_campaign', job_id: helpers.job.id });
    if (week > 4) {
      log.info(
        { date, week },
        `${date} is in week ${week} of its month: no campaign (weeks 1-4 only)`,
      );
      return;
    }
    const problem = publicUrlProblem(deps.config);
    if (problem) throw new PermanentJobError(`generate_weekly_campaign: ${problem}`);
    try {
      const campaign = await generateCampaign(deps.pool, {
        weekOfMonth: week,
        generatedDate: date,
        send: true,
        tokenTtlDays: deps.config.unsubscribeTokenTtlDays,
        publicUrl: deps.config.publicUrl,
      });
      log.info(
        { campaign_id: campaign.campaign_id, date, week, backfilled: payload._cron?.backfilled },
        `weekly campaign ${campaign.campaign_name}: ${campaign.status}, ${campaign.recipients} recipients`,
      );
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === '23505') {
        // generate_campaign: this (month, week) has a campaign on another date. Done already.
        log.info({ date, week }, (error as Error).message);
        return;
      }
      if (code === 'P0002') {
        throw new PermanentJobError(
          `generate_weekly_campaign: no active template for week ${week} (${date}); add one ` +
            '(mailer templates add), then retry this job (mailer jobs retry ID)',
          { cause: error },
        );
      }
      throw new Error('generate_weekly_campaign: generate_campaign failed', { cause: error });
    }
  });
}
