// `mailer ses-local --events-webhook URL` on its own, beside `mailer serve`: a message to the
// mailbox simulator's bounce address comes back to the webhook as SES's signed Send and Bounce
// notifications, which the webhook verifies and queues for process_ses_event.
import { SendEmailCommand } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { LOCAL_TOPIC_ARN } from '../../src/ses-local/event-publisher.ts';
import { runCli, startCli, startServeCli, waitFor } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createSesClient } from './helpers.ts';

test('ses-local --events-webhook publishes a bounce that mailer serve takes', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const { url: serveUrl } = await startServeCli(t, {
    DATABASE_URL: db.url,
    SNS_TOPIC_ARNS: LOCAL_TOPIC_ARN,
    SNS_TRUST_LOCAL_CERT: 'true',
    LOG_LEVEL: 'info',
  });

  const ses = startCli(['ses-local', '--events-webhook', `${serveUrl}/webhooks/ses`], {
    LOCAL_SES_PORT: '0',
    LOG_LEVEL: 'info',
  });
  t.teardown(async () => {
    ses.child.kill('SIGKILL');
    await ses.exited;
  });
  const listening = await waitFor(
    async () => /\{[^\n]*"local SES listening"[^\n]*\}/.exec(ses.output())?.[0],
    { what: 'mailer ses-local listening' },
  );
  const line = JSON.parse(listening) as { url: string; eventsWebhook: string; topicArn: string };
  t.is(line.eventsWebhook, `${serveUrl}/webhooks/ses`);
  t.is(line.topicArn, LOCAL_TOPIC_ARN, 'the ARN to put in the webhook’s SNS_TOPIC_ARNS');

  const client = createSesClient(line.url);
  t.teardown(() => client.destroy());
  const sent = await client.send(
    new SendEmailCommand({
      FromEmailAddress: 'news@example.com',
      Destination: { ToAddresses: ['bounce@simulator.amazonses.com'] },
      Content: { Simple: { Subject: { Data: 'hi' }, Body: { Text: { Data: 'hi' } } } },
    }),
  );

  // What the webhook stored: verified notifications, each queued once for process_ses_event (the
  // payload is not in graphile-worker's public jobs view).
  const events = await waitFor(
    async () => {
      const { rows } = await db.pool.query<{ type: string; message_id: string; to: string }>(
        `select m ->> 'eventType' as type, m -> 'mail' ->> 'messageId' as message_id,
                m -> 'bounce' -> 'bouncedRecipients' -> 0 ->> 'emailAddress' as to
           from graphile_worker._private_jobs j
           join graphile_worker._private_tasks k on k.id = j.task_id, lateral (select (j.payload ->> 'Message')::json as m) x
          where k.identifier = 'process_ses_event' order by j.id`,
      );
      return rows.length >= 2 ? rows : undefined;
    },
    { what: 'the Send and Bounce notifications at the webhook' },
  );
  t.deepEqual(events, [
    { type: 'Send', message_id: sent.MessageId, to: null },
    { type: 'Bounce', message_id: sent.MessageId, to: 'bounce@simulator.amazonses.com' },
  ]);
  const { rows } = await db.pool.query('select 1 from sns_messages');
  t.is(rows.length, 2, 'both verified and recorded once');
});

test('ses-local refuses an events webhook that is not an http(s) URL', async (t) => {
  const result = await runCli(['ses-local', '--events-webhook', 'ftp://example.com/x'], {
    LOCAL_SES_PORT: '0',
  });
  t.is(result.code, 2);
  t.regex(result.stderr, /expected an http\(s\) URL, got ftp:\/\/example\.com\/x/);
});
