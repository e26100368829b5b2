// `mailer campaign generate|queue|pause|resume|list|status`.
import type { Command } from 'commander';
import type { CampaignAction, CampaignProgress } from '../../queries/operations.ts';
import { UsageError } from '../context.ts';
import {
  dateArgument,
  formatTime,
  intArgument,
  orFail,
  percent,
  print,
  printJson,
  table,
  uuidArgument,
  withDatabase,
} from '../output.ts';
import { registerCampaignDelete } from './campaign-delete.ts';
import { AT_HELP, registerCampaignSchedule, scheduleAction } from './campaign-schedule.ts';

interface GenerateFlags {
  week?: number;
  date?: string;
  send: boolean;
  force?: boolean;
  json?: boolean;
}

async function generateAction(flags: GenerateFlags): Promise<void> {
  const { generateCampaign, weekOfMonth } = await import('../../queries/campaigns.ts');
  const { campaignExists } = await import('../../queries/operations.ts');
  const { publicUrlProblem } = await import('../../ses/target.ts');
  if (flags.week === undefined && flags.date === undefined) {
    throw new UsageError('campaign generate: give --week N, --date YYYY-MM-DD, or both');
  }
  const date = flags.date ?? new Date().toISOString().slice(0, 10);
  // Without --week, the week the date falls in (the weekly cron's rule, public.week_of_month).
  const week = flags.week ?? weekOfMonth(date);
  if (week > 4) {
    throw new UsageError(
      `campaign generate: ${date} is in week ${week} of its month (days 29-31), which has no ` +
        'campaign; give --week 1-4 with --force to send one anyway',
    );
  }
  await withDatabase(async (pool, ctx) => {
    const problem = publicUrlProblem(ctx.config);
    if (problem) throw new UsageError(problem);
    const existing = await campaignExists(pool, week, date);
    // The same SQL as the generate_campaign task: idempotent per week and date; a date outside
    // the week (exit 2) or a second campaign for the month's week (exit 1) is refused unless
    // --force.
    const campaign = await orFail(() =>
      generateCampaign(pool, {
        weekOfMonth: week,
        generatedDate: date,
        send: flags.send,
        tokenTtlDays: ctx.config.unsubscribeTokenTtlDays,
        publicUrl: ctx.config.publicUrl,
        force: flags.force === true,
      }),
    );
    if (!campaign) return;
    ctx.logger.info(
      { campaign_id: campaign.campaign_id, recipients: campaign.recipients, existing: !!existing },
      'campaign generate',
    );
    if (flags.json) return printJson({ ...campaign, already_existed: existing !== undefined });
    print(
      `campaign ${campaign.campaign_id} (${campaign.campaign_name}): ${campaign.status}, ` +
        `${campaign.recipients} recipients` +
        (existing ? ' (it already existed; nothing changed)' : '') +
        (campaign.status === 'draft'
          ? `; send it with: mailer campaign queue ${campaign.campaign_id}`
          : ''),
    );
  });
}

function stateAction(action: CampaignAction) {
  return async (campaignId: string): Promise<void> => {
    const { setCampaignState } = await import('../../queries/operations.ts');
    await withDatabase(async (pool, ctx) => {
      const status = await orFail(() => setCampaignState(pool, action, campaignId));
      if (status === undefined) return;
      ctx.logger.info({ campaign_id: campaignId, status }, `campaign ${action}`);
      print(`campaign ${campaignId}: ${status}`);
    });
  };
}

async function listAction(flags: { limit: number; status?: string; json?: boolean }) {
  const { listCampaigns } = await import('../../queries/operations.ts');
  await withDatabase(async (pool) => {
    const rows = await listCampaigns(pool, { limit: flags.limit, status: flags.status });
    if (flags.json) return printJson(rows);
    print(
      table(
        [
          'id',
          'name',
          'week',
          'date',
          'template',
          'status',
          'recipients',
          'to send',
          'sent',
        ].concat(['in doubt', 'failed', 'bounced', 'complained', 'paused because']),
        rows.map((c) => [
          c.campaign_id,
          c.campaign_name,
          c.week_of_month,
          c.generated_date,
          `v${c.template_version}`,
          c.status,
          c.recipients,
          c.pending,
          c.sent,
          c.in_doubt,
          c.failed,
          c.bounced,
          c.complained,
          truncate(c.pause_reason ?? '', 60),
        ]),
      ),
    );
  });
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 3)}...` : text;
}

function rate(perSecond: number): string {
  return `${perSecond.toFixed(1)}/s`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  const s = Math.round(seconds);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${s % 60}s`
      : `${s}s`;
}

