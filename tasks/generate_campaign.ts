// generate_campaign: creates the week's campaign, its recipients and unsubscribe tokens in
// set-based chunks of SQL (begin_campaign_generation, then generate_campaign_chunk, one
// transaction each), and queues it with its first chunk unless send is false, so sending starts
// while the rest is generated; the campaign is not done before its last chunk.
// Payload: {"week_of_month": 1-4, "generated_date"?: "YYYY-MM-DD" (default today UTC),
//           "send"?: boolean (default true), "force"?: boolean (default false)}
// Rerun-safe: (week_of_month, generated_date) is unique; a rerun returns the existing campaign,
//   and carries on with the chunks of one whose generation was interrupted.
//   Unless forced, a date outside the week or a second campaign for the (month, week) fails the
//   job for good with generate_campaign's message (the payload itself is wrong).
// Enqueues: the first send_recipient jobs and the campaign's feed_campaign job, via the
//   campaigns status trigger (the feeder adds the rest).
import { z } from 'zod';
import { generateCampaign } from '../src/queries/campaigns.ts';
import { publicUrlProblem } from '../src/ses/target.ts';
import { defineTask, PermanentJobError } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

export const generateCampaignPayload = z.object({
  week_of_month: z.number().int().min(1).max(4),
  // An ISO date PostgreSQL can store and a campaign can plausibly have (0000-01-01 parses as ISO
  // but not in PostgreSQL, which would turn a bad payload into 25 retries).
  generated_date: z.iso
    .date()
    .refine((d) => d >= '1970-01-01' && d <= '9999-12-31', 'must be a date from 1970 on')
    .optional(),
  send: z.boolean().optional(),
  force: z.boolean().optional(),
});

// generate_campaign's refusals of the payload: a date outside the week, a second campaign.
const REFUSED = new Set(['22023', '23505']);

export default function createGenerateCampaign(deps: TaskDeps) {
  return defineTask('generate_campaign', generateCampaignPayload, async (payload, helpers) => {
    const problem = publicUrlProblem(deps.config);
    if (problem) throw new PermanentJobError(`generate_campaign: ${problem}`);
    const campaign = await generateCampaign(deps.pool, {
      weekOfMonth: payload.week_of_month,
      generatedDate: payload.generated_date ?? new Date().toISOString().slice(0, 10),
      send: payload.send ?? true,
      tokenTtlDays: deps.config.unsubscribeTokenTtlDays,
      publicUrl: deps.config.publicUrl,
      force: payload.force ?? false,
    }).catch((error: unknown) => {
      if (REFUSED.has(String((error as { code?: unknown }).code))) {
        throw new PermanentJobError((error as Error).message, { cause: error });
      }
      throw error;
    });
    helpers.logger.info(
      `campaign ${campaign.campaign_id} (${campaign.campaign_name}): ${campaign.status}, ` +
        `${campaign.recipients} recipients`,
    );
  });
}
