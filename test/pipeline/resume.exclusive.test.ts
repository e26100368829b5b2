// Pause and resume under pacing with three worker processes (issue 15, item 1). Each resume used
// to end about 15 claims with "deadlock detected": jobs that claimed while the resume was
// committing waited for it with a share lock on the campaign, then each tried to update the
// campaign to sending. The race needs claims arriving while the resume commits: here the jobs a
// worker has already taken (pausing removes only the waiting ones) and those asleep on their
// slots, against a resume whose transaction stays open 600 ms, as long as resuming a
// 20,000-recipient campaign takes here (580-920 ms; this one has 1,500). Paced and
// timing-sensitive, so it runs alone (test/run.ts runs *.exclusive.test.ts files last).
import test from 'ava';
import { waitFor } from '../helpers/cli.ts';
import {
  deliveriesByAddress,
  duplicates,
  generate,
  seedCustomers,
  startPipeline,
  statusCounts,
  waitForDone,
} from './harness.ts';

const count = (text: string, pattern: RegExp) => text.match(pattern)?.length ?? 0;

test('pause and resume twice under pacing: no deadlock, no failed job, one email each', async (t) => {
  t.timeout(240_000);
  const recipients = 1500;
  const p = await startPipeline(t, {
    env: { SES_MAX_SEND_RATE: '150', WORKER_CONCURRENCY: '16' },
  });
  await seedCustomers(p.db, { active: recipients });
  await Promise.all([p.startWorker(), p.startWorker(), p.startWorker()]);
  const campaignId = await generate(p.db);

  for (const round of [1, 2]) {
    await waitFor(async () => p.ses.sent().length >= (round * recipients) / 4, {
      what: `${round * 25}% sent`,
      timeoutMs: 60_000,
    });
    await p.db.pool.query('select pause_campaign($1)', [campaignId]);
    const operator = await p.db.pool.connect();
    try {
      await operator.query('begin');
      await operator.query('select resume_campaign($1)', [campaignId]);
      await operator.query('select pg_sleep(0.6)');
      await operator.query('commit');
    } finally {
      operator.release();
    }
  }
  await waitForDone(p.db, campaignId);

  const output = p.workers.map((w) => w.output()).join('\n');
  const { rows } = await p.db.pool.query<{ n: number }>(
    `select count(*)::int as n from graphile_worker.jobs where last_error is not null`,
  );
  t.log(
    `deadlocks ${count(output, /deadlock detected/g)}, failed tasks ` +
      `${count(output, /Failed task/g)}, jobs left with an error ${rows[0]?.n}`,
  );
  t.is(count(output, /deadlock detected/g), 0, 'no deadlock in any worker');
  t.is(count(output, /Failed task/g), 0, 'no job failed, even once');
  t.is(rows[0]?.n, 0);
  t.is(deliveriesByAddress(p.ses).size, recipients);
  t.deepEqual(duplicates(p.ses), []);
  t.deepEqual(await statusCounts(p.db, campaignId), { sent: recipients });
});
