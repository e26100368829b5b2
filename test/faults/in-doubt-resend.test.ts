// IN_DOUBT_RESEND_AFTER_MINUTES end to end: real worker processes, one SIGKILLed mid-campaign
// with four SendEmail calls held at the local SES, which publishes its events (Send included)
// as signed SNS notifications to a real webhook. SES accepts two of those calls after the kill
// and refuses the other two (to a client that is gone). The accepted two are settled by their
// Send events; the two SES never accepted are in doubt, and the policy queues them again. Every
// address ends with exactly one email, counted at the endpoint, and no operator acts.
import test from 'ava';
import { LOCAL_TOPIC_ARN } from '../../src/ses-local/event-publisher.ts';
import { configureLocalSes } from '../../src/ses-local/setup.ts';
import { waitFor } from '../helpers/cli.ts';
import {
  deliveriesByAddress,
  generate,
  seedCustomers,
  startPipeline,
  statusCounts,
} from '../pipeline/harness.ts';
import { createSesClient } from '../ses-local/helpers.ts';
import {
  checkEndState,
  createEventSink,
  explainStall,
  jobHealth,
  sesIdle,
  waitForEventsApplied,
} from './support.ts';

test('a worker SIGKILLed mid-campaign: what SES never accepted is resent once by the policy', async (t) => {
  t.timeout(240_000);
  const sink = createEventSink({ hold: false });
  const p = await startPipeline(t, {
    ses: { onSend: sink.onSend },
    env: {
      WORKER_CONCURRENCY: '4',
      SES_CONFIGURATION_SET: 'mailer',
      SNS_TOPIC_ARNS: LOCAL_TOPIC_ARN,
      // Six seconds: the claim lease of the pipeline, so a test waits seconds, not an hour.
      IN_DOUBT_RESEND_AFTER_MINUTES: '0.1',
    },
  });
  t.teardown(() => sink.close());
  const client = createSesClient(p.ses.url);
  t.teardown(() => client.destroy());
  // The configuration set publishes Send events to the webhook's topic: what the policy asks.
  await configureLocalSes(client, {
    from: 'Mailer <mailer@example.com>',
    configurationSet: 'mailer',
    topicArn: LOCAL_TOPIC_ARN,
  });
  await seedCustomers(p.db, { active: 40 });
  await sink.connect(p.db.pool);

  const victim = await p.startWorker();
  const campaignId = await generate(p.db);
  await waitFor(async () => p.ses.sent().length >= 12, { what: '12 sent', intervalMs: 10 });
  p.ses.setFaults({ latencyMs: 1500 });
  // All four of its jobs are waiting for SES.
  await waitFor(async () => p.ses.sendCallCount() - p.ses.sent().length >= 4, {
    what: 'four calls held at SES',
    intervalMs: 10,
  });
  victim.child.kill('SIGKILL');
  await victim.exited;
  p.ses.setFaults({ failNext: { status: 500, count: 2 } });
  await sesIdle(p.ses);
  p.ses.setFaults({});
  const heldAccepted = p.ses.sent().length;

  await p.startWorker();
  // The sweep (every minute from cron) and the reconciliation (every 10 minutes) are what settle
  // the killed claims; here they are run every two seconds instead.
  await waitFor(
    async () => {
      await p.db.pool.query(
        `select graphile_worker.add_job('sweep', job_key => 'sweep'),
                graphile_worker.add_job('reconcile_in_doubt', job_key => 'reconcile')`,
      );
      const counts = await statusCounts(p.db, campaignId);
      const { rows } = await p.db.pool.query<{ status: string }>(
        'select status from campaigns where campaign_id = $1',
        [campaignId],
      );
      return counts.sent === 40 && rows[0]?.status === 'done';
    },
    { what: 'every recipient sent and the campaign done', timeoutMs: 180_000, intervalMs: 2_000 },
  ).catch(async (error: Error) => {
    t.log(await explainStall(p.db, campaignId));
    throw error;
  });
  await sesIdle(p.ses);
  await waitForEventsApplied(p.db);

  const perAddress = deliveriesByAddress(p.ses);
  t.is(perAddress.size, 40);
  t.deepEqual(
    [...perAddress].filter(([, n]) => n !== 1),
    [],
    'every address got exactly one email at the endpoint',
  );
  t.is(p.ses.sent().length, 40);
  t.true(heldAccepted >= 14, 'SES accepted two of the held calls after the kill');
  await checkEndState(t, { db: p.db, ses: p.ses, campaignId, reconciled: true });
  t.deepEqual(await statusCounts(p.db, campaignId), { sent: 40 });

  const { rows: actions } = await p.db.pool.query<{
    action: string;
    automatic: boolean;
    last_error: string;
  }>(
    `select action, (details->>'automatic')::boolean as automatic, details->>'last_error' as last_error
       from operator_actions order by action_id`,
  );
  t.is(actions.length, 2, 'the two calls SES refused were resent, and nothing else');
  for (const action of actions) {
    t.like(action, { action: 'auto_resend', automatic: true }, 'no operator acted');
    t.regex(action.last_error, /in doubt|lease|claim/i);
  }
  t.is((await jobHealth(p.db)).failed, 0, 'no job failed for good');
});
