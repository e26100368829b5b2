// `mailer ses check` against a local SES set up as a real account must be (configureLocalSes),
// then with one piece of that setup broken at a time: each names its problem in one line, exit 1.
import {
  CreateConfigurationSetEventDestinationCommand,
  CreateEmailTemplateCommand,
  DeleteConfigurationSetCommand,
  DeleteConfigurationSetEventDestinationCommand,
  DeleteEmailIdentityCommand,
  DeleteEmailTemplateCommand,
  type SESv2Client,
  UpdateConfigurationSetEventDestinationCommand,
} from '@aws-sdk/client-sesv2';
import test, { type ExecutionContext } from 'ava';
import { REQUIRED_EVENT_TYPES } from '../../src/ses/preflight-events.ts';
import type { LocalSes } from '../../src/ses-local/server.ts';
import { configureLocalSes } from '../../src/ses-local/setup.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createTemplate } from '../helpers/factories.ts';
import { rawRequest, startForTest } from '../ses-local/helpers.ts';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:mailer-events';
const OTHER_TOPIC = 'arn:aws:sns:us-east-1:123456789012:someone-else';
const SET = 'mailer-events';
const TEMPLATE = 'weekly-news';
const DESTINATION = 'mailer-sns';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await createTemplate(db.pool, { provider: 'ses', provider_template_name: TEMPLATE });
  // Inactive and internal templates are not looked up in SES.
  const old = await createTemplate(db.pool, {
    provider: 'ses',
    provider_template_name: 'gone',
    week_of_month: 3,
  });
  await db.pool.query('update templates set is_active = false where template_id = $1', [
    old.template_id,
  ]);
  await createTemplate(db.pool, { provider: 'internal', week_of_month: 2 });
});
test.after.always(async () => {
  await db?.drop();
});

/** A local SES set up correctly: identity, configuration set, SNS destination, template. */
async function readySes(t: ExecutionContext): Promise<{ ses: LocalSes; client: SESv2Client }> {
  const started = await startForTest(t);
  await configureLocalSes(started.client, {
    from: 'Mailer <news@mailer.test>',
    configurationSet: SET,
    topicArn: TOPIC,
    eventDestination: DESTINATION,
  });
  await started.client.send(
    new CreateEmailTemplateCommand({
      TemplateName: TEMPLATE,
      TemplateContent: {
        Subject: 'News for {{name}}',
        Html: '<p>Hello {{name_html}}</p>',
        Text: 'Hello {{name}}',
      },
    }),
  );
  return started;
}

function check(ses: LocalSes, args: string[] = [], env: Record<string, string> = {}) {
  return runCli(['ses', 'check', ...args], {
    DATABASE_URL: db.url,
    SES_ENDPOINT: ses.url,
    MAIL_FROM: 'Mailer <news@mailer.test>',
    SES_CONFIGURATION_SET: SET,
    SNS_TOPIC_ARNS: `arn:aws:sns:us-east-1:123456789012:unrelated,${TOPIC}`,
    ...env,
  });
}

async function problems(t: ExecutionContext, ses: LocalSes, env?: Record<string, string>) {
  const result = await check(ses, [], env);
  t.is(result.code, 1, result.stderr);
  t.regex(result.stderr, /mailer: ses check: \d+ problem\(s\) with http:\/\/127\.0\.0\.1:\d+/);
  return result.stdout.trimEnd().split('\n');
}

