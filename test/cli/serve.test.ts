// `mailer serve` as a process: a request whose database work cannot finish (a lock held by someone
// else) gets 503 after HTTP_DB_TIMEOUT_MS, so SNS retries, instead of hanging until SNS gives up.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { freePort } from '../../src/free-port.ts';
import { LOCAL_TOPIC_ARN } from '../../src/ses-local/event-publisher.ts';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { LOCAL_SIGNING_CERT_URL, loadLocalSigningKeys } from '../../src/sns/local-signing.ts';
import { signSnsEnvelope } from '../../src/sns/sign.ts';
import { loginAs } from '../console/pages-helpers.ts';
import { startServeCli, waitFor } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createTemplate } from '../helpers/factories.ts';

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

// The console's test send and SES previews need SES: `mailer serve` connects to it beside its
// listeners when the console is on, as `mailer start` does through its worker.
test('with the console on, mailer serve reaches SES for a test send', async (t) => {
  const db = await createTestDatabase();
  const ses = await startLocalSes();
  t.teardown(async () => {
    await ses.close();
    await db.drop();
  });
  await createTemplate(db.pool, { week_of_month: 1 });
  const consolePort = await freePort();
  const { serve } = await startServeCli(t, {
    DATABASE_URL: db.url,
    SES_ENDPOINT: ses.url,
    CONSOLE_PORT: String(consolePort),
    MAIL_FROM: 'news@example.com',
    PUBLIC_URL: 'https://mail.example.com',
  });
  await waitFor(async () => /SES: local endpoint/.test(serve.output()), { what: 'SES connected' });
  const operator = await loginAs(db.pool, 'operator');
  const form = new URLSearchParams({
    week: '1',
    to: 'lead@example.test',
    _csrf: operator.csrfToken,
  });
  const response = await fetch(`http://127.0.0.1:${consolePort}/templates/test-send`, {
    method: 'POST',
    headers: { cookie: operator.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    redirect: 'manual',
  });
  t.is(response.status, 303, await response.text());
  t.deepEqual(
    ses.sent().map((m) => m.to),
    [['lead@example.test']],
  );
});
