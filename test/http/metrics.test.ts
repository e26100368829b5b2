import test from 'ava';
import { createTestDatabase } from '../helpers/db.ts';
import { createCampaign, createCustomer, createTemplate } from '../helpers/factories.ts';
import { startServer } from './helpers.ts';

test('GET /metrics reports queue depth, in-doubt recipients and campaign progress from the database', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const template = await createTemplate(db.pool);
  const campaign = await createCampaign(db.pool, { template_id: template.template_id });
  for (const status of ['pending', 'pending', 'in_doubt']) {
    const customer = await createCustomer(db.pool);
    await db.pool.query(
      `insert into campaign_recipients (campaign_id, customer_id, email, recipient_status, last_attempt_at)
       values ($1, $2, $3, $4, now())`,
      [campaign.campaign_id, customer.customer_id, customer.email, status],
    );
  }
  await db.pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [
    campaign.campaign_id,
  ]);
  const server = await startServer(db.pool);
  t.teardown(() => server.close());

  const response = await fetch(`${server.url}/metrics`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /text\/plain/);
  const body = await response.text();
  t.regex(body, /mailer_queue_depth\{task="send_recipient"\} 2/);
  t.regex(body, /mailer_recipients_in_doubt 1/);
  t.regex(
    body,
    new RegExp(
      `mailer_campaign_recipients\\{campaign_id="${campaign.campaign_id}",campaign_status="queued",status="pending"\\} 2`,
    ),
  );
  t.regex(body, /# TYPE mailer_sends_total counter/);
  t.is((await fetch(`${server.url}/metrics`, { method: 'POST' })).status, 405);
});
