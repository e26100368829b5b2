import { SESv2Client } from '@aws-sdk/client-sesv2';
import test from 'ava';
import {
  RETRY_MIDDLEWARE,
  tuneSendingStack,
  UNNEEDED_MIDDLEWARE,
} from '../../src/ses/sdk-stack.ts';

function defaultClient(): SESv2Client {
  return new SESv2Client({
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
}

const names = (client: SESv2Client) =>
  client.middlewareStack.identify().map((entry) => entry.split(' ')[0]);

// An SDK upgrade that renames a middleware the project removes must fail here, loudly, instead
// of leaving the step in place (CPU per send) or removing nothing.
test('every middleware the sending stack removes is in the SDK default SESv2 client', (t) => {
  const present = names(defaultClient());
  for (const name of [...UNNEEDED_MIDDLEWARE, RETRY_MIDDLEWARE]) {
    t.true(present.includes(name), `${name} is no longer in the SDK's stack`);
  }
});

test('the tuned stack has none of them, a pass-through retry step and the write gate', (t) => {
  const client = defaultClient();
  tuneSendingStack(client);
  const present = names(client);
  for (const name of UNNEEDED_MIDDLEWARE) t.false(present.includes(name), name);
  t.is(present.filter((name) => name === RETRY_MIDDLEWARE).length, 1);
  // The gate is the last step before the write: after signing, before the handler.
  t.true(present.indexOf('httpSigningMiddleware') < present.indexOf('mailerWriteGate'));
  t.is(present.indexOf('mailerWriteGate'), present.indexOf('deserializerMiddleware') - 1);
});

test('tuning a stack that lacks a middleware throws, naming it', (t) => {
  const client = defaultClient();
  client.middlewareStack.remove('loggerMiddleware');
  t.throws(() => tuneSendingStack(client), { message: /loggerMiddleware/ });
});
