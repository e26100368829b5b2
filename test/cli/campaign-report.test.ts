// `mailer campaign report`: its numbers are the database's and the local SES's own. A real campaign
// goes through a worker, the local SES (which refuses one address and publishes the simulator's
// events to the webhook), and the report is compared with SQL counts and with the messages the
// endpoint itself accepted.
import test from 'ava';
import { reportCsv } from '../../src/cli/commands/campaign-report.ts';
import { applySesEvent } from '../../src/events/queries.ts';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { sesEvent, startEventWebhook } from '../events/helpers.ts';
import { runCli, waitFor } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createCampaign, createCustomer, createTemplate } from '../helpers/factories.ts';
import { startWorkerInProcess } from '../helpers/worker.ts';

const READERS = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'].map((r) => `${r}@example.com`);
const BOUNCE = 'bounce@simulator.amazonses.com';
const COMPLAINT = 'complaint@simulator.amazonses.com';
const SUCCESS = 'success@simulator.amazonses.com';
const REJECTED = 'rejected@example.com';
const SUPPRESSED = 'gone@example.com';

interface ReportJson {
  status: string;
  started_at: string;
  finished_at: string;
  duration_seconds: number;
  recipients: number;
  accepted: number;
  delivered: number;
  opened: number;
  clicked: number;
  rates: Record<string, { rate: number; ses_review: number; ses_pause: number; level: string }>;
  lists: Record<string, Array<{ email: string; last_error: string | null }>>;
  [status: string]: unknown;
}

test('a sent campaign’s report matches the database and the local SES’s own count', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  for (const email of [SUCCESS, BOUNCE, COMPLAINT, REJECTED, SUPPRESSED, ...READERS]) {
    await createCustomer(db.pool, { email });
  }
  await db.pool.query("select suppress_email($1, 'manual', 'left the company')", [SUPPRESSED]);
  await createTemplate(db.pool, { week_of_month: 1 });

  const publisher = await startEventWebhook(t, db.pool);
  const ses = await startLocalSes({
    onSend: publisher.publish,
    faults: { rejectAddresses: [REJECTED] },
  });
  t.teardown(() => ses.close());
  const config = await startWorkerInProcess(t, db.url, ses.url);

  await db.pool.query(
    `select graphile_worker.add_job('generate_campaign',
       json_build_object('week_of_month', 1, 'generated_date', '2030-07-01'))`,
  );
  const id = await waitFor(
    async () =>
      (
        await db.pool.query<{ campaign_id: string }>(
          "select campaign_id from campaigns where generated_date = '2030-07-01' and status = 'done'",
        )
      ).rows[0]?.campaign_id,
    { what: 'the campaign to be sent', timeoutMs: 60_000 },
  );
  await publisher.drain();
  await waitFor(
    async () =>
      (
        await db.pool.query(
          "select 1 from graphile_worker.jobs where task_identifier = 'process_ses_event'",
        )
      ).rowCount === 0,
    { what: 'SES events to be processed', timeoutMs: 60_000 },
  );
  // A reader opens the message and clicks a link (the simulator publishes neither).
  const { rows: reader } = await db.pool.query<{ customer_id: string; ses_message_id: string }>(
    'select customer_id, ses_message_id from campaign_recipients where campaign_id = $1 and email = $2',
    [id, READERS[0]],
  );
  const target = {
    messageId: reader[0]?.ses_message_id ?? '',
    email: READERS[0] ?? '',
    campaignId: id,
    customerId: reader[0]?.customer_id ?? '',
  };
  for (const type of ['Open', 'Open', 'Click'] as const) {
    await applySesEvent(db.pool, sesEvent(type, target), config.reputation);
  }

  const result = await runCli(['campaign', 'report', id, '--json'], {
    DATABASE_URL: db.url,
    LOG_LEVEL: 'warn',
  });
  t.is(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout) as ReportJson;

  // The database's own counts.
  const { rows: byStatus } = await db.pool.query<{ recipient_status: string; n: number }>(
    `select recipient_status, count(*)::int as n from campaign_recipients where campaign_id = $1
      group by 1`,
    [id],
  );
  for (const { recipient_status, n } of byStatus)
    t.is(report[recipient_status], n, recipient_status);
  t.is(report.recipients, 11);
  t.like(report, {
    status: 'done',
    sent: 7,
    bounced: 1,
    complained: 1,
    failed: 1,
    suppressed: 1,
    in_doubt: 0,
  });
  const { rows: events } = await db.pool.query<{ event_type: string; n: number }>(
    `select event_type, count(distinct customer_id)::int as n from email_events_op
      where campaign_id = $1 group by 1`,
    [id],
  );
  const eventCount = (type: string) => events.find((e) => e.event_type === type)?.n ?? 0;
  t.is(report.delivered, eventCount('delivery'));
  t.is(report.opened, 1, 'one reader, however many opens');
  t.is(report.clicked, 1);

  // The local SES's own count: every message it accepted, and nothing else, is accepted here.
  const accepted = ses.sent();
  t.is(report.accepted, accepted.length);
  t.is(accepted.length, 9, 'all but the rejected and the suppressed address');
  const { rows: ids } = await db.pool.query<{ ses_message_id: string }>(
    'select ses_message_id from campaign_recipients where campaign_id = $1 and ses_message_id is not null',
    [id],
  );
  t.deepEqual(ids.map((r) => r.ses_message_id).sort(), accepted.map((m) => m.messageId).sort());
  // The simulator delivers to everyone it accepted but the bounce address.
  t.is(report.delivered, accepted.filter((m) => !m.to.includes(BOUNCE)).length);

  t.deepEqual(report.rates.bounce, {
    rate: 0.111111,
    ses_review: 0.05,
    ses_pause: 0.1,
    level: 'at or above sending pause',
  });
  t.is(report.rates.complaint?.rate, 0.111111);
  t.deepEqual(
    Object.fromEntries(Object.entries(report.lists).map(([k, v]) => [k, v.map((r) => r.email)])),
    { failed: [REJECTED], bounced: [BOUNCE], complained: [COMPLAINT], in_doubt: [] },
  );
  t.regex(report.lists.failed?.[0]?.last_error ?? '', /MessageRejected/);
  t.true(Date.parse(report.started_at) <= Date.parse(report.finished_at));
  t.is(
    report.duration_seconds,
    (Date.parse(report.finished_at) - Date.parse(report.started_at)) / 1000,
  );

  const text = await runCli(['campaign', 'report', id], {
    DATABASE_URL: db.url,
    LOG_LEVEL: 'warn',
  });
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /accepted by SES 9: delivered 8, opened 1, clicked 1/);
  t.regex(
    text.stdout,
    /bounce rate 11\.11% \(1 of 9 accepted\); SES reviews an account at 5% and may pause it at 10%: at or above sending pause/,
  );
  t.regex(
    text.stdout,
    /complaint rate 11\.111% \(1 of 9 accepted\); SES reviews an account at 0\.1% and may pause it at 0\.5%/,
  );
  t.regex(
    text.stdout,
    /\nfailed \(1\)\nemail\s+customer\s+why\s+last attempt\nrejected@example\.com /,
  );
  t.regex(text.stdout, /\nin doubt \(0\)\n/);
  t.regex(text.stdout, /duration\s+\d+s\n/);

  const csv = await runCli(['campaign', 'report', id, '--csv'], {
    DATABASE_URL: db.url,
    LOG_LEVEL: 'warn',
  });
  t.is(csv.code, 0, csv.stderr);
  const lines = csv.stdout.trimEnd().split('\r\n');
  t.is(
    lines[0],
    'status,email,customer_id,error,ses_message_id,attempts,last_attempt_at,updated_at',
  );
  t.deepEqual(
    lines.slice(1).map((l) => l.split(',').slice(0, 2).join(',')),
    [`failed,${REJECTED}`, `bounced,${BOUNCE}`, `complained,${COMPLAINT}`],
  );
});

