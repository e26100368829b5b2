import { SendEmailCommand } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { simpleEmail, startForTest } from './helpers.ts';

test('records 2,000 concurrent SDK sends, each under its own id and each reported once to onSend', async (t) => {
  const notified: string[] = [];
  const { ses, client } = await startForTest(t, {
    onSend: (message) => notified.push(message.messageId),
  });
  const replies = await Promise.all(
    Array.from({ length: 2000 }, (_, i) =>
      client.send(new SendEmailCommand(simpleEmail([`r${i}@example.com`]))),
    ),
  );
  const returned = replies.map((reply) => reply.MessageId ?? '');
  const recorded = ses.sent();
  t.is(recorded.length, 2000);
  t.is(new Set(returned).size, 2000);
  // Ava compares sets in insertion order, and arrival order differs from call order.
  t.deepEqual(recorded.map((message) => message.messageId).sort(), returned.toSorted());
  t.deepEqual(
    notified,
    recorded.map((message) => message.messageId),
  );
  t.is(new Set(recorded.map((message) => message.to[0])).size, 2000);
});
