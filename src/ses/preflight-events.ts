// Whether SES events reach mailer: SES_CONFIGURATION_SET exists (SendEmail naming a missing set
// fails every message) and has an enabled event destination publishing the event types mailer
// acts on to an SNS topic that the webhook accepts (SNS_TOPIC_ARNS).
import {
  type EventDestination,
  type EventType,
  GetConfigurationSetCommand,
  GetConfigurationSetEventDestinationsCommand,
  NotFoundException,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import { describeError, type Finding } from './preflight-identity.ts';

/**
 * The event types with an effect (README, "SES events, suppression and unsubscribe"): Send and
 * Delivery settle recipients in doubt, Bounce and Complaint suppress, Reject and Rendering
 * Failure fail the recipient. SUBSCRIPTION only comes with SES's own subscription management
 * (mailer sends its own List-Unsubscribe), and DELIVERY_DELAY, OPEN and CLICK are only stored,
 * so those are optional.
 */
export const REQUIRED_EVENT_TYPES: readonly EventType[] = [
  'SEND',
  'DELIVERY',
  'BOUNCE',
  'COMPLAINT',
  'REJECT',
  'RENDERING_FAILURE',
];

export interface ConfigurationSetFacts {
  name: string;
  /** The enabled SNS destinations to allowed topics, which are what mailer receives. */
  destinations: Array<{ name: string; topicArn: string; eventTypes: string[] }>;
}

function unusable(destination: EventDestination, topicArns: readonly string[]): string[] {
  const topic = destination.SnsDestination?.TopicArn ?? '';
  const reasons: string[] = [];
  if (!destination.Enabled) reasons.push('is disabled');
  if (!topicArns.includes(topic)) {
    reasons.push(`publishes to ${topic}, which is not in SNS_TOPIC_ARNS`);
  }
  return reasons;
}

function judgeDestinations(
  set: string,
  destinations: EventDestination[],
  topicArns: readonly string[],
): { findings: Finding[]; facts: ConfigurationSetFacts } {
  const sns = destinations.filter((d) => d.SnsDestination?.TopicArn);
  const usable = sns.filter((d) => unusable(d, topicArns).length === 0);
  const facts: ConfigurationSetFacts = {
    name: set,
    destinations: usable.map((d) => ({
      name: d.Name ?? '',
      topicArn: d.SnsDestination?.TopicArn ?? '',
      eventTypes: d.MatchingEventTypes ?? [],
    })),
  };
  const warn = (line: string): Finding => ({ line, fatal: false });
  if (usable.length === 0 && sns.length === 0) {
    const why =
      destinations.length === 0 ? 'has no event destination' : 'publishes to no SNS topic';
    return {
      findings: [warn(`configuration set ${set} ${why}: SES events would never reach mailer`)],
      facts,
    };
  }
  if (usable.length === 0) {
    const findings = sns.map((d) =>
      warn(
        `configuration set ${set}: event destination ${d.Name} ${unusable(d, topicArns).join(' and ')}`,
      ),
    );
    return { findings, facts };
  }
  const published = new Set(usable.flatMap((d) => d.MatchingEventTypes ?? []));
  const missing = REQUIRED_EVENT_TYPES.filter((type) => !published.has(type));
  if (missing.length === 0) return { findings: [], facts };
  return {
    findings: [
      warn(
        `configuration set ${set} publishes no ${missing.join(', ')} events to a topic in SNS_TOPIC_ARNS`,
      ),
    ],
    facts,
  };
}

export async function checkConfigurationSet(
  client: SESv2Client,
  set: string | undefined,
  topicArns: readonly string[],
): Promise<{ findings: Finding[]; facts: ConfigurationSetFacts | undefined }> {
  const findings: Finding[] = [];
  if (topicArns.length === 0) {
    findings.push({
      line: 'SNS_TOPIC_ARNS is empty: the webhook refuses every SES event notification',
      fatal: false,
    });
  }
  if (!set) {
    findings.push({
      line: 'SES_CONFIGURATION_SET is not set: SES publishes no events for mailer to act on',
      fatal: false,
    });
    return { findings, facts: undefined };
  }
  try {
    await client.send(new GetConfigurationSetCommand({ ConfigurationSetName: set }));
    const answer = await client.send(
      new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: set }),
    );
    const judged = judgeDestinations(set, answer.EventDestinations ?? [], topicArns);
    return { findings: [...findings, ...judged.findings], facts: judged.facts };
  } catch (error) {
    findings.push(
      error instanceof NotFoundException
        ? {
            line: `configuration set ${set} (SES_CONFIGURATION_SET) does not exist: SES refuses every message that names it`,
            fatal: true,
          }
        : {
            line: `configuration set ${set} could not be read: ${describeError(error)}`,
            fatal: false,
          },
    );
    return { findings, facts: undefined };
  }
}

/**
 * For IN_DOUBT_RESEND_AFTER_MINUTES, asked at each reconcile run that has a recipient to decide
 * on (the set can change at any time; a stale answer would resend messages SES did accept):
 * undefined when SES publishes the set's Send events to a topic the webhook accepts, else why not.
 */
export async function sendEventsUnpublished(
  client: SESv2Client,
  set: string | undefined,
  topicArns: readonly string[],
): Promise<string | undefined> {
  const { findings, facts } = await checkConfigurationSet(client, set, topicArns);
  if (facts?.destinations.some((d) => d.eventTypes.includes('SEND'))) return undefined;
  return (
    findings.map((finding) => finding.line).join('; ') ||
    `configuration set ${set} publishes no SEND events to a topic in SNS_TOPIC_ARNS`
  );
}
