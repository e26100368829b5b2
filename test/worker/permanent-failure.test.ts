import test from 'ava';
import { NO_SES_ENV, startWorkerCli, waitFor } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';

test('a job with a malformed payload fails once, for good, with a message saying what is wrong', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const worker = startWorkerCli(t, { DATABASE_URL: db.url, ...NO_SES_ENV, LOG_LEVEL: 'warn' });
  await db.pool.query(
    `select graphile_worker.add_job('send_recipient', json_build_object('campaign_id', 'nope'));
     select graphile_worker.add_job('generate_campaign', json_build_object('week_of_month', 9));`,
  );
  const failed = await waitFor(
    async () => {
      const { rows } = await db.pool.query<{
        task_identifier: string;
        attempts: number;
        max_attempts: number;
        last_error: string;
      }>(
        `select task_identifier, attempts, max_attempts, last_error from graphile_worker.jobs
          where attempts >= max_attempts order by task_identifier`,
      );
      return rows.length === 2 ? rows : undefined;
    },
    { what: 'both jobs failed permanently', timeoutMs: 30_000 },
  );
  t.regex(failed[0]?.last_error ?? '', /generate_campaign: malformed payload \(week_of_month: .*4/);
  t.regex(
    failed[1]?.last_error ?? '',
    /send_recipient: malformed payload \(campaign_id: Invalid UUID.*customer_id/,
  );
  // Past the first retry's backoff (e^1 s) nothing ran again.
  await new Promise((r) => setTimeout(r, 3500));
  const runs = worker.output().match(/Failed task \d+ \(/g)?.length ?? 0;
  t.is(runs, 2, 'each job ran once');
  const { rows } = await db.pool.query(
    'select count(*)::int as n from graphile_worker.jobs where attempts < max_attempts',
  );
  t.is(rows[0]?.n, 0);
});