test('passes against a correctly set-up SES and prints what it found', async (t) => {
  const { ses } = await readySes(t);
  const result = await check(ses);
  t.is(result.code, 0, result.stdout + result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  t.regex(lines[0] ?? '', new RegExp(`^  SES +${ses.url}$`));
  t.deepEqual(
    lines.slice(1).map((line) => line.trim().replace(/ {2,}/, ': ')),
    [
      'account: sending enabled, production access, enforcement HEALTHY',
      'rate: 10000 messages per second',
      'quota: 100000000 messages per 24 hours, 0 sent in the last 24 hours',
      'From: news@mailer.test, verified (identity mailer.test)',
      `configuration set: ${SET}: ${DESTINATION} -> ${TOPIC} ` +
        '(SEND, DELIVERY, BOUNCE, COMPLAINT, REJECT, RENDERING_FAILURE)',
      `templates: 1 active ses template(s) exist: ${TEMPLATE}`,
      'ses check: ok',
    ],
  );
  const json = await check(ses, ['--json']);
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { ok: boolean; problems: string[]; facts: unknown };
  t.true(report.ok);
  t.deepEqual(report.problems, []);
  t.like(report.facts, {
    from: { address: 'news@mailer.test', verifiedBy: 'mailer.test' },
    templates: [TEMPLATE],
  });
});

test('names a From whose identity was deleted', async (t) => {
  const { ses, client } = await readySes(t);
  await client.send(new DeleteEmailIdentityCommand({ EmailIdentity: 'mailer.test' }));
  t.deepEqual(await problems(t, ses), [
    'From address news@mailer.test is not verified for sending: neither the address nor its ' +
      'domain mailer.test is an SES identity',
  ]);
});

test('names a configuration set that was deleted', async (t) => {
  const { ses, client } = await readySes(t);
  await client.send(new DeleteConfigurationSetCommand({ ConfigurationSetName: SET }));
  t.deepEqual(await problems(t, ses), [
    `configuration set ${SET} (SES_CONFIGURATION_SET) does not exist: SES refuses every ` +
      'message that names it',
  ]);
});

test('names no configuration set configured at all', async (t) => {
  const { ses } = await readySes(t);
  t.deepEqual(await problems(t, ses, { SES_CONFIGURATION_SET: '' }), [
    'SES_CONFIGURATION_SET is not set: SES publishes no events for mailer to act on',
  ]);
});

test('names an event destination publishing to a topic not in SNS_TOPIC_ARNS', async (t) => {
  const { ses, client } = await readySes(t);
  const names = { ConfigurationSetName: SET, EventDestinationName: DESTINATION };
  await client.send(new DeleteConfigurationSetEventDestinationCommand(names));
  await client.send(
    new CreateConfigurationSetEventDestinationCommand({
      ...names,
      EventDestination: {
        Enabled: true,
        MatchingEventTypes: [...REQUIRED_EVENT_TYPES],
        SnsDestination: { TopicArn: OTHER_TOPIC },
      },
    }),
  );
  t.deepEqual(await problems(t, ses), [
    `configuration set ${SET}: event destination ${DESTINATION} publishes to ${OTHER_TOPIC}, ` +
      'which is not in SNS_TOPIC_ARNS',
  ]);
});

test('names the event types the destination does not publish', async (t) => {
  const { ses, client } = await readySes(t);
  await client.send(
    new UpdateConfigurationSetEventDestinationCommand({
      ConfigurationSetName: SET,
      EventDestinationName: DESTINATION,
      EventDestination: {
        Enabled: true,
        MatchingEventTypes: ['SEND', 'DELIVERY', 'BOUNCE', 'COMPLAINT', 'REJECT', 'OPEN'],
        SnsDestination: { TopicArn: TOPIC },
      },
    }),
  );
  t.deepEqual(await problems(t, ses), [
    `configuration set ${SET} publishes no RENDERING_FAILURE events to a topic in SNS_TOPIC_ARNS`,
  ]);
});

test('names an active ses template missing from SES', async (t) => {
  const { ses, client } = await readySes(t);
  await client.send(new DeleteEmailTemplateCommand({ TemplateName: TEMPLATE }));
  t.deepEqual(await problems(t, ses), [`SES template ${TEMPLATE} does not exist in ${ses.url}`]);
});

test('names an account whose sending is disabled', async (t) => {
  const { ses } = await readySes(t);
  ses.setFaults({ sendingPaused: true });
  t.deepEqual(await problems(t, ses), [
    'sending is disabled for this account (SendingEnabled false): SES refuses every message',
  ]);
});

test('names the sandbox, with --json saying which problems are fatal', async (t) => {
  const { ses } = await readySes(t);
  await rawRequest(ses.url, 'PUT', '/_local/account', '{"productionAccessEnabled": false}');
  const sandbox =
    'account is in the SES sandbox: it sends only to verified addresses and the mailbox ' +
    'simulator, at most 100000000 messages per 24 hours; request production access in the SES ' +
    'console';
  t.deepEqual(await problems(t, ses), [sandbox]);

  ses.setFaults({ sendingPaused: true });
  const json = await check(ses, ['--json']);
  t.is(json.code, 1);
  const report = JSON.parse(json.stdout) as { ok: boolean; problems: string[]; fatal: string[] };
  t.false(report.ok);
  const disabled =
    'sending is disabled for this account (SendingEnabled false): SES refuses every message';
  t.deepEqual(report.problems, [disabled, sandbox]);
  t.deepEqual(report.fatal, [disabled]);
});
