// Paced sends (SES_MAX_SEND_RATE) whose assertions depend on timely wake-ups, run alone and one
// after the other (test/run.ts runs *.exclusive.test.ts files one at a time, after all others):
// on a loaded 2-core host late wake-ups made them time out, or leave more recipients claimed at a
// kill than they allow.
import test from 'ava';
import { waitFor } from '../helpers/cli.ts';
import {
  campaignStatus,
  deliveriesByAddress,
  duplicates,
  generate,
  seedCustomers,
  startPipeline,
  statusCounts,
  waitForDone,
} from './harness.ts';

test.serial(
  'pause mid-campaign stops new sends; resume sends everyone else exactly once',
  async (t) => {
    const p = await startPipeline(t, { env: { SES_MAX_SEND_RATE: '200' } });
    await seedCustomers(p.db, { active: 1000 });
    await p.startWorker();
    await p.startWorker();
    const campaignId = await generate(p.db);
    await waitFor(async () => p.ses.sent().length >= 200, { what: 'sending under way' });
    await p.db.pool.query(`update campaigns set status = 'paused' where campaign_id = $1`, [
      campaignId,
    ]);
    // In-flight sends finish; then nothing more arrives while paused.
    await new Promise((r) => setTimeout(r, 1500));
    const atPause = p.ses.sent().length;
    await new Promise((r) => setTimeout(r, 1500));
    t.is(p.ses.sent().length, atPause, 'no sends while paused');
    t.true(atPause < 1000);
    t.is(await campaignStatus(p.db, campaignId), 'paused');

    await p.db.pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [
      campaignId,
    ]);
    await waitForDone(p.db, campaignId);
    t.is(deliveriesByAddress(p.ses).size, 1000);
    t.deepEqual(duplicates(p.ses), []);
    t.deepEqual(await statusCounts(p.db, campaignId), { sent: 1000 });
  },
);

test.serial(
  'a paced worker SIGKILLed while its jobs wait for their slots leaves them sendable, not in doubt',
  async (t) => {
    const p = await startPipeline(t, {
      env: { SES_MAX_SEND_RATE: '5', WORKER_CONCURRENCY: '8' },
    });
    await seedCustomers(p.db, { active: 40 });
    const victim = await p.startWorker();
    const campaignId = await generate(p.db);
    await waitFor(async () => p.ses.sent().length >= 8, { what: 'paced sending under way' });
    // Eight jobs at 5/s: most of them are sleeping until their slots right now.
    victim.child.kill('SIGKILL');
    await victim.exited;
    const atKill = p.ses.sent().length;
    await p.startWorker();
    await waitForDone(p.db, campaignId);

    const counts = await statusCounts(p.db, campaignId);
    t.log(`killed after ${atKill} sends; final ${JSON.stringify(counts)}`);
    t.true(atKill < 30, 'the kill happened mid-campaign');
    t.deepEqual(duplicates(p.ses), []);
    t.is((counts.sent ?? 0) + (counts.in_doubt ?? 0), 40);
    // In doubt: the send in flight at the kill, plus any job that claimed, missed its slot (a busy
    // CPU) and was waiting for a new one holding its claim; not the jobs waiting for their first
    // slot. Claiming first left all 8 in doubt; here 0-1 on a quiet machine, 2 seen under CI load.
    t.true((counts.in_doubt ?? 0) <= 4, `${counts.in_doubt} in doubt`);
  },
);
