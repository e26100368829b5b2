import test from 'ava';
import { generateCampaign } from '../../src/queries/campaigns.ts';
import { PermanentJobError } from '../../src/worker/define.ts';
import { weekOfMonth } from '../../tasks/generate_weekly_campaign.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';
import { type TaskRun, taskRunner } from '../helpers/tasks.ts';

const db = databaseForFile();
let task: TaskRun;
test.before(async () => {
  task = await taskRunner('generate_weekly_campaign', db.pool);
  await createTemplate(db.pool, { week_of_month: 1 });
  await createTemplate(db.pool, { week_of_month: 2 });
  await createTemplate(db.pool, { week_of_month: 4 });
  for (let i = 0; i < 3; i++) await createCustomer(db.pool);
});

const cron = (ts: string, backfilled = false) => ({ _cron: { ts, backfilled } });

async function campaigns(date: string) {
  const { rows } = await db.pool.query<{
    week_of_month: number;
    status: string;
    recipients: number;
  }>(
    `select c.week_of_month, c.status,
            (select count(*)::int from campaign_recipients r where r.campaign_id = c.campaign_id) as recipients
       from campaigns c where generated_date = $1`,
    [date],
  );
  return rows;
}

test('the week of the month is the Monday count: days 1-7 week 1 ... 29-31 week 5', (t) => {
  t.deepEqual(
    [
      '2030-04-01',
      '2030-04-08',
      '2030-04-15',
      '2030-04-22',
      '2030-04-29',
      '2030-01-07',
      '2030-12-31',
    ].map(weekOfMonth),
    [1, 2, 3, 4, 5, 1, 5],
  );
});

test('a scheduled Monday generates and queues that week, once, even when run again', async (t) => {
  await task.run(cron('2030-01-14T06:00:00.000Z'));
  await task.run(cron('2030-01-14T06:00:00.000Z', true));
  t.deepEqual(await campaigns('2030-01-14'), [
    { week_of_month: 2, status: 'queued', recipients: 3 },
  ]);
});

test('a backfilled run uses the scheduled date, not the day it runs', async (t) => {
  await task.run(cron('2030-01-28T06:00:00.000Z', true));
  t.deepEqual(await campaigns('2030-01-28'), [
    { week_of_month: 4, status: 'queued', recipients: 3 },
  ]);
});

test('a fifth Monday sends nothing, and says so', async (t) => {
  await task.run(cron('2030-04-29T06:00:00.000Z'));
  t.deepEqual(await campaigns('2030-04-29'), []);
  t.true(
    task.logs.some((l) => /2030-04-29 is in week 5 of its month: no campaign/.test(String(l.msg))),
  );
});

test('a week without an active template fails permanently with what to do', async (t) => {
  const error = await t.throwsAsync(task.run(cron('2030-01-21T06:00:00.000Z')), {
    instanceOf: PermanentJobError,
  });
  t.regex(error?.message ?? '', /no active template for week 3 \(2030-01-21\).*mailer jobs retry/);
  t.deepEqual(await campaigns('2030-01-21'), []);
});

test('a localhost PUBLIC_URL with real SES fails the job for good, generating nothing', async (t) => {
  const real = await taskRunner('generate_weekly_campaign', db.pool, {
    SES_ENDPOINT: '',
    PUBLIC_URL: 'http://localhost:3000',
  });
  const error = await t.throwsAsync(real.run({ date: '2030-03-04' }));
  t.is(error?.name, 'PermanentJobError');
  t.regex(
    error?.message ?? '',
    /PUBLIC_URL is http:\/\/localhost:3000, but this campaign would be sent through real SES/,
  );
  const { rowCount } = await db.pool.query(
    "select 1 from campaigns where generated_date = '2030-03-04'",
  );
  t.is(rowCount, 0);
});

test('a manual run takes a date from the payload', async (t) => {
  await task.run({ date: '2030-02-04' });
  t.deepEqual(await campaigns('2030-02-04'), [
    { week_of_month: 1, status: 'queued', recipients: 3 },
  ]);
});

test('a Monday whose week already has a campaign generated on the Sunday sends nothing more', async (t) => {
  // An operator generated week 1 by hand on Sunday 2030-10-06 (mailer campaign generate); the
  // cron fires on Monday the 7th, also week 1. Before, everyone got the same content twice.
  await generateCampaign(db.pool, {
    weekOfMonth: 1,
    generatedDate: '2030-10-06',
    send: true,
    tokenTtlDays: 90,
    publicUrl: 'https://mail.example.test',
  });
  await task.run(cron('2030-10-07T06:00:00.000Z'));
  t.deepEqual(await campaigns('2030-10-07'), []);
  t.true(
    task.logs.some((l) =>
      /week 1 of 2030-10 already has campaign .* \(week 1, 2030-10-06, queued\)/.test(
        String(l.msg),
      ),
    ),
  );
});
