// feed_campaign: keeps a queued or sending campaign's send queue topped up to a window of waiting
// send_recipient jobs (public.feed_campaign_sends), instead of one job per recipient at once, so
// graphile-worker's jobs table stays bounded whatever the campaign size. Paced, the window is a
// few seconds of sends at the account's rate.
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

// Paced, the window holds this many seconds of sends at the account's rate (mailer.feed_window
// stays the upper bound, the first batch the lower one). Topping the default 20,000 up at once
// put some 17,000 job inserts into a campaign's first second, and at R = 1,000/s on 2 cores that
// PostgreSQL work took sends from it: bench/pacing.ts 4a with a 0.75-core load beside it, first
// second 834-964 sends (a dip of 63-67 per 100 ms in two of three runs), against 931-962 with a
// window of 5,000 (2026-12-07). Five seconds is ample: the feeder tops up every second.
const PACED_WINDOW_SECONDS = 5;
const MIN_PACED_WINDOW = 2_000;

/** The feed window for a process paced at `rate` per second; undefined (the setting) unpaced. */
export function pacedFeedWindow(rate: number | undefined): number | undefined {
  if (!rate) return undefined;
  return Math.max(MIN_PACED_WINDOW, Math.ceil(rate * PACED_WINDOW_SECONDS));
}

export default function createFeedCampaign(deps: TaskDeps) {
  return defineTask('feed_campaign', feedCampaignPayload, async (payload, helpers) => {
    const { rows } = await deps.pool.query<{ added: number | null }>(
      'select public.feed_campaign_sends($1, $2::int) as added',
      [payload.campaign_id, pacedFeedWindow(deps.sendRate()) ?? null],
    );
    const added = rows[0]?.added ?? null;
    if (added === null) {
      helpers.logger.debug(`feed_campaign: campaign ${payload.campaign_id} is not sendable; stops`);
    } else if (added > 0) {
      helpers.logger.debug(`feed_campaign: campaign ${payload.campaign_id}: ${added} send jobs`);
    }
  });
}
