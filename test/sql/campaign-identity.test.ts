// Campaign identity (issue 15, item 9): one campaign per (month, week of the month) unless the
// operator forces it, and a date outside the week refused. Generated on Sunday the 6th and again on
// Monday the 7th, the same content went to everyone twice.
import test from 'ava';
import { weekOfMonth } from '../../src/queries/campaigns.ts';
import { connectClient, databaseForFile } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';

const db = databaseForFile();
test.before(async () => {
  for (const week of [1, 2, 3, 4]) await createTemplate(db.pool, { week_of_month: week });
  for (let i = 0; i < 3; i++) await createCustomer(db.pool);
});

const generate = (week: number, date: string, force?: boolean) =>
  db.pool.query<{ id: string }>(
    `select generate_campaign($1, $2::date, false, interval '90 days', 'https://mail.example.test'
                              ${force === undefined ? '' : ', p_force => $3'}) as id`,
    force === undefined ? [week, date] : [week, date, force],
  );

async function campaignsIn(month: string) {
  const { rows } = await db.pool.query<{ week_of_month: number; generated_date: string }>(
    `select week_of_month, generated_date::text from campaigns
      where to_char(generated_date, 'YYYY-MM') = $1 order by generated_date, week_of_month`,
    [month],
  );
  return rows.map((r) => `${r.week_of_month} ${r.generated_date}`);
}

test('the week of a date is the same in SQL and TypeScript: days 1-7 week 1 ... 29-31 week 5', async (t) => {
  const { rows } = await db.pool.query<{ d: string; w: number }>(
    `select d::date::text as d, week_of_month(d::date) as w
       from generate_series('2027-01-01'::date, '2028-12-31', '1 day') d`,
  );
  t.is(rows.length, 731);
  const differ = rows.filter((r) => r.w !== weekOfMonth(r.d));
  t.deepEqual(differ, []);
  const of = (d: string) => rows.find((r) => r.d === d)?.w;
  t.deepEqual(
    ['2027-03-01', '2027-03-07', '2027-03-08', '2027-03-28', '2027-03-29', '2028-02-29'].map(of),
    [1, 1, 2, 4, 5, 5],
  );
});

test('a second campaign for a week of the month on another day is refused, naming the first', async (t) => {
  // Sunday 2034-08-06 and Monday 2034-08-07 are both in week 1 of August.
  const sunday = (await generate(1, '2034-08-06')).rows[0]?.id;
  const error = await t.throwsAsync(generate(1, '2034-08-07'));
  t.is((error as { code?: string }).code, '23505');
  t.is(
    error?.message,
    `generate_campaign: week 1 of 2034-08 already has campaign ${sunday} (week 1, 2034-08-06, ` +
      'draft): a second one would mail the same content again',
  );
  t.regex((error as { hint?: string }).hint ?? '', /p_force => true, --force/);
  // The same week and day is a rerun: the same campaign, nothing new.
  t.is((await generate(1, '2034-08-06')).rows[0]?.id, sunday);
  // Another week, or the same week of another month, is another campaign.
  await generate(2, '2034-08-08');
  await generate(1, '2034-09-01');
  t.deepEqual(await campaignsIn('2034-08'), ['1 2034-08-06', '2 2034-08-08']);
});

test('the operator can force a second campaign for the week, once per day', async (t) => {
  const first = (await generate(3, '2034-10-15')).rows[0]?.id;
  const forced = (await generate(3, '2034-10-20', true)).rows[0]?.id;
  t.truthy(forced);
  t.not(forced, first);
  t.is((await generate(3, '2034-10-20', true)).rows[0]?.id, forced, 'a rerun returns it');
  t.deepEqual(await campaignsIn('2034-10'), ['3 2034-10-15', '3 2034-10-20']);
});

test('a date outside the week is refused with the week it is in and the dates to use', async (t) => {
  const error = await t.throwsAsync(generate(3, '2034-11-06'));
  t.is((error as { code?: string }).code, '22023');
  t.is(
    error?.message,
    'generate_campaign: 2034-11-06 is in week 1 of its month (days 1-7), not week 3; ' +
      'week 3 of 2034-11 is 2034-11-15 to 2034-11-21',
  );
  const fifth = await t.throwsAsync(generate(4, '2034-11-29'));
  t.regex(
    fifth?.message ?? '',
    /2034-11-29 is in week 5 of its month \(days 29-31\), which has no campaign; a campaign for week 4 needs a date from 2034-11-22 to 2034-11-28/,
  );
  t.deepEqual(await campaignsIn('2034-11'), []);
  // Forced: a fifth week's mail, on the operator's word.
  await generate(4, '2034-11-29', true);
  t.deepEqual(await campaignsIn('2034-11'), ['4 2034-11-29']);
});

test('two generations of one week on different days at the same moment make one campaign', async (t) => {
  const first = await connectClient(t, db.url);
  const second = await connectClient(t, db.url);
  const sql = `select generate_campaign(2, $1::date, false, interval '90 days', 'https://x.example')`;
  await first.query('begin');
  await first.query(sql, ['2035-01-08']);
  const other = second.query(sql, ['2035-01-09']).then(
    () => undefined,
    (error: Error & { code?: string }) => error,
  );
  // Commit once the second waits (for the first's generation), or after 2 s if it never does.
  for (let i = 0; i < 100; i++) {
    const { rowCount } = await db.pool.query(
      `select 1 from pg_stat_activity where datname = current_database()
          and wait_event_type = 'Lock' and query like '%generate_campaign(2,%'`,
    );
    if (rowCount) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await first.query('commit');
  const error = await other;
  t.is(error?.code, '23505', 'the second waits for the first, then sees it');
  t.deepEqual(await campaignsIn('2035-01'), ['2 2035-01-08']);
});

test('enqueue_generate_campaign refuses at once, and passes force on to the job', async (t) => {
  await t.throwsAsync(db.pool.query(`select enqueue_generate_campaign(2, '2036-03-01', false)`), {
    message: /^enqueue_generate_campaign: 2036-03-01 is in week 1 of its month/,
  });
  await generate(1, '2036-03-01');
  await t.throwsAsync(db.pool.query(`select enqueue_generate_campaign(1, '2036-03-02', false)`), {
    message: /^enqueue_generate_campaign: week 1 of 2036-03 already has campaign/,
  });
  const job = await db.pool.query<{ id: string }>(
    `select enqueue_generate_campaign(1, '2036-03-02', false, p_force => true) as id`,
  );
  const { rows } = await db.pool.query<{ payload: Record<string, unknown> }>(
    'select payload from graphile_worker._private_jobs where id = $1',
    [job.rows[0]?.id],
  );
  t.deepEqual(rows[0]?.payload, {
    week_of_month: 1,
    generated_date: '2036-03-02',
    send: false,
    force: true,
  });
});
