// `mailer serve` as a process: a request whose database work cannot finish (a lock held by someone
// else) gets 503 after HTTP_DB_TIMEOUT_MS, so SNS retries, instead of hanging until SNS gives up.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { LOCAL_TOPIC_ARN } from '../../src/ses-local/event-publisher.ts';
import { LOCAL_SIGNING_CERT_URL, loadLocalSigningKeys } from '../../src/sns/local-signing.ts';
import { signSnsEnvelope } from '../../src/sns/sign.ts';
import { startServeCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';

test('a webhook request blocked in the database gets 503 after HTTP_DB_TIMEOUT_MS, then 200', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const { url } = await startServeCli(t, {
    DATABASE_URL: db.url,
    SNS_TOPIC_ARNS: LOCAL_TOPIC_ARN,
    SNS_TRUST_LOCAL_CERT: 'true',
    HTTP_DB_TIMEOUT_MS: '700',
  });
  const { privateKeyPem } = await loadLocalSigningKeys();
  const body = JSON.stringify(
    signSnsEnvelope(
      {
        Type: 'Notification',
        MessageId: randomUUID(),
        TopicArn: LOCAL_TOPIC_ARN,
        Message: JSON.stringify({ eventType: 'Delivery', mail: { messageId: 'm-1' } }),
        Timestamp: new Date().toISOString(),
      },
      { privateKeyPem, signingCertUrl: LOCAL_SIGNING_CERT_URL, version: '2' },
    ),
  );
  const post = () => fetch(`${url}/webhooks/ses`, { method: 'POST', body });

  // Someone holds an exclusive lock on sns_messages until the request is answered: only the
  // statement timeout can answer it (without one, this test would hang until ava's timeout).
  const blocker = await db.pool.connect();
  await blocker.query('begin');
  await blocker.query('lock table public.sns_messages in access exclusive mode');
  const blocked = await post();
  await blocker.query('rollback');
  blocker.release();
  t.is(blocked.status, 503);
  t.is((await db.pool.query('select 1 from sns_messages')).rowCount, 0, 'nothing half-stored');

  const retried = await post();
  t.is(retried.status, 200, 'the retry is stored');
  t.is((await db.pool.query('select 1 from sns_messages')).rowCount, 1);
});
