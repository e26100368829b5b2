// POST /webhooks/ses: Amazon SNS HTTP(S) deliveries of SES events. Every message is verified
// (src/sns) before anything is trusted or stored. SNS retries on 5xx and timeouts but never on 4xx,
// so: forged, stale or foreign messages get 4xx and are stored nowhere; anything that is our fault
// or passing (database down, a signing certificate we could not download) gets 5xx, so SNS retries.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { recordSnsNotifications } from '../events/queries.ts';
import { coalesce } from '../queries/coalesce.ts';
import { confirmSubscription, SnsConfirmationError } from '../sns/confirm.ts';
import { LOCAL_SIGNING_CERT_URL, loadLocalSigningKeys } from '../sns/local-signing.ts';
import type { SnsNotification } from '../sns/message.ts';
import { createSnsVerifier, SnsVerificationError, type SnsVerifier } from '../sns/verify.ts';
import { allowOnly } from './app.ts';
import type { HttpDeps } from './deps.ts';
import { sendText } from './io.ts';

// SNS messages are at most 256 KiB, but the envelope carries the SES event as an escaped JSON string
// (every quote becomes \"), so the body can be noticeably larger than the message.
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;

// Problems with the request itself; the rest of the verification failures are refusals (403).
const BAD_REQUEST = new Set(['bad_json', 'malformed', 'unsupported_version']);

async function createVerifier(deps: HttpDeps): Promise<SnsVerifier | undefined> {
  const { config, logger } = deps;
  if (config.sns.topicArns.length === 0) {
    logger.warn('SNS_TOPIC_ARNS is empty: POST /webhooks/ses refuses every message (503)');
    return undefined;
  }
  let localCertificate: { url: string; pem: string } | undefined;
  if (config.sns.trustLocalCert) {
    logger.warn(
      'SNS_TRUST_LOCAL_CERT is set: messages signed with the committed local key are accepted. ' +
        'Never set it in production.',
    );
    localCertificate = { url: LOCAL_SIGNING_CERT_URL, pem: (await loadLocalSigningKeys()).certPem };
  }
  return createSnsVerifier({
    allowedTopicArns: config.sns.topicArns,
    maxAgeMs: config.snsMaxAgeSeconds * 1000,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.fetchCertificate ? { fetchCertificate: deps.fetchCertificate } : {}),
    ...(localCertificate ? { localCertificate } : {}),
  });
}

/** POST /webhooks/ses on `app`; a body over the limit gets app.ts's 413. */
export async function registerSesWebhook(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  const { pool, logger } = deps;
  const verifier = await createVerifier(deps);
  const fetch = deps.fetch ?? globalThis.fetch;
  // Notifications arriving together are stored together: one commit (and one NOTIFY) per batch.
  const recordNotification = coalesce(
    (envelopes: SnsNotification[]) => recordSnsNotifications(pool, envelopes),
    { maxBatch: 200, maxInFlight: 2 },
  );

  async function handleSesWebhook(request: FastifyRequest, reply: FastifyReply) {
    // Whatever its Content-Type (SNS says text/plain), the body arrives as text (app.ts).
    const body = typeof request.body === 'string' ? request.body : '';
    if (verifier === undefined) return sendText(reply, 503, 'no SNS topic is configured');

    let envelope: Awaited<ReturnType<SnsVerifier['verify']>>;
    try {
      envelope = await verifier.verify(body);
    } catch (error) {
      if (!(error instanceof SnsVerificationError)) throw error;
      const status =
        error.reason === 'cert_fetch_failed' ? 503 : BAD_REQUEST.has(error.reason) ? 400 : 403;
      logger.warn(
        { reason: error.reason, status, remote: request.socket.remoteAddress, err: error },
        'SNS message rejected',
      );
      return sendText(reply, status, `rejected: ${error.reason}`);
    }

    const log = logger.child({ sns_message_id: envelope.MessageId, topic_arn: envelope.TopicArn });
    if (envelope.Type === 'Notification') {
      let fresh: boolean;
      try {
        fresh = await recordNotification(envelope);
      } catch (error) {
        log.error({ err: error }, 'SNS notification not stored (database); SNS will retry');
        return sendText(reply, 503, 'temporarily unavailable');
      }
      log.debug(fresh ? 'SNS notification stored' : 'SNS redelivery ignored');
      return sendText(reply, 200, fresh ? 'accepted' : 'duplicate');
    }
    if (envelope.Type === 'SubscriptionConfirmation') {
      try {
        const { subscriptionArn } = await confirmSubscription(envelope, { fetch });
        log.info({ subscriptionArn }, 'SNS subscription confirmed');
        return sendText(reply, 200, 'subscription confirmed');
      } catch (error) {
        if (!(error instanceof SnsConfirmationError)) throw error;
        const status = error.reason === 'request_failed' ? 502 : 400;
        log.warn({ err: error, reason: error.reason }, 'SNS subscription not confirmed');
        return sendText(reply, status, `subscription not confirmed: ${error.reason}`);
      }
    }
    // UnsubscribeConfirmation: someone unsubscribed this endpoint; events stop until resubscribed.
    log.warn(
      'SNS says this endpoint was unsubscribed from the topic; SES events will stop arriving',
    );
    return sendText(reply, 200, 'noted');
  }

  app.post('/webhooks/ses', { bodyLimit: MAX_WEBHOOK_BODY_BYTES }, handleSesWebhook);
  allowOnly(app, '/webhooks/ses', ['POST']);
}
