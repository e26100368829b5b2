// Publishes SES events for messages the local SES endpoint accepted, the way SES's mailbox
// simulator would, as signed SNS Notifications POSTed to a webhook (normally `mailer serve`'s
// /webhooks/ses). Wire it as `startLocalSes({ onSend: publisher.publish })`; the webhook must allow
// LOCAL_TOPIC_ARN and trust the local certificate (SNS_TRUST_LOCAL_CERT=true), never in production.
//   success@simulator.amazonses.com        Send, Delivery
//   bounce@simulator.amazonses.com         Send, Bounce (Permanent/General)
//   complaint@simulator.amazonses.com      Send, Delivery, Complaint
//   suppressionlist@simulator.amazonses.com Send, Bounce (Permanent/OnAccountSuppressionList)
//   anyone else                            Send, Delivery
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LOCAL_SIGNING_CERT_URL, loadLocalSigningKeys } from '../sns/local-signing.ts';
import type { SnsSignatureVersion } from '../sns/message.ts';
import { signSnsEnvelope } from '../sns/sign.ts';
import type { SentMessage } from './model.ts';

export const LOCAL_TOPIC_ARN = 'arn:aws:sns:us-east-1:000000000000:mailer-local-ses-events';
const ACCOUNT_ID = '000000000000';
const MTA = 'a8-70.smtp-out.amazonses.com';
const SUPPRESSED_DIAGNOSTIC =
  'Amazon SES did not send the message to this address because it is on the suppression list ' +
  'for your account.';

export interface EventPublisherOptions {
  webhookUrl: string;
  topicArn?: string;
  logger?: Logger;
  signatureVersion?: SnsSignatureVersion;
  /** Milliseconds clock for the SNS Timestamp (the verifier checks freshness against its own). */
  clock?: () => number;
  /** Deliveries per event before giving up on 5xx or network errors, like SNS's retries. */
  attempts?: number;
  fetch?: typeof globalThis.fetch;
}

export interface EventPublisher {
  /** Never throws and never blocks the SendEmail answer; delivery happens in the background. */
  publish(message: SentMessage): void;
  /** Resolves once every event published so far was delivered or given up on. */
  drain(): Promise<void>;
}

type Outcome = 'delivery' | 'bounce' | 'complaint' | 'suppressed';

