// What a failed SendEmail means for the recipient. SES has no idempotency key, so the only safe
// retry is one where SES certainly did not accept the message.
//   released:       SES said no before accepting (throttled, 5xx, connection refused): retry later.
//   rejected:       SES refused this message for good: the recipient fails, reason recorded.
//   account_paused: the account cannot send at all: pause campaigns, retry nothing now.
//   unknown:        we cannot tell whether SES accepted it (timeout, reset): in_doubt, never resent.
export type SendErrorKind = 'released' | 'rejected' | 'account_paused' | 'unknown';

const THROTTLED = new Set([
  'TooManyRequestsException',
  'LimitExceededException',
  'ThrottlingException',
  'Throttling',
]);
const REJECTED = new Set([
  'MessageRejected',
  'BadRequestException',
  'MailFromDomainNotVerifiedException',
  'NotFoundException',
]);
const ACCOUNT = new Set(['SendingPausedException', 'AccountSuspendedException']);
// Errors raised before a single byte of the request could reach SES.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

export function classifySendError(error: unknown): SendErrorKind {
  const e = (error ?? {}) as ErrorShape;
  const name = typeof e.name === 'string' ? e.name : '';
  if (THROTTLED.has(name)) return 'released';
  if (ACCOUNT.has(name)) return 'account_paused';
  if (REJECTED.has(name)) return 'rejected';
  const status = e.$metadata?.httpStatusCode;
  // An HTTP answer of 5xx is SES telling us it did not process the request.
  if (typeof status === 'number' && status >= 500) return 'released';
  if (typeof status === 'number' && status === 429) return 'released';
  if (typeof status === 'number' && status >= 400) return 'rejected';
  const code = typeof e.code === 'string' ? e.code : '';
  if (NOT_SENT_CODES.has(code)) return 'released';
  const cause = e.cause as ErrorShape | undefined;
  if (cause && typeof cause.code === 'string' && NOT_SENT_CODES.has(cause.code)) return 'released';
  return 'unknown';
}

export function errorName(error: unknown): string {
  const e = (error ?? {}) as ErrorShape;
  return typeof e.name === 'string' ? e.name : 'Error';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
