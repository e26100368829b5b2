import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { loadConfig } from '../../src/config.ts';
import { createSesClient } from '../../src/ses/client.ts';
import {
  NotWrittenError,
  Sha256,
  tuneSendingStack,
  type WriteGate,
  writeWhen,
} from '../../src/ses/sdk-stack.ts';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { simpleEmail } from '../ses-local/helpers.ts';

const config = loadConfig({});

async function projectClient(t: import('ava').ExecutionContext) {
  const ses = await startLocalSes();
  const client = createSesClient(config, ses.url);
  t.teardown(async () => {
    client.destroy();
    await ses.close();
  });
  return { ses, client };
}

const dropped: WriteGate = {
  wait: () => Promise.reject(new NotWrittenError('late')),
};

test('does not write a request its gate drops, and nothing reaches SES', async (t) => {
  const { ses, client } = await projectClient(t);
  const late = writeWhen(simpleEmail(['late@example.com']), dropped);
  await t.throwsAsync(client.send(new SendEmailCommand(late)), { instanceOf: NotWrittenError });
  t.is(ses.sendCallCount(), 0);
});

test('a gate belongs to its own command input, with the middleware stack cached', async (t) => {
  const { ses, client } = await projectClient(t);
  await client.send(new SendEmailCommand(simpleEmail(['first@example.com'])));
  const late = writeWhen(simpleEmail(['late@example.com']), dropped);
  await t.throwsAsync(client.send(new SendEmailCommand(late)), { instanceOf: NotWrittenError });
  const open = writeWhen(simpleEmail(['open@example.com']), { wait: () => Promise.resolve() });
  await client.send(new SendEmailCommand(open));
  await client.send(new SendEmailCommand(simpleEmail(['plain@example.com'])));
  t.deepEqual(
    ses.sent().map((m) => m.to[0]),
    ['first@example.com', 'open@example.com', 'plain@example.com'],
  );
  t.is(ses.sendCallCount(), 3);
});

test('a request waits at its gate and is written when the gate opens', async (t) => {
  const { ses, client } = await projectClient(t);
  let open: () => void = () => undefined;
  const input = writeWhen(simpleEmail(['slot@example.com']), {
    wait: () => new Promise<void>((resolve) => (open = resolve)),
  });
  const sending = client.send(new SendEmailCommand(input));
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(ses.sendCallCount(), 0);
  open();
  await sending;
  t.deepEqual(
    ses.sent().map((m) => m.to[0]),
    ['slot@example.com'],
  );
});

test('one attempt per call: a 500 and a 429 reach the caller with their status, sent once each', async (t) => {
  const { ses, client } = await projectClient(t);
  for (const status of [500, 429] as const) {
    ses.setFaults({ failNext: { status, count: 1 } });
    const error = await t.throwsAsync(
      client.send(new SendEmailCommand(simpleEmail([`fails-${status}@example.com`]))),
    );
    t.is((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, status);
  }
  t.is(ses.sendCallCount(), 2);
  t.deepEqual(ses.sent(), []);
  // The stack still signs and sends after failures.
  await client.send(new SendEmailCommand(simpleEmail(['after@example.com'])));
  t.deepEqual(
    ses.sent().map((m) => m.to[0]),
    ['after@example.com'],
  );
});

test('a request that cannot connect fails once, as a network error', async (t) => {
  const client = createSesClient(config, 'http://127.0.0.1:9');
  t.teardown(() => client.destroy());
  const error = await t.throwsAsync(
    client.send(new SendEmailCommand(simpleEmail(['nobody@example.com']))),
  );
  t.is((error as { code?: string }).code, 'ECONNREFUSED');
});

test('one signer for every request, signing with the credentials of the moment', async (t) => {
  // An endpoint that answers every SendEmail and keeps each request's Authorization header.
  const authorizations: string[] = [];
  const server = createServer((request, response) => {
    authorizations.push(request.headers.authorization ?? '');
    request.resume();
    request.on('end', () => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ MessageId: `m${authorizations.length}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  // Credentials that rotate on every fetch: they expire within the SDK's refresh window.
  let fetched = 0;
  const client = new SESv2Client({
    region: 'eu-west-1',
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    maxAttempts: 1,
    credentials: async () => ({
      accessKeyId: `AKID${++fetched}`,
      secretAccessKey: 'secret',
      expiration: new Date(Date.now() + 60_000),
    }),
  });
  t.teardown(() => client.destroy());
  const makeSigner = client.config.signer;
  let built = 0;
  client.config.signer = (scheme) => {
    built++;
    return makeSigner(scheme);
  };
  tuneSendingStack(client);

  for (const to of ['a@example.com', 'b@example.com', 'c@example.com']) {
    await client.send(new SendEmailCommand(simpleEmail([to])));
  }
  t.is(built, 1);
  const scopes = authorizations.map((a) => /Credential=([^,]+)/.exec(a)?.[1]?.split('/'));
  t.is(scopes.length, 3);
  // Each request signed with a newer key than the one before, for the client's region and SES.
  const keys = scopes.map((scope) => scope?.[0]);
  t.is(new Set(keys).size, 3, `key ids: ${keys}`);
  for (const scope of scopes) t.deepEqual(scope?.slice(2), ['eu-west-1', 'ses', 'aws4_request']);
});

// The SDK's own SHA-256 class, as a default client resolves it.
const SdkSha256 = new SESv2Client({ region: 'us-east-1' }).config.sha256;

async function digest(
  Hash: typeof SdkSha256 | typeof Sha256,
  secret: string | Uint8Array | undefined,
  chunks: (string | Uint8Array)[],
): Promise<string> {
  const hash = new Hash(secret);
  for (const chunk of chunks) hash.update(chunk);
  return Buffer.from(await hash.digest()).toString('hex');
}

testProp(
  'computes the same SHA-256 and HMAC-SHA-256 as the SDK, for a key used again too',
  [
    fc.option(fc.oneof(fc.string(), fc.uint8Array({ minLength: 1, maxLength: 80 })), {
      nil: undefined,
    }),
    fc.array(fc.oneof(fc.string({ unit: 'grapheme' }), fc.uint8Array({ maxLength: 300 })), {
      maxLength: 4,
    }),
  ],
  async (t, secret, chunks) => {
    const expected = await digest(SdkSha256, secret, chunks);
    t.is(await digest(Sha256, secret, chunks), expected);
    // Second use of the same key bytes goes through the cached key object.
    t.is(await digest(Sha256, secret, chunks), expected);
  },
);

test('matches the RFC 4231 HMAC-SHA-256 test case 2', async (t) => {
  const mac = new Sha256('Jefe');
  mac.update('what do ya want for nothing?');
  t.is(
    Buffer.from(await mac.digest()).toString('hex'),
    '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  );
});
