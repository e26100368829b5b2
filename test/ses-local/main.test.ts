import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { GetAccountCommand } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { parseLocalSesEnv } from '../../src/ses-local/main.ts';
import { createSesClient } from './helpers.ts';

test('reads defaults from an empty environment and treats blank values as unset', (t) => {
  t.deepEqual(parseLocalSesEnv({}), { LOCAL_SES_PORT: 4579, LOCAL_SES_HOST: '127.0.0.1' });
  t.deepEqual(parseLocalSesEnv({ LOCAL_SES_PORT: '0', LOCAL_SES_MAX_SEND_RATE: '' }), {
    LOCAL_SES_PORT: 0,
    LOCAL_SES_HOST: '127.0.0.1',
    LOCAL_SES_MAX_SEND_RATE: undefined,
  });
  t.is(parseLocalSesEnv({ LOCAL_SES_MAX_SEND_RATE: '14' }).LOCAL_SES_MAX_SEND_RATE, 14);
});

test('names the variable that holds a bad value', (t) => {
  t.throws(() => parseLocalSesEnv({ LOCAL_SES_PORT: 'http' }), { message: /LOCAL_SES_PORT/ });
  t.throws(() => parseLocalSesEnv({ LOCAL_SES_MAX_SEND_RATE: '-3' }), {
    message: /LOCAL_SES_MAX_SEND_RATE/,
  });
});

test('runs as a process that logs its URL, serves the SDK and exits cleanly on SIGTERM', async (t) => {
  const child = spawn(process.execPath, ['src/ses-local/main.ts'], {
    env: { ...process.env, LOCAL_SES_PORT: '0', LOCAL_SES_MAX_SEND_RATE: '7' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout });
  const [firstLine] = (await once(lines, 'line')) as [string];
  const { url } = JSON.parse(firstLine) as { url: string };
  const client = createSesClient(url);
  t.teardown(() => client.destroy());
  const account = await client.send(new GetAccountCommand({}));
  t.is(account.SendQuota?.MaxSendRate, 7);
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  t.deepEqual(await exited, [0, null]);
});
