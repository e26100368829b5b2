import { loadLocalSigningKeys } from '../../src/sns/local-signing.ts';
import type {
  SnsNotification,
  SnsSignatureVersion,
  SnsSignedFields,
  SnsSubscriptionConfirmation,
  SnsUnsubscribeConfirmation,
} from '../../src/sns/message.ts';
import { signSnsEnvelope } from '../../src/sns/sign.ts';
import {
  createSnsVerifier,
  SnsVerificationError,
  type SnsVerifierOptions,
} from '../../src/sns/verify.ts';

export const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:mailer-ses-events';
export const CERT_URL = 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem';
export const NOW = Date.parse('2030-06-01T12:00:00.000Z');
export const keys = await loadLocalSigningKeys();

type Unsigned<T> = Omit<T, 'SignatureVersion' | 'Signature' | 'SigningCertURL'>;

export function notificationFields(
  overrides: Partial<Unsigned<SnsNotification>> = {},
): Unsigned<SnsNotification> {
  return {
    Type: 'Notification',
    MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
    TopicArn: TOPIC_ARN,
    Subject: 'Amazon SES Email Event Notification',
    Message: JSON.stringify({ eventType: 'Delivery', mail: { messageId: 'ses-0001' } }),
    Timestamp: new Date(NOW - 1000).toISOString(),
    UnsubscribeURL: `https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${TOPIC_ARN}:1`,
    ...overrides,
  };
}

export function confirmationFields<
  T extends 'SubscriptionConfirmation' | 'UnsubscribeConfirmation',
>(
  type: T,
  overrides: Partial<Unsigned<SnsSubscriptionConfirmation>> = {},
): Unsigned<SnsSubscriptionConfirmation | SnsUnsubscribeConfirmation> & { Type: T } {
  return {
    MessageId: '165545c9-2a5c-472c-8df2-7ff2be2b3b1b',
    TopicArn: TOPIC_ARN,
    Message: `You have chosen to subscribe to the topic ${TOPIC_ARN}.`,
    Timestamp: new Date(NOW - 1000).toISOString(),
    SubscribeURL: `https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${TOPIC_ARN}&Token=2336412f37`,
    Token: '2336412f37',
    ...overrides,
    Type: type,
  };
}

export function sign<F extends SnsSignedFields>(
  fields: F,
  options: { version?: SnsSignatureVersion; privateKeyPem?: string; certUrl?: string } = {},
) {
  return signSnsEnvelope(fields, {
    privateKeyPem: options.privateKeyPem ?? keys.privateKeyPem,
    signingCertUrl: options.certUrl ?? CERT_URL,
    version: options.version ?? '2',
  });
}

/** A certificate fetcher serving the local certificate at the given URLs, recording every call. */
export function createRecordingFetcher(servedUrls: readonly string[] = [CERT_URL]) {
  const calls: string[] = [];
  const fetchCertificate = async (url: URL): Promise<string> => {
    calls.push(url.href);
    if (!servedUrls.includes(url.href)) throw new Error(`404 ${url.href}`);
    return keys.certPem;
  };
  return { calls, fetchCertificate };
}

export function createTestVerifier(overrides: Partial<SnsVerifierOptions> = {}) {
  const fetcher = createRecordingFetcher();
  const verifier = createSnsVerifier({
    allowedTopicArns: [TOPIC_ARN],
    now: () => NOW,
    fetchCertificate: fetcher.fetchCertificate,
    ...overrides,
  });
  return { verifier, calls: fetcher.calls };
}

/** Awaits a verification expected to fail and returns its reason; fails the test on any other outcome. */
export async function rejectionReason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SnsVerificationError) return error.reason;
    throw error;
  }
  return 'accepted';
}
