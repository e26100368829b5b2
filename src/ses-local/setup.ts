// Sets a local SES endpoint up the way a real account must be for mailer (README, "Running
// against a real account"), through the real SDK: the From's domain as a verified identity, the
// configuration set, and its event destination publishing every event type mailer needs to the
// SNS topic. Used by the demo and the tests; `mailer ses check` passes against the result.
import {
  AlreadyExistsException,
  CreateConfigurationSetCommand,
  CreateConfigurationSetEventDestinationCommand,
  CreateEmailIdentityCommand,
  type EventType,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import { REQUIRED_EVENT_TYPES } from '../ses/preflight-events.ts';
import { fromAddress } from '../ses/preflight-identity.ts';

export interface LocalSesSetup {
  /** MAIL_FROM, `Name <addr@domain>` or `addr@domain`: its domain becomes the identity. */
  from: string;
  configurationSet: string;
  topicArn: string;
  eventDestination?: string;
  /** What the destination publishes; default every type mailer needs (REQUIRED_EVENT_TYPES). */
  eventTypes?: readonly EventType[];
}

async function unlessExists(send: () => Promise<unknown>): Promise<void> {
  try {
    await send();
  } catch (error) {
    if (!(error instanceof AlreadyExistsException)) throw error;
  }
}

/** Idempotent: what already exists is left as it is. */
export async function configureLocalSes(client: SESv2Client, setup: LocalSesSetup): Promise<void> {
  const address = fromAddress(setup.from);
  if (!address) throw new Error(`configureLocalSes: ${setup.from} has no email address`);
  const domain = address.slice(address.lastIndexOf('@') + 1);
  await unlessExists(() => client.send(new CreateEmailIdentityCommand({ EmailIdentity: domain })));
  await unlessExists(() =>
    client.send(
      new CreateConfigurationSetCommand({ ConfigurationSetName: setup.configurationSet }),
    ),
  );
  await unlessExists(() =>
    client.send(
      new CreateConfigurationSetEventDestinationCommand({
        ConfigurationSetName: setup.configurationSet,
        EventDestinationName: setup.eventDestination ?? 'mailer-sns',
        EventDestination: {
          Enabled: true,
          MatchingEventTypes: [...(setup.eventTypes ?? REQUIRED_EVENT_TYPES)],
          SnsDestination: { TopicArn: setup.topicArn },
        },
      }),
    ),
  );
}
