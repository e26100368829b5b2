// A paused campaign does not spend the account's send rate: its waiting jobs are removed at the
// pause, and a job of it that still runs gets no pacing slot. Timing-sensitive: runs alone.
import test from 'ava';
import { waitFor } from '../helpers/cli.ts';
import { createTemplate } from '../helpers/factories.ts';
import { campaignStatus, generate, seedCustomers, startPipeline, waitForDone } from './harness.ts';

test('a campaign queued while a big one is paused starts sending within seconds', async (t) => {
  const p = await startPipeline(t, { env: { SES_MAX_SEND_RATE: '40', WORKER_CONCURRENCY: '16' } });
  await seedCustomers(p.db, { active: 1000 });
  await createTemplate(p.db.pool, { week_of_month: 2 });
  await Promise.all([p.startWorker(), p.startWorker()]);
  const big = await generate(p.db, { week: 1, date: '2026-11-02' });
  await waitFor(async () => p.ses.sent().length >= 40, { what: 'the big campaign sending' });
  await p.db.pool.query('select pause_campaign($1)', [big]);
  const sentAtPause = p.ses.sent().length;

  const small = await generate(p.db, { week: 2, date: '2026-11-09', send: false });
  const queuedAt = Date.now();
  await p.db.pool.query('select queue_campaign($1)', [small]);
  const first = await waitFor(async () => p.ses.sent().find((m) => m.tags.campaign_id === small), {
    what: "the small campaign's first email",
    timeoutMs: 60_000,
    intervalMs: 50,
  });
  const latencyMs = first.acceptedAt - queuedAt;
  t.log(`first email of the new campaign ${latencyMs} ms after it was queued`);
  // Before: the paused campaign's ~950 waiting jobs went first, each taking a slot at 40/s.
  t.true(latencyMs < 5_000, `first email after ${latencyMs} ms`);
  const bigAfter = p.ses.sent().filter((m) => m.tags.campaign_id === big).length;
  t.true(bigAfter <= sentAtPause + 40, `the paused campaign sent ${bigAfter - sentAtPause} more`);
  const { rows } = await p.db.pool.query<{ n: number }>(
    `select count(*)::int as n from graphile_worker.jobs
      where task_identifier = 'send_recipient' and key like $1`,
    [`send_recipient:${big}:%`],
  );
  t.is(rows[0]?.n, 0, "the paused campaign's waiting jobs are gone");

  await p.db.pool.query('select resume_campaign($1)', [big]);
  await waitForDone(p.db, small, 180_000);
  await waitForDone(p.db, big, 180_000);
  t.is(await campaignStatus(p.db, big), 'done');
  const perCampaign = new Set(p.ses.sent().map((m) => `${m.tags.campaign_id} ${m.to.join()}`));
  t.is(perCampaign.size, 2000, 'everyone got each campaign');
  t.is(p.ses.sent().length, 2000, 'once each');
});