function simulatorOutcome(address: string): Outcome {
  const [local = '', domain = ''] = address.toLowerCase().split('@');
  if (domain !== 'simulator.amazonses.com') return 'delivery';
  // The simulator ignores +labels (bounce+week1@...), and so do we.
  const box = local.split('+')[0];
  if (box === 'bounce') return 'bounce';
  if (box === 'complaint') return 'complaint';
  if (box === 'suppressionlist') return 'suppressed';
  return 'delivery';
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The SES events (eventType shape) the simulator would publish for one accepted message. */
export function simulateSesEvents(message: SentMessage): Record<string, unknown>[] {
  const recipients = [...message.to, ...message.cc, ...message.bcc];
  const at = message.acceptedAt;
  const fromAddress = /<([^>]+)>/.exec(message.from)?.[1] ?? message.from;
  const tags: Record<string, string[]> = {
    'ses:operation': ['SendEmail'],
    'ses:from-domain': [fromAddress.split('@')[1] ?? ''],
    'ses:caller-identity': ['mailer-local'],
    ...(message.configurationSetName
      ? { 'ses:configuration-set': [message.configurationSetName] }
      : {}),
  };
  for (const [name, value] of Object.entries(message.tags)) tags[name] = [value];
  const mail = {
    timestamp: iso(at),
    source: message.from,
    sourceArn: `arn:aws:ses:us-east-1:${ACCOUNT_ID}:identity/${tags['ses:from-domain']?.[0]}`,
    sendingAccountId: ACCOUNT_ID,
    messageId: message.messageId,
    destination: recipients,
    headersTruncated: false,
    headers: message.headers.map(({ name, value }) => ({ name, value })),
    commonHeaders: {
      from: [message.from],
      to: message.to,
      messageId: message.messageId,
      subject: message.subject,
    },
    tags,
  };
  const having = (outcome: Outcome[]) =>
    recipients.filter((r) => outcome.includes(simulatorOutcome(r)));
  const delivered = having(['delivery', 'complaint']);
  const events: Record<string, unknown>[] = [{ eventType: 'Send', mail, send: {} }];
  if (delivered.length > 0) {
    events.push({
      eventType: 'Delivery',
      mail,
      delivery: {
        timestamp: iso(at + 500),
        processingTimeMillis: 500,
        recipients: delivered,
        smtpResponse: '250 2.6.0 Message received',
        reportingMTA: MTA,
      },
    });
  }
  for (const [outcome, subType] of [
    ['bounce', 'General'],
    ['suppressed', 'OnAccountSuppressionList'],
  ] as const) {
    const bounced = having([outcome]);
    if (bounced.length === 0) continue;
    events.push({
      eventType: 'Bounce',
      mail,
      bounce: {
        feedbackId: `${message.messageId}-bounce`,
        bounceType: 'Permanent',
        bounceSubType: subType,
        bouncedRecipients: bounced.map((emailAddress) => ({
          emailAddress,
          action: 'failed',
          status: '5.1.1',
          diagnosticCode:
            outcome === 'bounce' ? 'smtp; 550 5.1.1 user unknown' : SUPPRESSED_DIAGNOSTIC,
        })),
        timestamp: iso(at + 1000),
        ...(outcome === 'bounce' ? { reportingMTA: `dsn; ${MTA}` } : {}),
      },
    });
  }
  const complained = having(['complaint']);
  if (complained.length > 0) {
    events.push({
      eventType: 'Complaint',
      mail,
      complaint: {
        feedbackId: `${message.messageId}-complaint`,
        complaintSubType: null,
        complainedRecipients: complained.map((emailAddress) => ({ emailAddress })),
        timestamp: iso(at + 2000),
        userAgent: 'Amazon SES Mailbox Simulator',
        complaintFeedbackType: 'abuse',
        arrivalDate: iso(at + 2000),
      },
    });
  }
  return events;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createEventPublisher(options: EventPublisherOptions): EventPublisher {
  const topicArn = options.topicArn ?? LOCAL_TOPIC_ARN;
  const clock = options.clock ?? Date.now;
  const attempts = options.attempts ?? 3;
  const fetch = options.fetch ?? globalThis.fetch;
  const keys = loadLocalSigningKeys();
  const pending = new Set<Promise<void>>();

  async function post(event: Record<string, unknown>): Promise<void> {
    const envelope = signSnsEnvelope(
      {
        Type: 'Notification',
        MessageId: randomUUID(),
        TopicArn: topicArn,
        Message: JSON.stringify(event),
        Timestamp: iso(clock()),
        UnsubscribeURL: `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${topicArn}:local`,
      },
      {
        privateKeyPem: (await keys).privateKeyPem,
        signingCertUrl: LOCAL_SIGNING_CERT_URL,
        version: options.signatureVersion ?? '2',
      },
    );
    const body = JSON.stringify(envelope);
    for (let attempt = 1; ; attempt++) {
      let failure: string;
      try {
        const response = await fetch(options.webhookUrl, {
          method: 'POST',
          body,
          headers: {
            'content-type': 'text/plain; charset=UTF-8',
            'x-amz-sns-message-type': 'Notification',
            'x-amz-sns-message-id': envelope.MessageId,
            'x-amz-sns-topic-arn': topicArn,
          },
        });
        await response.body?.cancel();
        // Like SNS: 2xx and 4xx end the delivery (a 4xx is the endpoint refusing it), 5xx retries.
        if (response.status < 500) {
          if (response.status >= 300) {
            options.logger?.error(
              { status: response.status, eventType: event.eventType },
              'webhook refused a local SES event',
            );
          }
          return;
        }
        failure = `HTTP ${response.status}`;
      } catch (error) {
        failure = (error as Error).message;
      }
      if (attempt >= attempts) {
        options.logger?.error(
          { failure, eventType: event.eventType, attempts },
          'local SES event not delivered',
        );
        return;
      }
      await pause(100 * 2 ** attempt);
    }
  }

  return {
    publish(message) {
      // One message's events go out in order (Send before Delivery before Bounce), as SES would.
      const delivery = (async () => {
        for (const event of simulateSesEvents(message)) await post(event);
      })()
        .catch((error: unknown) =>
          options.logger?.error({ err: error }, 'local SES event publishing failed'),
        )
        .finally(() => pending.delete(delivery));
      pending.add(delivery);
    },
    async drain() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
