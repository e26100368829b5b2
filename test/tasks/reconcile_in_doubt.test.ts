import type { EventType } from '@aws-sdk/client-sesv2';
import test, { type ExecutionContext } from 'ava';
import { REQUIRED_EVENT_TYPES } from '../../src/ses/preflight-events.ts';
import { configureLocalSes } from '../../src/ses-local/setup.ts';
import { createTestDatabase, databaseForFile } from '../helpers/db.ts';
import { createRecipient, createSendingCampaign } from '../helpers/factories.ts';
import { taskRunner } from '../helpers/tasks.ts';
import { startForTest } from '../ses-local/helpers.ts';

const db = databaseForFile();
let campaignId: string;
test.before(async () => {
  campaignId = await createSendingCampaign(db.pool, 'done');
});

async function inDoubt(email: string, attemptAt: Date) {
  return (await createRecipient(db.pool, campaignId, 'in_doubt', { email, attemptAt })).customer_id;
}

async function event(
  type: string,
  fields: { email: string; matched?: string; ago: string; messageId?: string; payload?: object },
) {
  await db.pool.query(
    `insert into email_events_op (event_type, email, campaign_id, customer_id, ses_message_id, event_time, payload)
     values ($1, $2, $3, $4, $5, now() - $6::interval, $7)`,
    [
      type,
      fields.email,
      fields.matched ? campaignId : null,
      fields.matched ?? null,
      fields.messageId ?? null,
      fields.ago,
      JSON.stringify(fields.payload ?? {}),
    ],
  );
}

async function status(customerId: string) {
  const { rows } = await db.pool.query<{ recipient_status: string; ses_message_id: string | null }>(
    'select recipient_status, ses_message_id from campaign_recipients where customer_id = $1',
    [customerId],
  );
  return rows[0];
}

test('settles in-doubt recipients from SES events and reports the rest', async (t) => {
  // Named by an event (apply_ses_event matched its tags while it was still sending).
  const named = await inDoubt('ada@example.com', ago(120));
  await event('delivery', {
    email: 'ada@example.com',
    matched: named,
    ago: '1 hour',
    messageId: 'm-ada',
  });
  // Only an unmatched event for the address after the attempt (an identity notification, no tags).
  const unmatched = await inDoubt('bea@example.com', ago(120));
  await event('send', { email: 'bea@example.com', ago: '119 minutes', messageId: 'm-bea' });
  // An unmatched complaint, minutes after the delivery of a message SES accepted just after the
  // attempt (mail.timestamp): the strongest evidence wins.
  const complained = await inDoubt('cy@example.com', ago(120));
  const mail = { timestamp: new Date(Date.now() - 119 * 60_000).toISOString() };
  await event('delivery', { email: 'cy@example.com', ago: '110 minutes', payload: { mail } });
  await event('complaint', { email: 'cy@example.com', ago: '100 minutes', payload: { mail } });
  // Events from before the attempt say nothing about it.
  const stale = await inDoubt('dot@example.com', ago(480));
  await event('delivery', { email: 'dot@example.com', ago: '3 days' });
  // Recent and without evidence: not reported yet.
  const fresh = await inDoubt('eve@example.com', ago(10));

  const task = await taskRunner('reconcile_in_doubt', db.pool, { IN_DOUBT_ALERT_AFTER_HOURS: '6' });
  await task.run({ _cron: { ts: new Date().toISOString(), backfilled: false } });

  t.deepEqual(await status(named), { recipient_status: 'sent', ses_message_id: 'm-ada' });
  t.deepEqual(await status(unmatched), { recipient_status: 'sent', ses_message_id: 'm-bea' });
  t.like(await status(complained), { recipient_status: 'complained' });
  t.like(await status(stale), { recipient_status: 'in_doubt' });
  t.like(await status(fresh), { recipient_status: 'in_doubt' });

  const warning = task.logs.find((l) => l.level === 40);
  t.like(warning, { in_doubt: 1, campaigns: { [campaignId]: 1 } });
  t.regex(String(warning?.msg), /1 recipient\(s\) in doubt for more than 6h.*mailer doubt list/);
  t.false(JSON.stringify(task.logs).includes('@example.com'), 'no addresses in the logs');

  const before = task.logs.length;
  await task.run();
  t.false(
    task.logs.slice(before).some((l) => /reconciled/.test(String(l.msg))),
    'a second run changes nothing',
  );
});

// IN_DOUBT_RESEND_AFTER_MINUTES. Each test has a database of its own: the policy looks at every
// in-doubt recipient there is.
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:mailer-events';

async function resendPolicy(
  t: ExecutionContext,
  options: { afterMinutes: string; published?: readonly EventType[] },
) {
  const own = await createTestDatabase();
  t.teardown(() => own.drop());
  const { client } = await startForTest(t);
  await configureLocalSes(client, {
    from: 'Mailer <mailer@example.com>',
    configurationSet: 'mailer',
    topicArn: TOPIC,
    eventTypes: options.published ?? REQUIRED_EVENT_TYPES,
  });
  const task = await taskRunner('reconcile_in_doubt', own.pool, {
    IN_DOUBT_RESEND_AFTER_MINUTES: options.afterMinutes,
    SES_CONFIGURATION_SET: 'mailer',
    SNS_TOPIC_ARNS: TOPIC,
  });
  task.deps.ses = client;
  const campaign = await createSendingCampaign(own.pool, 'done');
  return {
    db: own,
    task,
    campaign,
    inDoubt: (attemptAt: Date) =>
      createRecipient(own.pool, campaign, 'in_doubt', { attemptAt: attemptAt.toISOString() }),
    /** A Send event of some other message that SES accepted at `acceptedAt` reached mailer. */
    sendEventReceived: (acceptedAt: Date) =>
      own.pool.query(
        `insert into email_events_op (event_type, email, event_time, payload)
         values ('send', 'someone-else@example.com', $1, '{}')`,
        [acceptedAt],
      ),
    /** The customer's status in the policy's campaign. */
    status: async (customerId: string) =>
      (
        await own.pool.query<{ recipient_status: string }>(
          'select recipient_status from campaign_recipients where campaign_id = $1 and customer_id = $2',
          [campaign, customerId],
        )
      ).rows[0]?.recipient_status,
    actions: async () =>
      (
        await own.pool.query<{
          action: string;
          customer_id: string;
          note: string;
          details: Record<string, unknown>;
        }>('select action, customer_id, note, details from operator_actions order by action_id')
      ).rows,
  };
}

