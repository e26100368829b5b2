// send_recipient run in this process (test/pipeline runs it in real workers against local SES).
import test from 'ava';
import { createTestDatabase } from '../helpers/db.ts';
import { createCampaign, createRecipient, createTemplate } from '../helpers/factories.ts';
import { taskRunner } from '../helpers/tasks.ts';

test('a job whose recipient another job is sending ends at once, without a retry or a send', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const template = await createTemplate(db.pool);
  const { campaign_id } = await createCampaign(db.pool, {
    template_id: template.template_id,
    status: 'sending',
  });
  // A claim taken a moment ago by another job (a duplicate, or a worker killed mid-send).
  const customer = await createRecipient(db.pool, campaign_id, 'sending');
  // This runner's SES endpoint refuses every connection: a send attempt would fail the job.
  const task = await taskRunner('send_recipient', db.pool, { SEND_CLAIM_LEASE_SECONDS: '120' });
  await task.run({ campaign_id, customer_id: customer.customer_id });

  const { rows } = await db.pool.query(
    'select recipient_status, attempt_count from campaign_recipients where customer_id = $1',
    [customer.customer_id],
  );
  t.deepEqual(rows, [{ recipient_status: 'sending', attempt_count: 1 }], 'the claim is untouched');
  t.true(
    task.logs.some((l) => String(l.msg).includes('another job holds its claim')),
    JSON.stringify(task.logs),
  );
});
