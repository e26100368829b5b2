// The start-up side of the preflight: checkSesAtStartup logs every problem and refuses to start
// only when SES cannot send at all. Real SDK against the local SES, real PostgreSQL.
import { Writable } from 'node:stream';
import { DeleteEmailIdentityCommand } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { freePort } from '../../src/free-port.ts';
import { checkSesAccount, checkSesAtStartup } from '../../src/ses/preflight.ts';
import { configureLocalSes } from '../../src/ses-local/setup.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createSesClient, rawRequest, startForTest } from '../ses-local/helpers.ts';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:mailer-events';
const config = loadConfig({
  MAIL_FROM: 'news@mailer.test',
  SES_CONFIGURATION_SET: 'mailer-events',
  SNS_TOPIC_ARNS: TOPIC,
});

const db = databaseForFile();

function capturingLogger() {
  const lines: Array<{ level: number; msg: string; problem?: string }> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

async function readySes(t: Parameters<typeof startForTest>[0]) {
  const started = await startForTest(t);
  await configureLocalSes(started.client, {
    from: config.ses.from,
    configurationSet: 'mailer-events',
    topicArn: TOPIC,
  });
  return started;
}

test('starts with no problem logged against a correctly set-up SES', async (t) => {
  const { client } = await readySes(t);
  const { logger, lines } = capturingLogger();
  t.true(await checkSesAtStartup({ client, config, pool: db.pool, logger }));
  t.deepEqual(lines, []);
});

test('a sandbox account is a warning at start-up, not a reason to stop', async (t) => {
  const { ses, client } = await readySes(t);
  await rawRequest(ses.url, 'PUT', '/_local/account', '{"productionAccessEnabled": false}');
  const { logger, lines } = capturingLogger();
  t.true(await checkSesAtStartup({ client, config, pool: db.pool, logger }));
  t.deepEqual(
    lines.map((line) => [line.level, line.problem?.split(':')[0]]),
    [[40, 'account is in the SES sandbox']],
  );
});

test('an unverified From stops the start-up, logged as an error', async (t) => {
  const { client } = await readySes(t);
  await client.send(new DeleteEmailIdentityCommand({ EmailIdentity: 'mailer.test' }));
  const { logger, lines } = capturingLogger();
  t.false(await checkSesAtStartup({ client, config, pool: db.pool, logger }));
  t.deepEqual(
    lines.map((line) => [line.level, line.msg]),
    [[50, 'SES check: cannot send']],
  );
});

test('an SES that does not answer GetAccount is fatal; what it could not read is not', async (t) => {
  const client = createSesClient(`http://127.0.0.1:${await freePort()}`);
  t.teardown(() => client.destroy());
  const result = await checkSesAccount({ client, config, pool: db.pool });
  t.is(result.fatal.length, 1);
  t.regex(result.fatal[0] ?? '', /^GetAccount failed: .*ECONNREFUSED/);
  t.deepEqual(
    result.problems.slice(1).map((line) => line.split(' failed')[0]?.split(' could not')[0]),
    [
      'GetEmailIdentity news@mailer.test',
      'GetEmailIdentity mailer.test',
      'configuration set mailer-events',
    ],
  );
});