const ago = (minutes: number) => new Date(Date.now() - minutes * 60_000);

test('with IN_DOUBT_RESEND_AFTER_MINUTES, a recipient with no SES event is queued again, once, as an automatic decision', async (t) => {
  const p = await resendPolicy(t, { afterMinutes: '10' });
  const unsent = await p.inDoubt(ago(30));
  const recent = await p.inDoubt(ago(5));
  // An identity notification for the address, sent inside the attempt's window, whose message
  // id a recipient of another campaign holds: it may still be this recipient's message.
  const maybe = await p.inDoubt(ago(30));
  const other = await createSendingCampaign(p.db.pool, 'done');
  await createRecipient(p.db.pool, other, 'sent', {
    customer: maybe,
    messageId: 'ses-theirs',
    attemptAt: ago(30),
  });
  await p.db.pool.query(
    `insert into email_events_op (event_type, email, ses_message_id, event_time, payload)
     values ('send', $1, 'ses-theirs', now() - interval '30 minutes', '{}')`,
    [maybe.email],
  );
  await p.sendEventReceived(ago(20));

  await p.task.run();
  t.is(await p.status(unsent.customer_id), 'pending');
  t.is(await p.status(recent.customer_id), 'in_doubt');
  t.is(await p.status(maybe.customer_id), 'in_doubt');
  const { rows: campaign } = await p.db.pool.query(
    `select status, (select count(*)::int from graphile_worker.jobs
                      where task_identifier = 'send_recipient') as jobs
       from campaigns where campaign_id = $1`,
    [p.campaign],
  );
  t.deepEqual(campaign[0], { status: 'queued', jobs: 1 }, 'the done campaign is queued to send it');
  const actions = await p.actions();
  t.is(actions.length, 1);
  t.like(actions[0], {
    action: 'auto_resend',
    customer_id: unsent.customer_id,
    details: { automatic: true, policy: 'IN_DOUBT_RESEND_AFTER_MINUTES', after_seconds: 600 },
  });
  t.regex(actions[0]?.note ?? '', /^automatic: no SES Send event/);
  t.true(p.task.logs.some((l) => l.level === 40 && /resent automatically/.test(String(l.msg))));

  // Its new attempt ends in doubt too: it is the operator's now.
  await p.db.pool.query(
    `update campaign_recipients set recipient_status = 'in_doubt', last_attempt_at = now() - interval '30 minutes'
      where customer_id = $1`,
    [unsent.customer_id],
  );
  await p.sendEventReceived(ago(20));
  await p.task.run();
  t.is(await p.status(unsent.customer_id), 'in_doubt');
  t.is((await p.actions()).length, 1, 'resent once, never twice');
});

test('the resend policy does nothing unless the configuration set publishes Send events', async (t) => {
  const p = await resendPolicy(t, {
    afterMinutes: '10',
    published: REQUIRED_EVENT_TYPES.filter((type) => type !== 'SEND'),
  });
  const unsent = await p.inDoubt(ago(30));
  await p.sendEventReceived(ago(20));
  await p.task.run();
  t.is(await p.status(unsent.customer_id), 'in_doubt');
  t.deepEqual(await p.actions(), []);
  const warning = p.task.logs.find((l) => l.level === 40);
  t.regex(String(warning?.msg), /does not publish Send events/);
  t.regex(String(warning?.reason), /publishes no SEND events/);
});

test('the resend policy waits until Send events reach mailer and the received ones are applied', async (t) => {
  const p = await resendPolicy(t, { afterMinutes: '0.05' });
  // An event received in time (3 s after the attempt), still waiting for process_ses_event.
  await p.db.pool.query(
    `select graphile_worker.add_job('process_ses_event', '{}'::json, job_key => 'held-event')`,
  );
  const unsent = await p.inDoubt(new Date(Date.now() - 1_000));
  await new Promise((resolve) => setTimeout(resolve, 3_000));

  // No Send event of any message accepted since the attempt has reached mailer.
  await p.task.run();
  t.is(await p.status(unsent.customer_id), 'in_doubt');
  t.true(p.task.logs.some((l) => /no Send event for any message sent since/.test(String(l.msg))));

  await p.sendEventReceived(new Date());
  await p.task.run();
  t.is(await p.status(unsent.customer_id), 'in_doubt');
  t.true(p.task.logs.some((l) => /still waiting to be applied/.test(String(l.msg))));

  await p.db.pool.query(`select graphile_worker.remove_job('held-event')`);
  await p.task.run();
  t.is(await p.status(unsent.customer_id), 'pending');
  t.like(await p.actions(), [{ action: 'auto_resend', customer_id: unsent.customer_id }]);
});
