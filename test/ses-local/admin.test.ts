import { SendEmailCommand } from '@aws-sdk/client-sesv2';
import test from 'ava';
import type { SentMessage } from '../../src/ses-local/server.ts';
import { rawRequest, simpleEmail, startForTest } from './helpers.ts';

test('lists sent messages over HTTP, optionally only those to one address in any recipient field', async (t) => {
  const { ses, client } = await startForTest(t);
  await client.send(new SendEmailCommand(simpleEmail(['ann@example.com'])));
  await client.send(
    new SendEmailCommand({
      ...simpleEmail(['bob@example.com']),
      Destination: { BccAddresses: ['Ann <ANN@example.com>'] },
    }),
  );
  await client.send(new SendEmailCommand(simpleEmail(['carl@example.com'])));
  const all = await rawRequest(ses.url, 'GET', '/_local/messages');
  t.is((all.json as SentMessage[]).length, 3);
  const toAnn = await rawRequest(
    ses.url,
    'GET',
    `/_local/messages?to=${encodeURIComponent('ann@EXAMPLE.com')}`,
  );
  t.deepEqual(
    (toAnn.json as SentMessage[]).map((message) => message.messageId),
    ses
      .sent()
      .slice(0, 2)
      .map((message) => message.messageId),
  );
});

test('reports stats and clears messages and counters over HTTP', async (t) => {
  const { ses, client } = await startForTest(t, {
    faults: { rejectAddresses: ['no@example.com'] },
  });
  await client.send(new SendEmailCommand(simpleEmail()));
  await t.throwsAsync(client.send(new SendEmailCommand(simpleEmail(['no@example.com']))));
  t.deepEqual((await rawRequest(ses.url, 'GET', '/_local/stats')).json, {
    accepted: 1,
    calls: 2,
    rejected: 1,
  });
  t.deepEqual((await rawRequest(ses.url, 'DELETE', '/_local/messages')).json, { cleared: 1 });
  t.deepEqual((await rawRequest(ses.url, 'GET', '/_local/stats')).json, {
    accepted: 0,
    calls: 0,
    rejected: 0,
  });
  t.deepEqual(ses.sent(), []);
});

test('sets faults over HTTP and refuses a fault description with a typo', async (t) => {
  const { ses, client } = await startForTest(t);
  const putFaults = (faults: unknown) =>
    rawRequest(ses.url, 'PUT', '/_local/faults', JSON.stringify(faults));
  const set = await putFaults({ sendingPaused: true });
  t.is(set.status, 200);
  await t.throwsAsync(client.send(new SendEmailCommand(simpleEmail())), {
    name: 'SendingPausedException',
  });
  const typo = await putFaults({ failnext: { status: 500, count: 1 } });
  t.is(typo.status, 400);
  t.is(typo.errorType, 'BadRequestException');
  const badStatus = await putFaults({ failNext: { status: 502, count: 1 } });
  t.is(badStatus.status, 400);
  await t.throwsAsync(client.send(new SendEmailCommand(simpleEmail())), {
    name: 'SendingPausedException',
  });
  await putFaults({});
  await t.notThrowsAsync(client.send(new SendEmailCommand(simpleEmail())));
});

test('sets and lifts the sending rate over HTTP', async (t) => {
  const { ses, client } = await startForTest(t);
  t.deepEqual((await rawRequest(ses.url, 'PUT', '/_local/rate', '{"maxSendRate":1}')).json, {
    maxSendRate: 1,
  });
  await client.send(new SendEmailCommand(simpleEmail()));
  await t.throwsAsync(client.send(new SendEmailCommand(simpleEmail())), {
    name: 'TooManyRequestsException',
  });
  t.deepEqual((await rawRequest(ses.url, 'PUT', '/_local/rate', '{"maxSendRate":null}')).json, {
    maxSendRate: null,
  });
  await t.notThrowsAsync(client.send(new SendEmailCommand(simpleEmail())));
  t.is((await rawRequest(ses.url, 'PUT', '/_local/rate', '{"maxSendRate":-1}')).status, 400);
});

test('answers malformed and non-object JSON bodies with 400 BadRequestException', async (t) => {
  const { ses } = await startForTest(t);
  for (const body of ['{"FromEmailAddress":', '[]', '"text"', 'null']) {
    const reply = await rawRequest(ses.url, 'POST', '/v2/email/outbound-emails', body);
    t.is(reply.status, 400, body);
    t.is(reply.errorType, 'BadRequestException', body);
    t.is(typeof (reply.json as { message?: unknown }).message, 'string');
  }
  const wrongType = await rawRequest(
    ses.url,
    'POST',
    '/v2/email/templates',
    '{"TemplateName":1,"TemplateContent":{}}',
  );
  t.is(wrongType.status, 400);
  t.is(ses.sent().length, 0);
  t.is((await rawRequest(ses.url, 'GET', '/_local/stats')).status, 200);
});

test('answers a body over 10 MB with 413 and keeps serving', async (t) => {
  const { ses } = await startForTest(t);
  const huge = JSON.stringify({ padding: 'x'.repeat(10 * 1024 * 1024) });
  const reply = await rawRequest(ses.url, 'POST', '/v2/email/outbound-emails', huge);
  t.is(reply.status, 413);
  t.is((await rawRequest(ses.url, 'GET', '/v2/email/account')).status, 200);
});

test('answers unknown routes with a 404 JSON error naming the route', async (t) => {
  const { ses } = await startForTest(t);
  for (const [method, path] of [
    ['GET', '/nope'],
    ['POST', '/v2/email/contact-lists'],
    ['PATCH', '/v2/email/templates/x'],
    ['GET', '/_local/nothing'],
  ] as const) {
    const reply = await rawRequest(ses.url, method, path);
    t.is(reply.status, 404, path);
    t.is(reply.errorType, 'UnknownOperationException', path);
    t.regex((reply.json as { message: string }).message, new RegExp(`${method} ${path}`));
  }
});
