// `campaign list`: a row adds up to its recipients, and --status takes only a campaign status.
import test from 'ava';
import { runCli } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createCampaign, createTemplate } from '../helpers/factories.ts';

const db = databaseForFile();

const env = () => ({ DATABASE_URL: db.url, LOG_LEVEL: 'warn' });

test('list shows suppressed and unsubscribed, so a row adds up to its recipients', async (t) => {
  const { template_id } = await createTemplate(db.pool, { week_of_month: 1 });
  const { campaign_id: id } = await createCampaign(db.pool, {
    template_id,
    generated_date: '2031-03-03',
    status: 'sending',
  });
  const counts: Array<[string, number]> = [
    ['pending', 3],
    ['sending', 1],
    ['sent', 4],
    ['in_doubt', 1],
    ['failed', 2],
    ['suppressed', 5],
    ['bounced', 1],
    ['complained', 1],
    ['unsubscribed', 6],
  ];
  for (const [status, n] of counts) {
    await db.pool.query(
      `with c as (
         insert into customers (email)
         select 'r-' || gen_random_uuid() || '@example.com' from generate_series(1, $3)
         returning customer_id, email)
       insert into campaign_recipients
         (campaign_id, customer_id, email, recipient_status, last_attempt_at, attempt_count)
       select $1, c.customer_id, c.email, $2, now(), 1 from c`,
      [id, status, n],
    );
  }
  const json = await runCli(['campaign', 'list', '--status', 'sending', '--json'], env());
  t.is(json.code, 0, json.stderr);
  const row = (JSON.parse(json.stdout) as Array<Record<string, number | string>>).find(
    (c) => c.campaign_id === id,
  );
  t.like(row, { recipients: 24, pending: 4, suppressed: 5, unsubscribed: 6 });
  const columns = ['pending', 'sent', 'in_doubt', 'failed', 'suppressed', 'bounced'];
  columns.push('complained', 'unsubscribed');
  t.is(
    columns.reduce((sum, key) => sum + Number(row?.[key]), 0),
    24,
    'the columns add up to the recipients',
  );
  const text = await runCli(['campaign', 'list', '--status', 'sending'], env());
  t.regex(
    text.stdout,
    /to send\s+sent\s+in doubt\s+failed\s+suppressed\s+bounced\s+complained\s+unsubscribed/,
  );
  t.regex(text.stdout, new RegExp(`${id}.*sending\\s+24\\s+4\\s+4\\s+1\\s+2\\s+5\\s+1\\s+1\\s+6`));
  const none = await runCli(['campaign', 'list', '--status', 'draft', '--json'], env());
  t.deepEqual(JSON.parse(none.stdout), []);
});

test('list refuses an unknown --status with exit 2, naming the allowed ones', async (t) => {
  const result = await runCli(['campaign', 'list', '--status', 'sent'], env());
  t.is(result.code, 2);
  t.regex(result.stderr, /'sent' is invalid.*draft, queued, sending, done, paused/s);
});
