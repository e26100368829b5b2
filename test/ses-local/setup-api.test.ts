import {
  AlreadyExistsException,
  BadRequestException,
  CreateConfigurationSetCommand,
  CreateConfigurationSetEventDestinationCommand,
  CreateEmailIdentityCommand,
  DeleteConfigurationSetCommand,
  DeleteConfigurationSetEventDestinationCommand,
  DeleteEmailIdentityCommand,
  GetAccountCommand,
  GetConfigurationSetCommand,
  GetConfigurationSetEventDestinationsCommand,
  GetEmailIdentityCommand,
  MessageRejected,
  NotFoundException,
  SendEmailCommand,
  UpdateConfigurationSetEventDestinationCommand,
} from '@aws-sdk/client-sesv2';
import test from 'ava';
import { REQUIRED_EVENT_TYPES } from '../../src/ses/preflight-events.ts';
import { configureLocalSes } from '../../src/ses-local/setup.ts';
import { rawRequest, simpleEmail, startForTest } from './helpers.ts';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:mailer-events';
const notVerified = (identities: string) =>
  'Email address is not verified. The following identities failed the check in region ' +
  `US-EAST-1: ${identities}`;

test('creates, reads and deletes email identities, verified at once', async (t) => {
  const { client } = await startForTest(t);
  const created = await client.send(
    new CreateEmailIdentityCommand({ EmailIdentity: 'example.com' }),
  );
  t.is(created.IdentityType, 'DOMAIN');
  t.true(created.VerifiedForSendingStatus);
  await client.send(new CreateEmailIdentityCommand({ EmailIdentity: 'Ann@Example.org' }));
  const ann = await client.send(new GetEmailIdentityCommand({ EmailIdentity: 'ann@example.org' }));
  t.is(ann.IdentityType, 'EMAIL_ADDRESS');
  t.is(ann.VerificationStatus, 'SUCCESS');
  t.true(ann.VerifiedForSendingStatus);
  await t.throwsAsync(
    client.send(new CreateEmailIdentityCommand({ EmailIdentity: 'EXAMPLE.com' })),
    { instanceOf: AlreadyExistsException },
  );
  await client.send(new DeleteEmailIdentityCommand({ EmailIdentity: 'example.com' }));
  const missing = {
    instanceOf: NotFoundException,
    message: 'Email identity example.com does not exist.',
  };
  await t.throwsAsync(
    client.send(new GetEmailIdentityCommand({ EmailIdentity: 'example.com' })),
    missing,
  );
  await t.throwsAsync(
    client.send(new DeleteEmailIdentityCommand({ EmailIdentity: 'example.com' })),
    missing,
  );
  await t.throwsAsync(
    client.send(new CreateEmailIdentityCommand({ EmailIdentity: 'not an identity' })),
    { instanceOf: BadRequestException },
  );
});

test('until an identity is created every From is verified; from then on only created ones', async (t) => {
  const { ses, client } = await startForTest(t);
  const anyone = await client.send(new GetEmailIdentityCommand({ EmailIdentity: 'anyone.test' }));
  t.true(anyone.VerifiedForSendingStatus);
  await client.send(new SendEmailCommand(simpleEmail()));

  await client.send(new CreateEmailIdentityCommand({ EmailIdentity: 'mailer.test' }));
  await client.send(new CreateEmailIdentityCommand({ EmailIdentity: 'solo@other.test' }));
  await t.throwsAsync(client.send(new GetEmailIdentityCommand({ EmailIdentity: 'anyone.test' })), {
    instanceOf: NotFoundException,
  });
  await t.throwsAsync(
    client.send(
      new SendEmailCommand({ ...simpleEmail(), FromEmailAddress: 'News <news@example.com>' }),
    ),
    { instanceOf: MessageRejected, message: notVerified('news@example.com') },
  );
  // A domain identity covers its addresses; an address identity only itself.
  await client.send(new SendEmailCommand({ ...simpleEmail(), FromEmailAddress: 'a@mailer.test' }));
  await client.send(
    new SendEmailCommand({ ...simpleEmail(), FromEmailAddress: 'solo@other.test' }),
  );
  await t.throwsAsync(
    client.send(new SendEmailCommand({ ...simpleEmail(), FromEmailAddress: 'b@other.test' })),
    { instanceOf: MessageRejected, message: notVerified('b@other.test') },
  );
  // Deleting every identity does not make it permissive again.
  await client.send(new DeleteEmailIdentityCommand({ EmailIdentity: 'mailer.test' }));
  await client.send(new DeleteEmailIdentityCommand({ EmailIdentity: 'solo@other.test' }));
  await t.throwsAsync(
    client.send(new SendEmailCommand({ ...simpleEmail(), FromEmailAddress: 'a@mailer.test' })),
    { instanceOf: MessageRejected, message: notVerified('a@mailer.test') },
  );
  t.is(ses.sent().length, 3);
});