export function describeProgress(p: CampaignProgress, tty: boolean): string {
  const c = p.counts;
  const open = (c.pending ?? 0) + (c.sending ?? 0);
  const finished = p.recipients - open;
  const recentRate = p.attempts_last_minute / 60;
  const span =
    p.first_attempt_at && p.last_attempt_at
      ? (p.last_attempt_at.getTime() - p.first_attempt_at.getTime()) / 1000
      : 0;
  const averageRate = span > 0 ? p.accepted / span : 0;
  const lines = [
    `campaign ${p.campaign_id} (${p.campaign_name}): ${p.status}` +
      (p.pause_reason ? `: ${p.pause_reason}` : ''),
    `recipients ${p.recipients}: ${Object.entries(c)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')}`,
    `accepted by SES ${p.accepted}; bounce rate ${percent(p.bounce_rate)} (${c.bounced ?? 0}), ` +
      `complaint rate ${percent(p.complaint_rate, 3)} (${c.complained ?? 0})`,
    `send rate ${rate(recentRate)} over the last minute, ${rate(averageRate)} on average; ` +
      `first attempt ${formatTime(p.first_attempt_at)}, last ${formatTime(p.last_attempt_at)}`,
  ];
  if (tty && p.recipients > 0) {
    const share = finished / p.recipients;
    const width = 40;
    const filled = Math.round(share * width);
    const eta = open > 0 && recentRate > 0 ? duration(open / recentRate) : '-';
    lines.push(
      `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(1)}% ` +
        `${finished}/${p.recipients}, ETA ${eta}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function retryFailedAction(campaignId: string, flags: { reason?: string }) {
  const { retryFailedRecipients } = await import('../../queries/operations.ts');
  await withDatabase(async (pool, ctx) => {
    const n = await orFail(() => retryFailedRecipients(pool, campaignId, flags.reason));
    if (n === undefined) return;
    ctx.logger.info({ campaign_id: campaignId, recipients: n }, 'campaign retry-failed');
    print(
      n === 0
        ? `campaign ${campaignId}: no failed recipients to queue again`
        : `campaign ${campaignId}: ${n} failed recipients queued again`,
    );
  });
}

async function statusAction(
  campaignId: string,
  flags: { watch?: boolean; interval: number; json?: boolean },
) {
  const { campaignProgress } = await import('../../queries/operations.ts');
  const tty = process.stdout.isTTY === true;
  await withDatabase(async (pool) => {
    for (let first = true; ; first = false) {
      const progress = await campaignProgress(pool, campaignId);
      if (!progress) {
        process.stderr.write(`mailer: no campaign ${campaignId}\n`);
        process.exitCode = 1;
        return;
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(progress, null, flags.watch ? 0 : 2)}\n`);
      } else if (flags.watch && tty) {
        // Redraw in place: cursor home, clear screen.
        process.stdout.write(`\x1b[H\x1b[2J${describeProgress(progress, tty)}`);
      } else {
        process.stdout.write(`${first ? '' : '\n'}${describeProgress(progress, tty)}`);
      }
      if (!flags.watch || progress.status === 'done') return;
      await new Promise((resolve) => setTimeout(resolve, flags.interval * 1000));
    }
  });
}

export function registerCampaign(program: Command): void {
  const campaign = program.command('campaign').description('Generate, send and watch campaigns');
  const id = uuidArgument('campaign');
  campaign
    .command('generate')
    .description(
      'Create the campaign of a week (same SQL as the generate_campaign task; running it again ' +
        'for the same week and date returns the existing one) and queue it unless --no-send. ' +
        'One campaign per week of the month: the date must fall in the week (days 1-7 week 1, ' +
        '8-14 week 2, 15-21 week 3, 22-28 week 4), and a week that has a campaign on another ' +
        'date gets no second one, unless --force',
    )
    .option(
      '--week <n>',
      'week of the month, 1-4 (default: the week --date falls in)',
      intArgument('--week', 1, 4),
    )
    .option('--date <YYYY-MM-DD>', 'generated date (default: today, UTC)', dateArgument)
    .option('--no-send', 'leave it a draft (send later with campaign queue)')
    .option(
      '--force',
      'generate even when the week already has a campaign on another date, or the date is in ' +
        'another week (a fifth week); the same content goes out again',
    )
    .option('--json', 'machine-readable output')
    .action(generateAction);
  campaign
    .command('queue')
    .description('Start sending a draft campaign (enqueues one job per pending recipient)')
    .argument('<campaign>', 'campaign id', id)
    .option('--at <time>', AT_HELP)
    .action((c: string, o: { at?: string }) =>
      o.at ? scheduleAction(c, o.at) : stateAction('queue')(c),
    );
  registerCampaignSchedule(campaign);
  registerCampaignDelete(campaign);
  campaign
    .command('pause')
    .description('Stop new sends of a queued or sending campaign')
    .argument('<campaign>', 'campaign id', id)
    .action(stateAction('pause'));
  campaign
    .command('resume')
    .description('Resume a paused campaign (its pending recipients are enqueued again)')
    .argument('<campaign>', 'campaign id', id)
    .action(stateAction('resume'));
  campaign
    .command('retry-failed')
    .description(
      'Queue the failed recipients of a campaign again, one more attempt each (suppressed ' +
        'addresses excepted); recorded in operator_actions',
    )
    .argument('<campaign>', 'campaign id', id)
    .option('--reason <text>', 'why (recorded with the action)')
    .action(retryFailedAction);
  campaign
    .command('list')
    .description('Recent campaigns with their recipient counts')
    .option('--limit <n>', 'how many', intArgument('--limit', 1), 20)
    .option('--status <status>', 'only campaigns in this status (draft|queued|sending|done|paused)')
    .option('--json', 'machine-readable output')
    .action(listAction);
  campaign
    .command('status')
    .description(
      'Recipients per status, send rate, bounce and complaint rates (over recipients SES ' +
        'accepted), and a progress bar on a terminal',
    )
    .argument('<campaign>', 'campaign id', id)
    .option('-w, --watch', 'refresh until the campaign is done (Ctrl-C to stop)')
    .option('--interval <seconds>', 'refresh interval for --watch', intArgument('--interval', 1), 2)
    .option('--json', 'machine-readable output (one JSON line per refresh with --watch)')
    .action(statusAction);
}
