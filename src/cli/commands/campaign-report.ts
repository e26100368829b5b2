// `mailer campaign report ID [--json|--csv]`: what a campaign did, once it ran (or while it runs).
// Duration, recipients by status, delivered/opened/clicked from its SES events, bounce and
// complaint rates beside SES's own thresholds, and the recipients an operator acts on (failed,
// bounced, complained, in doubt). --csv prints those lists only, one row per recipient, for a
// spreadsheet; --json prints everything.
import { type Command, Option } from 'commander';
import { RECIPIENT_STATUSES } from '../../queries/operations.ts';
import type { CampaignReportRow, ReportRecipient } from '../../queries/report.ts';
import {
  fields,
  formatTime,
  percent,
  print,
  table,
  uuidArgument,
  withDatabase,
} from '../output.ts';
import { duration } from './campaign-status.ts';

// SES's levels for an account's bounce and complaint rates (SES Developer Guide, "Reputation
// metrics messages", https://docs.aws.amazon.com/ses/latest/dg/reputationdashboardmessages.html):
// at a 5% bounce rate or a 0.1% complaint rate the account is placed under review; at 10% or
// 0.5% SES may pause its sending. SES measures the account over a representative volume, not a
// campaign, so one campaign's rates are an early sign, not SES's verdict.
export const SES_THRESHOLDS = {
  bounce: { review: 0.05, pause: 0.1 },
  complaint: { review: 0.001, pause: 0.005 },
} as const;

const LISTS = ['failed', 'bounced', 'complained', 'in_doubt'] as const;
/** Rows per list in the human report; --csv and --json give them all. */
const SHOWN = 20;

type Level = 'below review' | 'at or above review' | 'at or above sending pause';

export function level(
  rate: number | null,
  thresholds: { review: number; pause: number },
): Level | null {
  if (rate === null) return null;
  if (rate >= thresholds.pause) return 'at or above sending pause';
  if (rate >= thresholds.review) return 'at or above review';
  return 'below review';
}

export function reportJson(report: CampaignReportRow, recipients: ReportRecipient[]) {
  const { bounce_rate, complaint_rate, ...rest } = report;
  return {
    ...rest,
    duration_seconds:
      report.started_at && report.finished_at
        ? (report.finished_at.getTime() - report.started_at.getTime()) / 1000
        : null,
    rates: {
      bounce: {
        rate: bounce_rate,
        ses_review: SES_THRESHOLDS.bounce.review,
        ses_pause: SES_THRESHOLDS.bounce.pause,
        level: level(bounce_rate, SES_THRESHOLDS.bounce),
      },
      complaint: {
        rate: complaint_rate,
        ses_review: SES_THRESHOLDS.complaint.review,
        ses_pause: SES_THRESHOLDS.complaint.pause,
        level: level(complaint_rate, SES_THRESHOLDS.complaint),
      },
    },
    lists: Object.fromEntries(
      LISTS.map((status) => [status, recipients.filter((r) => r.recipient_status === status)]),
    ),
  };
}

// RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled. A field
// starting with = + - @ would be a formula in a spreadsheet: it gets a leading apostrophe (an
// SES error text is not ours to trust).
export function csvField(value: string | number | Date | null): string {
  if (value === null) return '';
  let text = value instanceof Date ? value.toISOString() : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function reportCsv(recipients: ReportRecipient[]): string {
  const header = [
    'status',
    'email',
    'customer_id',
    'error',
    'ses_message_id',
    'attempts',
    'last_attempt_at',
    'updated_at',
  ];
  const rows = recipients.map((r) =>
    [
      r.recipient_status,
      r.email,
      r.customer_id,
      r.last_error,
      r.ses_message_id,
      r.attempt_count,
      r.last_attempt_at,
      r.updated_at,
    ]
      .map(csvField)
      .join(','),
  );
  return `${[header.join(','), ...rows].join('\r\n')}\r\n`;
}

/** One of a campaign's SES rates, with what the report and the console say about it. */
export interface CampaignRate {
  what: string;
  rate: number | null;
  count: number;
  accepted: number;
  t: { review: number; pause: number };
  /** Digits of the percentage shown; SES's levels get two fewer. */
  digits: number;
  where: Level | null;
}

/** The bounce rate, then the complaint rate. */
export function campaignRates(r: CampaignReportRow): [CampaignRate, CampaignRate] {
  const rate = (
    what: string,
    value: number | null,
    count: number,
    t: { review: number; pause: number },
    digits: number,
  ): CampaignRate => ({
    what,
    rate: value,
    count,
    accepted: r.accepted,
    t,
    digits,
    where: level(value, t),
  });
  return [
    rate('bounce rate', r.bounce_rate, r.bounced, SES_THRESHOLDS.bounce, 2),
    rate('complaint rate', r.complaint_rate, r.complained, SES_THRESHOLDS.complaint, 3),
  ];
}

function rateLine({ what, rate, count, accepted, t, digits, where }: CampaignRate): string {
  return (
    `${what} ${percent(rate, digits)} (${count} of ${accepted} accepted); SES reviews an account ` +
    `at ${percent(t.review, digits - 2)} and may pause it at ${percent(t.pause, digits - 2)}` +
    (where ? `: ${where}` : '')
  );
}

export function reportText(report: CampaignReportRow, recipients: ReportRecipient[]): string {
  const r = report;
  const took =
    r.started_at && r.finished_at
      ? duration((r.finished_at.getTime() - r.started_at.getTime()) / 1000)
      : null;
  const out = [
    `campaign ${r.campaign_id} (${r.campaign_name}): ${r.status}` +
      (r.pause_reason ? `: ${r.pause_reason}` : '') +
      (r.generating ? ' (still generating)' : ''),
    fields([
      ['first send', r.started_at],
      ['last send', r.last_attempt_at],
      ['finished', r.finished_at ?? (r.status === 'done' ? null : `not yet (${r.status})`)],
      ['duration', took],
    ]),
    `recipients ${r.recipients}`,
    table(
      ['status', 'recipients', 'share'],
      RECIPIENT_STATUSES.filter((s) => r[s] > 0).map((s) => [
        s,
        r[s],
        percent(r.recipients > 0 ? r[s] / r.recipients : null, 1),
      ]),
    ),
    `accepted by SES ${r.accepted}: delivered ${r.delivered}, opened ${r.opened}, clicked ` +
      `${r.clicked} (recipients with such an SES event, among the events kept)`,
    ...campaignRates(r).map(rateLine),
  ];
  for (const status of LISTS) {
    const list = recipients.filter((x) => x.recipient_status === status);
    out.push(`\n${status.replace('_', ' ')} (${list.length})`);
    if (list.length === 0) continue;
    out.push(
      table(
        ['email', 'customer', 'why', 'last attempt'],
        list
          .slice(0, SHOWN)
          .map((x) => [x.email, x.customer_id, x.last_error, formatTime(x.last_attempt_at)]),
      ).trimEnd(),
    );
    if (list.length > SHOWN) out.push(`... and ${list.length - SHOWN} more (--csv lists all)`);
  }
  return `${out.join('\n')}\n`;
}

async function reportAction(
  campaignId: string,
  flags: { json?: boolean; csv?: boolean },
): Promise<void> {
  const { campaignReport, reportRecipients } = await import('../../queries/report.ts');
  await withDatabase(async (pool) => {
    const report = await campaignReport(pool, campaignId);
    if (!report) {
      process.stderr.write(`mailer: no campaign ${campaignId}\n`);
      process.exitCode = 1;
      return;
    }
    const recipients = await reportRecipients(pool, campaignId);
    if (flags.csv) return void process.stdout.write(reportCsv(recipients));
    if (flags.json) return print(JSON.stringify(reportJson(report, recipients), null, 2));
    print(reportText(report, recipients));
  });
}

export function registerCampaignReport(campaign: Command): void {
  campaign
    .command('report')
    .description(
      'What a campaign did: first send, finish and duration; recipients by status; delivered, ' +
        'opened and clicked from its SES events; bounce and complaint rates beside the levels ' +
        'at which SES reviews (5%, 0.1%) and may pause (10%, 0.5%) an account; the failed, ' +
        'bounced, complained and in-doubt recipients',
    )
    .argument('<campaign>', 'campaign id', uuidArgument('campaign'))
    .addOption(new Option('--json', 'everything, machine-readable').conflicts('csv'))
    .addOption(
      new Option(
        '--csv',
        'the failed, bounced, complained and in-doubt recipients as CSV (RFC 4180)',
      ).conflicts('json'),
    )
    .action(reportAction);
}
