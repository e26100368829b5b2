import {
  GetAccountCommand,
  type SESv2Client,
  type SESv2ServiceException,
  SendEmailCommand,
} from '@aws-sdk/client-sesv2';
import test from 'ava';
import { UNLIMITED_MAX_24_HOUR_SEND, UNLIMITED_MAX_SEND_RATE } from '../../src/ses-local/server.ts';
import { createSesClient, manualClock, simpleEmail, startForTest } from './helpers.ts';

const send = (client: SESv2Client) => client.send(new SendEmailCommand(simpleEmail()));

test('answers 429 beyond the sending rate within one second and accepts again once it has passed', async (t) => {
  const clock = manualClock();
  const { ses, client } = await startForTest(t, { maxSendRate: 3, clock: clock.now });
  await send(client);
  clock.advance(400);
  await send(client);
  await send(client);
  clock.advance(599);
  const error = await t.throwsAsync<SESv2ServiceException>(send(client), {
    name: 'TooManyRequestsException',
    message: 'Maximum sending rate exceeded.',
  });
  t.is(error?.$metadata.httpStatusCode, 429);
  t.is(error?.$fault, 'client');
  clock.advance(1);
  await send(client);
  await t.throwsAsync(send(client), { name: 'TooManyRequestsException' });
  t.is(ses.sent().length, 4);
  t.is(ses.sendCallCount(), 6);
});

test('limits the rate across all clients together, counting only accepted sends', async (t) => {
  const { ses, client } = await startForTest(t, { maxSendRate: 10, clock: manualClock().now });
  const other = createSesClient(ses.url);
  t.teardown(() => other.destroy());
  const results = await Promise.allSettled(
    Array.from({ length: 24 }, (_, i) => send(i % 2 === 0 ? client : other)),
  );
  t.is(results.filter((result) => result.status === 'fulfilled').length, 10);
  t.is(ses.sent().length, 10);
});

test('measures the window with the wall clock by default', async (t) => {
  const { client } = await startForTest(t, { maxSendRate: 2 });
  await send(client);
  await send(client);
  await t.throwsAsync(send(client), { name: 'TooManyRequestsException' });
  await new Promise((resolve) => setTimeout(resolve, 1050));
  await t.notThrowsAsync(send(client));
});

test('changes the rate at run time and lifts it with undefined', async (t) => {
  const { ses, client } = await startForTest(t, { clock: manualClock().now });
  ses.setMaxSendRate(1);
  await send(client);
  await t.throwsAsync(send(client), { name: 'TooManyRequestsException' });
  ses.setMaxSendRate(undefined);
  await send(client);
  t.is(ses.sent().length, 2);
});

test('refuses sends beyond the 24-hour quota with LimitExceededException until the window moves', async (t) => {
  const clock = manualClock();
  const { client } = await startForTest(t, { max24HourSend: 2, clock: clock.now });
  await send(client);
  clock.advance(60_000);
  await send(client);
  await t.throwsAsync(send(client), {
    name: 'LimitExceededException',
    message: 'Daily message quota exceeded.',
  });
  clock.advance(24 * 60 * 60 * 1000 - 60_000);
  await send(client);
});

test('reports the configured quota and the sends of the last 24 hours in GetAccount', async (t) => {
  const { client } = await startForTest(t, { maxSendRate: 14, max24HourSend: 50_000 });
  await send(client);
  await send(client);
  const account = await client.send(new GetAccountCommand({}));
  t.deepEqual(account.SendQuota, { Max24HourSend: 50_000, MaxSendRate: 14, SentLast24Hours: 2 });
  t.like(account, {
    SendingEnabled: true,
    ProductionAccessEnabled: true,
    EnforcementStatus: 'HEALTHY',
  });
});

test('reports large fixed limits in GetAccount when none are configured', async (t) => {
  const { client } = await startForTest(t);
  const { SendQuota } = await client.send(new GetAccountCommand({}));
  t.deepEqual(SendQuota, {
    Max24HourSend: UNLIMITED_MAX_24_HOUR_SEND,
    MaxSendRate: UNLIMITED_MAX_SEND_RATE,
    SentLast24Hours: 0,
  });
});
