// `mailer campaign generate|queue|pause|resume|list|status`.
import { type Command, Option } from 'commander';
import type { CampaignAction } from '../../queries/operations.ts';
import { UsageError } from '../context.ts';
import {
  dateArgument,
  formatTime,
  intArgument,
  orFail,
  print,
  printJson,
  table,
  uuidArgument,
  withDatabase,
} from '../output.ts';
import { registerCampaignDelete } from './campaign-delete.ts';
import { registerCampaignReport } from './campaign-report.ts';
import { AT_HELP, registerCampaignSchedule, scheduleAction } from './campaign-schedule.ts';
import { statusAction } from './campaign-status.ts';
import { registerCampaignTest } from './campaign-test.ts';

const CAMPAIGN_STATUSES = ['draft', 'queued', 'sending', 'done', 'paused'];

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
        ].concat([
          'in doubt',
          'failed',
          'suppressed',
          'bounced',
          'complained',
          'unsubscribed',
          'paused because',
        ]),
        rows.map((c) => [
          c.campaign_id,
          c.campaign_name,
          c.week_of_month,
          c.generated_date,
          `v${c.template_version}`,
          c.scheduled_at ? `${c.status}, scheduled for ${formatTime(c.scheduled_at)}` : c.status,
          c.recipients,
          c.pending,
          c.sent,
          c.in_doubt,
          c.failed,
          c.suppressed,
          c.bounced,
          c.complained,
          c.unsubscribed,
          truncate(c.pause_reason ?? '', 60),
        ]),
      ),
    );
  });
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 3)}...` : text;
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
  registerCampaignReport(campaign);
  registerCampaignTest(campaign);
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
    .description(
      'Recent campaigns with their recipient counts; the counts of a row add up to its recipients',
    )
    .option('--limit <n>', 'how many', intArgument('--limit', 1), 20)
    .addOption(
      new Option('--status <status>', 'only campaigns in this status').choices(CAMPAIGN_STATUSES),
    )
    .option('--json', 'machine-readable output')
    .action(listAction);
  campaign
    .command('status')
    .description(
      'Recipients per status; the send rate and ETA from sends SES accepted in the last 30 s ' +
        '(capped at SES_MAX_SEND_RATE when set); SES errors of unsettled recipients by kind; ' +
        'bounce and complaint rates over accepted sends; a paused campaign shows why and no ETA, ' +
        'a done one how long it took; a progress bar on a terminal',
    )
    .argument('<campaign>', 'campaign id', id)
    .option('-w, --watch', 'refresh until the campaign is done (Ctrl-C to stop)')
    .option('--interval <seconds>', 'refresh interval for --watch', intArgument('--interval', 1), 2)
    .option('--json', 'machine-readable output (one JSON line per refresh with --watch)')
    .action(statusAction);
}
