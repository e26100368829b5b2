// queue_scheduled_campaign: queues a draft campaign at the time an operator scheduled it for
// (public.schedule_campaign added this job with run_at that time, in the same transaction).
// Payload: {"campaign_id": uuid}. Job key queue_scheduled_campaign:<campaign_id>: one per campaign;
//   scheduling again moves it, unscheduling or deleting the draft removes it.
// Rerun-safe: public.start_scheduled_campaign queues only a draft whose time has come; a campaign
//   queued, unscheduled or deleted meanwhile is left alone, and a job that runs early (a clock
//   step) is added again for the time.
// Enqueues: through queue_campaign, the campaign's sends (the status trigger, same transaction).
import { z } from 'zod';
import { defineTask } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

const payloadSchema = z.object({ campaign_id: z.uuid() });

export default function createQueueScheduledCampaign(deps: TaskDeps) {
  return defineTask('queue_scheduled_campaign', payloadSchema, async (payload) => {
    const { rows } = await deps.pool.query<{ status: string; scheduled_at: Date | null }>(
      'select status, scheduled_at from public.start_scheduled_campaign($1)',
      [payload.campaign_id],
    );
    const result = rows[0];
    const fields = { campaign_id: payload.campaign_id, status: result?.status };
    if (result?.scheduled_at) {
      deps.logger.info(
        { ...fields, scheduled_at: result.scheduled_at },
        'scheduled campaign: early; waits for its time',
      );
    } else if (result?.status === 'missing' || result?.status === 'draft') {
      deps.logger.info(fields, 'scheduled campaign: gone or unscheduled; nothing to queue');
    } else {
      deps.logger.info(fields, 'scheduled campaign: time reached');
    }
  });
}
