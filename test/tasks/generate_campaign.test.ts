// The generate_campaign task (enqueue_generate_campaign, psql, scripts): a payload whose date is
// outside its week, or a second campaign for a week of the month, is the payload's fault and fails
// the job once, for good, with generate_campaign's message; force is the operator's override.
import test from 'ava';
import { PermanentJobError } from '../../src/worker/define.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';
import { type TaskRun, taskRunner } from '../helpers/tasks.ts';

const db = databaseForFile();
let task: TaskRun;
test.before(async () => {
  task = await taskRunner('generate_campaign', db.pool, {
    PUBLIC_URL: 'https://mail.example.test',
  });
  await createTemplate(db.pool, { week_of_month: 2 });
  await createCustomer(db.pool);
});

async function campaigns(month: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ c: string }>(
    `select week_of_month || ' ' || generated_date as c from campaigns
      where to_char(generated_date, 'YYYY-MM') = $1 order by generated_date`,
    [month],
  );
  return rows.map((r) => r.c);
}

test('a date outside the week fails the job for good; forced, it generates', async (t) => {
  const error = await t.throwsAsync(
    task.run({ week_of_month: 2, generated_date: '2032-05-03', send: false }),
    { instanceOf: PermanentJobError },
  );
  t.regex(error?.message ?? '', /^generate_campaign: 2032-05-03 is in week 1 of its month/);
  t.deepEqual(await campaigns('2032-05'), []);
  await task.run({ week_of_month: 2, generated_date: '2032-05-03', send: false, force: true });
  t.deepEqual(await campaigns('2032-05'), ['2 2032-05-03']);
});

test('a second campaign for the week fails the job for good; forced, it generates', async (t) => {
  await task.run({ week_of_month: 2, generated_date: '2032-06-08', send: false });
  const error = await t.throwsAsync(
    task.run({ week_of_month: 2, generated_date: '2032-06-09', send: false }),
    { instanceOf: PermanentJobError },
  );
  t.regex(error?.message ?? '', /^generate_campaign: week 2 of 2032-06 already has campaign/);
  await task.run({ week_of_month: 2, generated_date: '2032-06-09', send: false, force: true });
  t.deepEqual(await campaigns('2032-06'), ['2 2032-06-08', '2 2032-06-09']);
});
