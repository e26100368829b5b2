import test from 'ava';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createCampaign, createCustomer, createTemplate } from '../helpers/factories.ts';
import { taskRunner } from './run-task.ts';

let db: TestDatabase;
let campaignId: string;
test.before(async () => {
  db = await createTestDatabase();
  const template = await createTemplate(db.pool);
  campaignId = (
    await createCampaign(db.pool, { template_id: template.template_id, status: 'done' })
  ).campaign_id;
});
test.after.always(async () => {
  await db?.drop();
});

async function inDoubt(email: string, attemptedAgo: string) {
  const customer = await createCustomer(db.pool, { email });
  await db.pool.query(
    `insert into campaign_recipients (campaign_id, customer_id, email, recipient_status, attempt_count, last_attempt_at)
     values ($1, $2, $3, 'in_doubt', 1, now() - $4::interval)`,
    [campaignId, customer.customer_id, email, attemptedAgo],
  );
  return customer.customer_id;
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
  const named = await inDoubt('ada@example.com', '2 hours');
  await event('delivery', {
    email: 'ada@example.com',
    matched: named,
    ago: '1 hour',
    messageId: 'm-ada',
  });
  // Only an unmatched event for the address after the attempt (an identity notification, no tags).
  const unmatched = await inDoubt('bea@example.com', '2 hours');
  await event('send', { email: 'bea@example.com', ago: '119 minutes', messageId: 'm-bea' });
  // An unmatched complaint, minutes after the delivery of a message SES accepted just after the
  // attempt (mail.timestamp): the strongest evidence wins.
  const complained = await inDoubt('cy@example.com', '2 hours');
  const mail = { timestamp: new Date(Date.now() - 119 * 60_000).toISOString() };
  await event('delivery', { email: 'cy@example.com', ago: '110 minutes', payload: { mail } });
  await event('complaint', { email: 'cy@example.com', ago: '100 minutes', payload: { mail } });
  // Events from before the attempt say nothing about it.
  const stale = await inDoubt('dot@example.com', '8 hours');
  await event('delivery', { email: 'dot@example.com', ago: '3 days' });
  // Recent and without evidence: not reported yet.
  const fresh = await inDoubt('eve@example.com', '10 minutes');

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
