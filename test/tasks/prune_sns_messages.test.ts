import test from 'ava';
import { createTestDatabase } from '../helpers/db.ts';
import { taskRunner } from '../helpers/tasks.ts';

test('prune_sns_messages forgets message ids older than a week and keeps recent ones', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  await db.pool.query(
    `insert into sns_messages (sns_message_id, topic_arn, received_at) values
       ('old', 'arn:aws:sns:us-east-1:1:t', now() - interval '8 days'),
       ('recent', 'arn:aws:sns:us-east-1:1:t', now() - interval '6 days')`,
  );
  const task = await taskRunner('prune_sns_messages', db.pool);
  await task.run({});
  const { rows } = await db.pool.query('select sns_message_id from sns_messages');
  t.deepEqual(
    rows.map((r) => r.sns_message_id),
    ['recent'],
  );
});