test('the admin API puts the account in the sandbox, where only verified recipients get mail', async (t) => {
  const { ses, client } = await startForTest(t);
  const sandbox = await rawRequest(
    ses.url,
    'PUT',
    '/_local/account',
    JSON.stringify({ productionAccessEnabled: false }),
  );
  t.deepEqual(sandbox.json, { productionAccessEnabled: false });
  t.false((await client.send(new GetAccountCommand({}))).ProductionAccessEnabled);
  const typo = await rawRequest(ses.url, 'PUT', '/_local/account', '{"productionAccess": true}');
  t.is(typo.status, 400);

  // simpleEmail sends from news@example.com.
  await client.send(new CreateEmailIdentityCommand({ EmailIdentity: 'example.com' }));
  await client.send(new CreateEmailIdentityCommand({ EmailIdentity: 'tester@inbox.test' }));
  await client.send(new SendEmailCommand(simpleEmail(['tester@inbox.test'])));
  await client.send(new SendEmailCommand(simpleEmail(['bounce@simulator.amazonses.com'])));
  await t.throwsAsync(
    client.send(new SendEmailCommand(simpleEmail(['tester@inbox.test', 'Reader <r@else.test>']))),
    { instanceOf: MessageRejected, message: notVerified('r@else.test') },
  );

  await rawRequest(ses.url, 'PUT', '/_local/account', '{"productionAccessEnabled": true}');
  t.true((await client.send(new GetAccountCommand({}))).ProductionAccessEnabled);
  await client.send(new SendEmailCommand(simpleEmail(['r@else.test'])));
  t.deepEqual(
    ses.sent().map((message) => message.to[0]),
    ['tester@inbox.test', 'bounce@simulator.amazonses.com', 'r@else.test'],
  );
});

test('configuration sets and their event destinations are created, read, changed and deleted', async (t) => {
  const { client } = await startForTest(t);
  const ConfigurationSetName = 'mailer-events';
  await client.send(new CreateConfigurationSetCommand({ ConfigurationSetName }));
  await t.throwsAsync(client.send(new CreateConfigurationSetCommand({ ConfigurationSetName })), {
    instanceOf: AlreadyExistsException,
  });
  const set = await client.send(new GetConfigurationSetCommand({ ConfigurationSetName }));
  t.is(set.ConfigurationSetName, ConfigurationSetName);
  await client.send(
    new CreateConfigurationSetEventDestinationCommand({
      ConfigurationSetName,
      EventDestinationName: 'to-sns',
      EventDestination: { MatchingEventTypes: ['BOUNCE'], SnsDestination: { TopicArn: TOPIC } },
    }),
  );
  const read = async () =>
    (await client.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName })))
      .EventDestinations;
  t.deepEqual(await read(), [
    {
      Name: 'to-sns',
      Enabled: false,
      MatchingEventTypes: ['BOUNCE'],
      SnsDestination: { TopicArn: TOPIC },
    },
  ]);
  await client.send(
    new UpdateConfigurationSetEventDestinationCommand({
      ConfigurationSetName,
      EventDestinationName: 'to-sns',
      EventDestination: {
        Enabled: true,
        MatchingEventTypes: ['SEND', 'DELIVERY'],
        SnsDestination: { TopicArn: TOPIC },
      },
    }),
  );
  t.deepEqual((await read())?.[0]?.MatchingEventTypes, ['SEND', 'DELIVERY']);
  t.true((await read())?.[0]?.Enabled);
  await t.throwsAsync(
    client.send(
      new CreateConfigurationSetEventDestinationCommand({
        ConfigurationSetName,
        EventDestinationName: 'nowhere',
        EventDestination: { MatchingEventTypes: ['SEND'] },
      }),
    ),
    { instanceOf: BadRequestException },
  );
  await client.send(
    new DeleteConfigurationSetEventDestinationCommand({
      ConfigurationSetName,
      EventDestinationName: 'to-sns',
    }),
  );
  t.deepEqual(await read(), []);
  await client.send(new DeleteConfigurationSetCommand({ ConfigurationSetName }));
  await t.throwsAsync(client.send(new GetConfigurationSetCommand({ ConfigurationSetName })), {
    instanceOf: NotFoundException,
    message: 'Configuration set mailer-events does not exist.',
  });
  await t.throwsAsync(read(), { instanceOf: NotFoundException });
});

test('configureLocalSes sets up identity, configuration set and destination, and may run twice', async (t) => {
  const { client } = await startForTest(t);
  const setup = { from: 'Mailer <news@mailer.test>', configurationSet: 'demo', topicArn: TOPIC };
  await configureLocalSes(client, setup);
  await configureLocalSes(client, setup);
  const identity = await client.send(new GetEmailIdentityCommand({ EmailIdentity: 'mailer.test' }));
  t.true(identity.VerifiedForSendingStatus);
  const { EventDestinations } = await client.send(
    new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: 'demo' }),
  );
  t.deepEqual(EventDestinations, [
    {
      Name: 'mailer-sns',
      Enabled: true,
      // The setup's default: every type mailer needs.
      MatchingEventTypes: [...REQUIRED_EVENT_TYPES],
      SnsDestination: { TopicArn: TOPIC },
    },
  ]);
});
