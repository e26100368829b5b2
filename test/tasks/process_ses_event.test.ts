import { randomUUID } from 'node:crypto';
import test from 'ava';
import type { JobHelpers } from 'graphile-worker';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { createPool } from '../../src/db/pool.ts';
import { PermanentJobError } from '../../src/worker/define.ts';
import { newProcessId, startWorker } from '../../src/worker/runner.ts';
import { sesEvent } from '../events/helpers.ts';
import { waitFor } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  createRecipients,
  createSendingCampaign,
  createSentRecipient,
  recipientRow,
} from '../helpers/factories.ts';
import {
  capturingLogger,
  createTaskDeps,
  jobHelpers,
  type LogLine,
  loadTask,
  unreachableSes,
} from '../helpers/tasks.ts';

const env = {
  SES_MAX_SEND_RATE: '0',
  REPUTATION_MIN_SENT: '10',
  LOG_LEVEL: 'silent',
};
const logLines: LogLine[] = [];
const logger = capturingLogger(logLines);
const ses = unreachableSes();

let db: TestDatabase;
let processSesEvent: RunTask;
test.before(async () => {
  db = await createTestDatabase();
  processSesEvent = await taskWith(db.pool);
});
test.after.always(async () => {
  ses.destroy();
  await db?.drop();
});

type RunTask = (payload: unknown, helpers: JobHelpers) => Promise<unknown>;

async function taskWith(pool: pg.Pool): Promise<RunTask> {
  const task = await loadTask(createTaskDeps(pool, { env, logger, ses }), 'process_ses_event');
  return async (payload, helpers) => task(payload, helpers);
}

const helpers = () => jobHelpers(logger);

function envelope(event: unknown, Message = JSON.stringify(event)) {
  return {
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: 'arn:aws:sns:eu-west-1:123456789012:mailer-ses-events',
    Message,
    Timestamp: new Date().toISOString(),
    SignatureVersion: '2',
    Signature: 'c2lnbmF0dXJl',
    SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem',
  };
}

async function eventCount(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'select count(*)::int as n from email_events_op',
  );
  return rows[0]?.n ?? -1;
}

test('applies the SES event inside an SNS envelope, as the webhook stores it', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  await processSesEvent(envelope(sesEvent('Bounce', r)), helpers());
  t.like(await recipientRow(db.pool, r), { recipient_status: 'bounced' });
});

test.serial('refuses what is not an SES event, permanently, recording nothing', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  const before = await eventCount();
  const cases: Array<[unknown, RegExp]> = [
    [{ hello: 'world' }, /mail: Invalid input/],
    [envelope(null, 'not json'), /SNS Message is not JSON/],
    [{ Type: 'SubscriptionConfirmation', Message: '{}' }, /not an SNS Notification/],
    [[1, 2], /not an SES event object/],
    [{ ...sesEvent('Open', r), eventType: 'Teleport' }, /eventType: Invalid option/],
    [sesEvent('Bounce', r, { detail: { bounceType: 'Sideways' } }), /bounce: bounceType/],
    [{ eventType: 'Complaint', mail: { messageId: 'x' } }, /complaint: /],
    [{ eventType: 'Delivery', mail: {} }, /mail\.messageId/],
    [sesEvent('Open', r, { detail: { timestamp: 'yesterday' } }), /open: timestamp/],
    [sesEvent('Open', r, { detail: { timestamp: '2030-02-30T00:00:00Z' } }), /open: timestamp/],
    // Valid JSON that PostgreSQL's jsonb refuses (a NUL character): rejected by the database.
    [
      sesEvent('Reject', r, { detail: { reason: 'virus\u0000' } }),
      /Reject event cannot be applied/,
    ],
  ];
  for (const [payload, message] of cases) {
    const error = await t.throwsAsync(processSesEvent(payload, helpers()), {
      instanceOf: PermanentJobError,
    });
    t.regex(error?.message ?? '', message, JSON.stringify(payload).slice(0, 80));
  }
  t.is(await eventCount(), before);
  t.like(await recipientRow(db.pool, r), { recipient_status: 'sent' });
});

test.serial(
  'the SES subscription-succeeded notice completes without recording anything',
  async (t) => {
    const before = await eventCount();
    await processSesEvent(
      envelope({ notificationType: 'AmazonSnsSubscriptionSucceeded', message: 'ok' }),
      helpers(),
    );
    t.is(await eventCount(), before);
  },
);

test('a database error is transient: thrown for a retry, not a permanent failure', async (t) => {
  const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/none' });
  pool.on('error', () => undefined);
  t.teardown(() => pool.end());
  const task = await taskWith(pool);
  const error = await t.throwsAsync(
    task(sesEvent('Delivery', { messageId: 'ses-1', email: 'a@example.com' }), helpers()),
  );
  t.false(error instanceof PermanentJobError);
  t.regex(error?.message ?? '', /apply_ses_event failed/);
});

test('logs why the reputation guard paused a campaign', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const r = await createSentRecipient(db.pool, campaign);
  await createRecipients(db.pool, campaign, 19, 'sent');
  await processSesEvent(envelope(sesEvent('Bounce', r)), helpers());
  const line = logLines.find((l) => l.campaign_id === campaign && l.level === 40);
  t.is(line?.reason, 'permanent bounce rate 5.00% (1 of 20 sent) is above the 4.000% limit');
  t.regex(String(line?.msg), /reputation guard PAUSED campaign/);
});

test.serial(
  'a real worker applies a bare event added from psql and fails a malformed one, saying why',
  async (t) => {
    const campaign = await createSendingCampaign(db.pool);
    const r = await createSentRecipient(db.pool, campaign);
    const processId = newProcessId();
    const pool = createPool(db.url, logger, { applicationName: processId });
    const worker = await startWorker({
      config: loadConfig(env),
      logger,
      pool,
      processId,
      ses,
      crontab: false,
    });
    t.teardown(async () => {
      await worker.stop();
      await pool.end();
    });
    await db.pool.query(`select graphile_worker.add_job('process_ses_event', $1::json)`, [
      JSON.stringify(sesEvent('Complaint', r)),
    ]);
    const { rows } = await db.pool.query<{ id: string }>(
      `select (graphile_worker.add_job('process_ses_event', '{"eventType":"Teleport"}'::json)).id`,
    );
    const badId = rows[0]?.id;
    await waitFor(async () => (await recipientRow(db.pool, r))?.recipient_status === 'complained', {
      what: 'the complaint to be applied',
    });
    // What an operator sees on the job: the task's own explanation. (Turning the PermanentJobError
    // into graphile_worker.permanently_fail_jobs is the runner's part, not this task's.)
    const failed = await waitFor(
      async () => {
        const { rows: jobs } = await db.pool.query<{ last_error: string | null }>(
          'select last_error from graphile_worker.jobs where id = $1 and last_error is not null',
          [badId],
        );
        return jobs[0];
      },
      { what: 'the malformed job to fail' },
    );
    t.regex(
      failed.last_error ?? '',
      /process_ses_event: malformed payload .*eventType: Invalid option/,
    );
  },
);
