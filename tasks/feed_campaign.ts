// feed_campaign: keeps a queued or sending campaign's send queue topped up to a window of waiting
// send_recipient jobs (public.feed_campaign_sends), instead of one job per recipient at once, so
// graphile-worker's jobs table stays bounded whatever the campaign size.
// Payload: {"campaign_id": uuid}. No job key: one waiting per campaign (checked under the lock).
// Rerun-safe: send jobs carry a job key per recipient, the cursor (campaign_feeds) only moves
//   forward, and feeders of one campaign exclude each other (an advisory lock; the one that finds
//   it taken leaves: the holder leaves a feeder behind). A duplicate send job is harmless: the
//   claim decides.
// Enqueues: send_recipient jobs, and itself again while recipients are left to feed;
//   a paused or finished campaign ends the chain. The sweep gives a lost chain its job back.
import { z } from 'zod';
import { defineTask } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

export const feedCampaignPayload = z.object({ campaign_id: z.uuid() });

export default function createFeedCampaign(deps: TaskDeps) {
  return defineTask('feed_campaign', feedCampaignPayload, async (payload, helpers) => {
    const { rows } = await deps.pool.query<{ added: number | null }>(
      'select public.feed_campaign_sends($1) as added',
      [payload.campaign_id],
    );
    const added = rows[0]?.added ?? null;
    if (added === null) {
      helpers.logger.debug(`feed_campaign: campaign ${payload.campaign_id} is not sendable; stops`);
    } else if (added > 0) {
      helpers.logger.debug(`feed_campaign: campaign ${payload.campaign_id}: ${added} send jobs`);
    }
  });
}
