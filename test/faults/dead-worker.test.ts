// A worker SIGKILLed while SES holds its requests, next to a worker that keeps running and nobody
// restarting anything, with the default claim lease (120 s). The killed worker's claims used to
// stay sending for the whole lease plus up to a minute of sweep before its campaign could finish
// (issue 15, item 5). Each claim now names its process, and the surviving worker's dead-worker
// check puts the claims of a process without connections in doubt at once.
import test from 'ava';
import { waitFor } from '../helpers/cli.ts';
import {
  campaignStatus,
  duplicates,
  generate,
  seedCustomers,
  startPipeline,
  statusCounts,
} from '../pipeline/harness.ts';
import { jobHealth, sesIdle } from './support.ts';

test('a SIGKILLed worker leaves its campaign done within 60 s, its claims in doubt', async (t) => {
  t.timeout(180_000);
  const recipients = 60;
  const p = await startPipeline(t, {
    // SES answers after 2 s, so both workers always have requests on the wire.
    ses: { faults: { latencyMs: 2000 } },
    env: { SEND_CLAIM_LEASE_SECONDS: '120', WORKER_CONCURRENCY: '4' },
  });
  await seedCustomers(p.db, { active: recipients });
  // The victim alone first: graphile-worker's local queue lets the first worker to fetch take
  // every job of so small a campaign, and the victim must be the one holding claims.
  const victim = await p.startWorker();
  const campaignId = await generate(p.db);
  // The victim itself must have requests on the wire (a busy machine can start it late).
  const victimSending = () =>
    waitFor(
      async () =>
        (
          await p.db.pool.query(
            `select 1 from campaign_recipients r
               join worker_processes w on w.process_id = r.claimed_by
              where r.recipient_status = 'sending' and $1 in (w.pid, w.supervisor_pid)`,
            [victim.child.pid],
          )
        ).rowCount !== 0,
      { what: 'the victim sending', intervalMs: 10 },
    );
  await victimSending();
  await p.startWorker();

  // Again right before the kill: starting the second worker can take longer than SES's 2 s, and
  // a kill between the victim's outcomes and its next claims would leave it nothing on the wire.
  await victimSending();
  victim.child.kill('SIGKILL');
  await victim.exited;
  const killedAt = Date.now();
  p.ses.setFaults({});
  await waitFor(async () => (await campaignStatus(p.db, campaignId)) === 'done', {
    what: 'the campaign done within 60 s of the kill',
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  const seconds = (Date.now() - killedAt) / 1000;
  await sesIdle(p.ses);

  const counts = await statusCounts(p.db, campaignId);
  t.log(`done ${seconds.toFixed(1)} s after the kill: ${JSON.stringify(counts)}`);
  t.deepEqual(duplicates(p.ses), [], 'nobody got a second email');
  t.is((counts.sent ?? 0) + (counts.in_doubt ?? 0), recipients);
  // The killed worker's requests on the wire (at most its 4 jobs): never resent.
  t.true((counts.in_doubt ?? 0) >= 1 && (counts.in_doubt ?? 0) <= 4, `${counts.in_doubt} in doubt`);
  const { rows } = await p.db.pool.query<{ last_error: string }>(
    `select last_error from campaign_recipients
      where campaign_id = $1 and recipient_status = 'in_doubt'`,
    [campaignId],
  );
  for (const row of rows) t.regex(row.last_error, /worker process mailer-worker-\w+ died/);
  t.is((await jobHealth(p.db)).failed, 0, 'no job failed for good');
});
