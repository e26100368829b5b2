import {
  GetAccountCommand,
  type SESv2Client,
  type SESv2ServiceException,
  SendEmailCommand,
} from '@aws-sdk/client-sesv2';
import test from 'ava';
import { createSesClient, simpleEmail, startForTest } from './helpers.ts';

const send = (client: SESv2Client, to?: string[]) =>
  client.send(new SendEmailCommand(simpleEmail(to)));

test('rejects a message to a listed address, case-insensitively, with MessageRejected', async (t) => {
  const { ses, client } = await startForTest(t, {
    faults: { rejectAddresses: ['Bounce@Example.com'] },
  });
  const error = await t.throwsAsync<SESv2ServiceException>(
    send(client, ['ok@example.com', 'bounce@example.COM']),
    {
      name: 'MessageRejected',
    },
  );
  t.is(error?.$fault, 'client');
  t.is(error?.$metadata.httpStatusCode, 400);
  await send(client, ['ok@example.com']);
  t.is(ses.sent().length, 1);
});

test('answers SendingPausedException and AccountSuspendedException while those faults are set', async (t) => {
  const { ses, client } = await startForTest(t, { faults: { sendingPaused: true } });
  await t.throwsAsync(send(client), { name: 'SendingPausedException' });
  t.false((await client.send(new GetAccountCommand({}))).SendingEnabled);
  ses.setFaults({ accountSuspended: true });
  await t.throwsAsync(send(client), { name: 'AccountSuspendedException' });
  t.is((await client.send(new GetAccountCommand({}))).EnforcementStatus, 'SHUTDOWN');
  ses.setFaults({});
  await send(client);
  t.is(ses.sent().length, 1);
  t.is(ses.sendCallCount(), 3);
});

test('fails exactly the next N sends with the injected status, then accepts again', async (t) => {
  const { ses, client } = await startForTest(t, {
    faults: { failNext: { status: 429, count: 2 } },
  });
  await t.throwsAsync(send(client), { name: 'TooManyRequestsException' });
  await t.throwsAsync(send(client), { name: 'TooManyRequestsException' });
  await send(client);
  t.is(ses.sent().length, 1);
});

test('makes injected 5xx failures server faults the SDK sees as InternalFailure and ServiceUnavailable', async (t) => {
  const { ses, client } = await startForTest(t, {
    faults: { failNext: { status: 500, count: 1 } },
  });
  const internal = await t.throwsAsync<SESv2ServiceException>(send(client), {
    name: 'InternalFailure',
  });
  t.is(internal?.$fault, 'server');
  t.is(internal?.$metadata.httpStatusCode, 500);
  ses.setFaults({ failNext: { status: 503, count: 1 } });
  const unavailable = await t.throwsAsync<SESv2ServiceException>(send(client), {
    name: 'ServiceUnavailable',
  });
  t.is(unavailable?.$fault, 'server');
  t.is(unavailable?.$metadata.httpStatusCode, 503);
  t.is(ses.sent().length, 0);
});

test('fails the fraction of sends the error rate asks for', async (t) => {
  const draws = [0.1, 0.9, 0.2, 0.8];
  let next = 0;
  const random = () => draws[next++ % draws.length] ?? 0;
  const { ses, client } = await startForTest(t, {
    random,
    faults: { errorRate: { status: 503, fraction: 0.5 } },
  });
  const results = await Promise.allSettled([0, 1, 2, 3].map(() => send(client)));
  t.is(results.filter((result) => result.status === 'rejected').length, 2);
  t.is(ses.sent().length, 2);
  t.deepEqual(
    (await fetch(`${ses.url}/_local/stats`).then((response) => response.json())) as unknown,
    { accepted: 2, calls: 4, rejected: 2 },
  );
});

test('delays answers by the configured latency', async (t) => {
  const { client } = await startForTest(t, { faults: { latencyMs: 150 } });
  const started = performance.now();
  await send(client);
  t.true(performance.now() - started >= 140);
});

test('holds the response long enough for a client timeout, and close does not wait for it', async (t) => {
  const { ses } = await startForTest(t, { faults: { hangMs: 60_000 } });
  const impatient = createSesClient(ses.url, {
    requestHandler: { requestTimeout: 100, throwOnRequestTimeout: true },
  });
  t.teardown(() => impatient.destroy());
  await t.throwsAsync(impatient.send(new SendEmailCommand(simpleEmail())), {
    name: 'TimeoutError',
  });
  const hanging = fetch(`${ses.url}/v2/email/account`).catch((error: unknown) => error);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const closed = ses.close().then(() => 'closed');
  t.is(
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000, 'still open'))]),
    'closed',
  );
  t.true((await hanging) instanceof Error);
});
