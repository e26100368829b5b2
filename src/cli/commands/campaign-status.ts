// `mailer campaign status ID [--watch] [--json]`: counts per status, and a rate and an ETA that
// count only what SES accepted. The rate is the campaign's sends recorded as accepted (sent, with
// an SES message id) over the last 30 s; while paced, the ETA uses the smaller of that and the
// pacing rate. Claims are not sends: during an outage the workers claim and release recipients
// all the time while SES accepts nothing, and the rate must say 0. A paused campaign has no ETA
// (nothing will be sent until someone resumes it); a done one shows how long it took.

import { estimate, SENDING, type StatusEstimate } from '../../queries/campaign-estimate.ts';
import type { CampaignLive, SendErrorCount } from '../../queries/campaign-status.ts';
import type { CampaignProgress } from '../../queries/operations.ts';
import { formatAge, formatTime, percent, withDatabase } from '../output.ts';

export { estimate, type StatusEstimate } from '../../queries/campaign-estimate.ts';

export function rate(perSecond: number): string {
  return `${perSecond.toFixed(1)}/s`;
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  const s = Math.round(seconds);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${s % 60}s`
      : `${s}s`;
}

const ERROR_STATE: Record<string, string> = {
  pending: 'to be sent again',
  failed: 'failed',
  in_doubt: 'in doubt',
};

function describeErrors(errors: SendErrorCount[], now: Date): string | undefined {
  if (errors.length === 0) return undefined;
  const parts = errors
    .slice(0, 6)
    .map(
      (e) =>
        `${e.kind} ${e.recipients} (${ERROR_STATE[e.recipient_status] ?? e.recipient_status}, ` +
        `last ${formatAge(e.last_at, now.getTime())} ago)`,
    );
  if (errors.length > 6) parts.push(`${errors.length - 6} more kinds`);
  return `send errors: ${parts.join(', ')}`;
}

export function describeStatus(
  p: CampaignProgress,
  live: CampaignLive,
  e: StatusEstimate,
  tty: boolean,
): string {
  const c = p.counts;
  const open = (c.pending ?? 0) + (c.sending ?? 0);
  const finished = p.recipients - open;
  const lines = [
    `campaign ${p.campaign_id} (${p.campaign_name}): ${p.status}` +
      (p.pause_reason ? `: ${p.pause_reason}` : '') +
      (p.scheduled_at ? `, scheduled for ${formatTime(p.scheduled_at)}` : ''),
    `recipients ${p.recipients}: ${Object.entries(c)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')}`,
    `accepted by SES ${p.accepted}; bounce rate ${percent(p.bounce_rate)} (${c.bounced ?? 0}), ` +
      `complaint rate ${percent(p.complaint_rate, 3)} (${c.complained ?? 0})`,
  ];
  if (e.rate_per_second !== null) {
    const paced = e.pacing_rate === null ? '' : ` (paced at ${rate(e.pacing_rate)})`;
    const eta =
      e.eta_seconds !== null
        ? `ETA ${duration(e.eta_seconds)}`
        : e.stalled_seconds !== null
          ? `ETA unknown: SES has accepted nothing for ${duration(e.stalled_seconds)}`
          : 'ETA unknown: nothing sent yet';
    lines.push(
      `send rate ${rate(e.rate_per_second)} accepted by SES over the last ` +
        `${e.rate_window_seconds}s${paced}; ${open} left, ${eta}`,
    );
  } else if (p.status === 'paused') {
    lines.push(`paused: no ETA; ${open} left, sent when the campaign is resumed`);
  } else if (p.status === 'done') {
    lines.push(
      `done in ${e.duration_seconds === null ? '-' : duration(e.duration_seconds)}: ` +
        `first send ${formatTime(e.started_at)}, finished ${formatTime(e.finished_at)}`,
    );
  } else if (p.status === 'draft' && p.scheduled_at) {
    lines.push(
      `draft: queued by the worker at ${formatTime(p.scheduled_at)} ` +
        `(mailer campaign unschedule ${p.campaign_id} cancels)`,
    );
  } else if (p.status === 'draft') {
    lines.push('draft: nothing is sent until it is queued');
  }
  const errors = describeErrors(live.errors, live.now);
  if (errors) lines.push(errors);
  if (p.status !== 'done' && p.first_attempt_at) {
    lines.push(
      `first attempt ${formatTime(p.first_attempt_at)}, last ${formatTime(p.last_attempt_at)}`,
    );
  }
  if (tty && p.recipients > 0) {
    const share = finished / p.recipients;
    const width = 40;
    const filled = Math.round(share * width);
    const eta = e.eta_seconds === null ? '-' : duration(e.eta_seconds);
    lines.push(
      `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(1)}% ` +
        `${finished}/${p.recipients}` +
        (SENDING.has(p.status) ? `, ETA ${eta}` : ''),
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function statusAction(
  campaignId: string,
  flags: { watch?: boolean; interval: number; json?: boolean },
): Promise<void> {
  const [{ campaignProgress }, { campaignLive, pacingRateFor, RATE_WINDOW_SECONDS }] =
    await Promise.all([
      import('../../queries/operations.ts'),
      import('../../queries/campaign-status.ts'),
    ]);
  const tty = process.stdout.isTTY === true;
  await withDatabase(async (pool, ctx) => {
    for (let first = true; ; first = false) {
      const [progress, live] = await Promise.all([
        campaignProgress(pool, campaignId),
        campaignLive(pool, campaignId),
      ]);
      if (!progress || !live) {
        process.stderr.write(`mailer: no campaign ${campaignId}\n`);
        process.exitCode = 1;
        return;
      }
      const pacing = pacingRateFor(ctx.config.ses.maxSendRate, live);
      const e = estimate(progress, live, RATE_WINDOW_SECONDS, pacing);
      if (flags.json) {
        // attempts_last_minute stays for scripts that read it: claims, not sends.
        const record = {
          ...progress,
          ...e,
          accepted_recently: live.accepted_recently,
          errors: live.errors,
        };
        process.stdout.write(`${JSON.stringify(record, null, flags.watch ? 0 : 2)}\n`);
      } else if (flags.watch && tty) {
        // Redraw in place: cursor home, clear screen.
        process.stdout.write(`\x1b[H\x1b[2J${describeStatus(progress, live, e, tty)}`);
      } else {
        process.stdout.write(`${first ? '' : '\n'}${describeStatus(progress, live, e, tty)}`);
      }
      if (!flags.watch || progress.status === 'done') return;
      await new Promise((resolve) => setTimeout(resolve, flags.interval * 1000));
    }
  });
}
