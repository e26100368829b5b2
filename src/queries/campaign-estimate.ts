// The rate, ETA and stall of a campaign from its counts (campaign_progress) and its recent
// accepted sends (campaignLive): the figures `mailer campaign status` prints and the console
// shows. Claims are not sends: only sends SES accepted count towards the rate.
import type { CampaignLive } from './campaign-status.ts';
import type { CampaignProgress } from './operations.ts';

export interface StatusEstimate {
  /** Accepted sends per second over the window; null unless the campaign is queued or sending. */
  rate_per_second: number | null;
  rate_window_seconds: number;
  /** The pacing rate the ETA is capped at (SES_MAX_SEND_RATE), when the CLI knows it. */
  pacing_rate: number | null;
  /** Seconds until the recipients left are sent at that rate; null when it cannot be said. */
  eta_seconds: number | null;
  /** Seconds since SES last accepted one of its sends, when that is too long for the rate. */
  stalled_seconds: number | null;
  started_at: Date | null;
  /** When a done campaign became done. */
  finished_at: Date | null;
  duration_seconds: number | null;
}

export const SENDING = new Set(['queued', 'sending']);
/** Quiet this long (or three sends' time at the rate, if longer), a sending campaign has stalled. */
const STALL_SECONDS = 10;

export function estimate(
  p: CampaignProgress,
  live: CampaignLive,
  windowSeconds: number,
  pacingRate: number | undefined,
): StatusEstimate {
  const open = (p.counts.pending ?? 0) + (p.counts.sending ?? 0);
  const pacing = pacingRate !== undefined && pacingRate > 0 ? pacingRate : null;
  const started = p.first_attempt_at;
  const finished = p.status === 'done' ? live.updated_at : null;
  let rate: number | null = null;
  let eta: number | null = null;
  let stalled: number | null = null;
  if (SENDING.has(p.status)) {
    const now = live.now.getTime();
    // A campaign that started 5 s ago has had 5 s to send, not the whole window.
    const since = started ? (now - started.getTime()) / 1000 : windowSeconds;
    const window = Math.min(windowSeconds, Math.max(1, since));
    rate = live.accepted_recently / window;
    const effective = pacing === null ? rate : Math.min(rate, pacing);
    if (open > 0 && effective > 0) eta = open / effective;
    if (open === 0) eta = 0;
    // An outage that began 10 s ago leaves 20 s of good sends in the window: the rate still looks
    // fine, but nothing has been accepted since. Say so instead of giving an ETA.
    const last = live.last_accepted_at ?? started;
    const quiet = last ? Math.max(0, (now - last.getTime()) / 1000) : 0;
    if (open > 0 && quiet > Math.max(STALL_SECONDS, effective > 0 ? 3 / effective : 0)) {
      stalled = quiet;
      eta = null;
    }
  }
  return {
    rate_per_second: rate,
    rate_window_seconds: windowSeconds,
    pacing_rate: pacing,
    eta_seconds: eta,
    stalled_seconds: stalled,
    started_at: started,
    finished_at: finished,
    duration_seconds:
      started && finished ? Math.max(0, (finished.getTime() - started.getTime()) / 1000) : null,
  };
}
