// A new suppression stops the address's pending recipients (tg_suppression_list__suppress_pending,
// which finds them through the customer with that address), and the claim at send time stops the
// ones it cannot find: recipients generated with an address their customer no longer has.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { databaseForFile } from '../helpers/db.ts';
import {
  createCustomer,
  createRecipient,
  createSendingCampaign,
  recipientRow,
} from '../helpers/factories.ts';

const db = databaseForFile();

const address = (what: string) => `${what}-${randomUUID().slice(0, 8)}@example.com`;

async function suppress(email: string): Promise<void> {
  await db.pool.query(
    `insert into suppression_list (email, reason, source) values ($1, 'manual', 'ops')`,
    [email],
  );
}

test('a suppression stops the address pending recipients in every campaign, and only those', async (t) => {
  const first = await createSendingCampaign(db.pool);
  const second = await createSendingCampaign(db.pool);
  const customer = await createCustomer(db.pool, { email: address('stopped') });
  const pending = [
    await createRecipient(db.pool, first, 'pending', { customer }),
    await createRecipient(db.pool, second, 'pending', { customer }),
  ];
  const sent = await createRecipient(db.pool, await createSendingCampaign(db.pool), 'sent', {
    customer,
  });
  const other = await createRecipient(db.pool, first, 'pending', { email: address('other') });

  await suppress(customer.email);

  for (const r of pending)
    t.like(await recipientRow(db.pool, r), {
      recipient_status: 'suppressed',
      last_error: 'suppressed: manual',
    });
  t.like(await recipientRow(db.pool, sent), { recipient_status: 'sent' });
  t.like(await recipientRow(db.pool, other), { recipient_status: 'pending' });
});

test('a recipient whose customer changed address since is suppressed by its claim', async (t) => {
  const campaign = await createSendingCampaign(db.pool);
  const old = address('moved');
  const recipient = await createRecipient(db.pool, campaign, 'pending', { email: old });
  await db.pool.query('update customers set email = $1 where customer_id = $2', [
    address('new'),
    recipient.customer_id,
  ]);

  await suppress(old);
  t.like(
    await recipientRow(db.pool, recipient),
    { recipient_status: 'pending' },
    'not found through its customer',
  );

  const { rows } = await db.pool.query<{ outcome: string }>(
    `select (claim_recipient($1, $2, interval '2 minutes')).outcome`,
    [campaign, recipient.customer_id],
  );
  t.is(rows[0]?.outcome, 'suppressed');
  t.like(await recipientRow(db.pool, recipient), {
    recipient_status: 'suppressed',
    last_error: 'suppressed at send time',
  });
});