test('the report lists in-doubt recipients, and its CSV quotes what needs quoting', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const { template_id } = await createTemplate(db.pool, { week_of_month: 1 });
  const { campaign_id: id } = await createCampaign(db.pool, {
    template_id,
    generated_date: '2030-07-02',
    status: 'paused',
  });
  const customer = await createCustomer(db.pool, { email: 'doubt@example.com' });
  await db.pool.query(
    `insert into campaign_recipients
       (campaign_id, customer_id, email, recipient_status, last_attempt_at, attempt_count, last_error)
     values ($1, $2, $3, 'in_doubt', now(), 1, $4)`,
    [id, customer.customer_id, customer.email, '=HYPERLINK("x"), timed out\nafter 15 s'],
  );
  const json = await runCli(['campaign', 'report', id, '--json'], { DATABASE_URL: db.url });
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as ReportJson;
  t.like(report, { status: 'paused', finished_at: null, duration_seconds: null, in_doubt: 1 });
  t.deepEqual(
    report.lists.in_doubt?.map((r) => r.email),
    ['doubt@example.com'],
  );
  const text = await runCli(['campaign', 'report', id], { DATABASE_URL: db.url });
  t.regex(text.stdout, /finished\s+not yet \(paused\)/);
  t.regex(text.stdout, /\nin doubt \(1\)\n/);

  const csv = reportCsv([
    {
      customer_id: customer.customer_id,
      email: customer.email,
      recipient_status: 'in_doubt',
      last_error: '=HYPERLINK("x"), timed out\nafter 15 s',
      ses_message_id: null,
      attempt_count: 1,
      last_attempt_at: new Date('2030-07-02T10:00:00Z'),
      updated_at: new Date('2030-07-02T10:00:01Z'),
    },
  ]);
  t.is(
    csv.split('\r\n')[1],
    `in_doubt,doubt@example.com,${customer.customer_id},"'=HYPERLINK(""x""), timed out\nafter 15 s",,1,2030-07-02T10:00:00.000Z,2030-07-02T10:00:01.000Z`,
  );

  const both = await runCli(['campaign', 'report', id, '--json', '--csv'], {
    DATABASE_URL: db.url,
  });
  t.is(both.code, 2);
  const unknown = await runCli(['campaign', 'report', '00000000-0000-4000-8000-000000000000'], {
    DATABASE_URL: db.url,
  });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /no campaign/);
});
