import { type FetchLike, readTextCapped } from './certificate.ts';
import type { SnsSubscriptionConfirmation } from './message.ts';
import { parseSnsUrl } from './sns-url.ts';

const DEFAULT_TIMEOUT_MS = 10_000;
// The ConfirmSubscription response is a short XML document.
const MAX_RESPONSE_BYTES = 64 * 1024;

export type SnsConfirmationReason =
  | 'not_a_subscription_confirmation'
  | 'bad_subscribe_url'
  | 'request_failed';

export class SnsConfirmationError extends Error {
  readonly reason: SnsConfirmationReason;

  constructor(reason: SnsConfirmationReason, message: string, options?: ErrorOptions) {
    super(`SNS subscription not confirmed (${reason}): ${message}`, options);
    this.name = 'SnsConfirmationError';
    this.reason = reason;
  }
}

/**
 * Visits the SubscribeURL of a SubscriptionConfirmation that `createSnsVerifier().verify` has already
 * accepted. The URL is checked against the SNS host rules again anyway: this function makes an outbound
 * request, and it must never be pointed at an arbitrary host.
 */
export async function confirmSubscription(
  envelope: SnsSubscriptionConfirmation,
  options: { fetch: FetchLike; timeoutMs?: number },
): Promise<{ subscriptionArn: string | undefined }> {
  if (envelope.Type !== 'SubscriptionConfirmation') {
    throw new SnsConfirmationError('not_a_subscription_confirmation', `Type ${envelope.Type}`);
  }
  const url = parseSnsUrl(envelope.SubscribeURL);
  if (url === undefined) {
    throw new SnsConfirmationError('bad_subscribe_url', `SubscribeURL ${envelope.SubscribeURL}`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let body: string;
  try {
    // A redirect could leave the vetted host, so it is an error rather than followed.
    const response = await options.fetch(url, {
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status}`);
    }
    body = await readTextCapped(response, MAX_RESPONSE_BYTES);
  } catch (cause) {
    throw new SnsConfirmationError('request_failed', `GET ${url.origin}${url.pathname}`, { cause });
  }
  return { subscriptionArn: /<SubscriptionArn>([^<]+)<\/SubscriptionArn>/.exec(body)?.[1] };
}
