// What a failed SendEmail means, judged by its scope. SES has no idempotency key, so the only safe
// retry is one where SES certainly did not accept the message; anything else is in doubt.
//
//   recipient:     SES refused this recipient's message (MessageRejected, an invalid address):
//                  the recipient fails, reason recorded.
//   configuration: the account or the setup cannot send (access denied, bad or expired
//                  credentials, a missing template or configuration set, an unverified From
//                  identity, sending paused, account suspended, daily quota, a BadRequest about a
//                  setting): the campaign pauses with the reason, the recipient goes back to
//                  pending, nobody fails. Resuming after the fix sends them.
//   outage:        SES certainly did not take the message and will later (refused connection,
//                  unknown host, throttling): the recipient goes back to pending and the process
//                  backs off as a whole (src/ses/circuit-breaker.ts).
//   ambiguous:     the answer does not prove that SES did not accept it (timeout, reset
//                  connection, 500 InternalFailure, 503, a 502/504 from a proxy): in doubt, never
//                  resent automatically; it also backs the process off.
//
// Why each "certainly not accepted" is certain:
// - Throttling (TooManyRequestsException, HTTP 429; ThrottlingException): "Amazon SES drops the
//   message and doesn't attempt to redeliver it" when the maximum sending rate is exceeded, and
//   the API answers with a throttling error (Amazon SES Developer Guide, "Errors related to the
//   sending quotas for your Amazon SES account",
//   https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html; the AWS
//   Messaging blog, "How to handle a 'Throttling - Maximum sending rate exceeded' error": such a
//   request "can be retried at a later time").
// - The SESv2 SendEmail errors (API reference, SendEmail, "Errors",
//   https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html) and the common
//   errors (https://docs.aws.amazon.com/ses/latest/APIReference-V2/CommonErrors.html) are
//   answers to a request that was refused: MessageRejected ("the message can't be sent"),
//   SendingPausedException, AccountSuspendedException, MailFromDomainNotVerifiedException,
//   NotFoundException, BadRequestException, LimitExceededException, AccessDeniedException,
//   ExpiredTokenException, IncompleteSignature, InvalidClientTokenId, UnrecognizedClientException,
//   MissingAuthenticationToken, NotAuthorized, SignatureDoesNotMatch: each is a 4xx naming why
//   nothing was sent.
// - ECONNREFUSED, ENOTFOUND, EAI_AGAIN, EHOSTUNREACH, ENETUNREACH: the TCP connection (or the
//   name lookup before it) failed, so not one byte of the request reached SES.
// Not certain, so in doubt: InternalFailure (500: "the request processing has failed because of
// an unknown error", after processing may have begun), ServiceUnavailable (503), any 5xx without
// an SES error name (a proxy or load balancer answering for a request that may have gone
// through), timeouts and reset connections.

export type SendErrorScope = 'recipient' | 'configuration' | 'outage' | 'ambiguous';

const THROTTLED = new Set(['TooManyRequestsException', 'ThrottlingException', 'Throttling']);

const CONFIGURATION = new Set([
  'AccessDeniedException',
  'AccessDenied',
  'ExpiredTokenException',
  'ExpiredToken',
  'IncompleteSignature',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'MissingAuthenticationToken',
  'NotAuthorized',
  'OptInRequired',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'NotFoundException',
  'MailFromDomainNotVerifiedException',
  'SendingPausedException',
  'AccountSuspendedException',
  'LimitExceededException',
  // The SDK's own errors before a request is made: no credentials, no region.
  'CredentialsProviderError',
]);

// Errors raised before a single byte of the request could reach SES.
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

// A BadRequest about the recipient's address (SES's own wording for an unusable address) fails
// that recipient; any other BadRequest names a setting (a configuration set, a template, the
// From address, a header) and pauses the campaign. So does one about the From address.
const ADDRESS_PROBLEM =
  /illegal address|missing final '@domain'|local address|domain (contains|starts|ends)|invalid (email|to|destination|recipient)|recipient address|email address is not valid/i;

// In the SES sandbox, and for an unverified From, SendEmail answers MessageRejected "Email address
// is not verified. The following identities failed the check in region ...: <addresses>". When
// the From address is among them the fault is the setup's, not the recipient's.
const NOT_VERIFIED = /not verified/i;

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

export function classifySendError(error: unknown, from?: string): SendErrorScope {
  const e = (error ?? {}) as ErrorShape;
  const name = typeof e.name === 'string' ? e.name : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (THROTTLED.has(name)) return 'outage';
  if (CONFIGURATION.has(name)) return 'configuration';
  const fromAddress = from ? bareAddress(from) : '';
  const fromNamed = fromAddress !== '' && message.toLowerCase().includes(fromAddress);
  if (name === 'MessageRejected') {
    return NOT_VERIFIED.test(message) && fromNamed ? 'configuration' : 'recipient';
  }
  if (name === 'BadRequestException') {
    return ADDRESS_PROBLEM.test(message) && !fromNamed ? 'recipient' : 'configuration';
  }
  const status = e.$metadata?.httpStatusCode;
  if (status === 429) return 'outage';
  // Any other 4xx refused the request as it was made: a setting to fix, not this recipient.
  if (typeof status === 'number' && status >= 400 && status < 500) return 'configuration';
  // A 5xx, or a 2xx/3xx whose body could not be read: SES may have accepted the message.
  if (typeof status === 'number') return 'ambiguous';
  if (notSent(e) || notSent(e.cause as ErrorShape | undefined)) return 'outage';
  return 'ambiguous';
}

function notSent(e: ErrorShape | undefined): boolean {
  return typeof e?.code === 'string' && NOT_SENT_CODES.has(e.code);
}

function bareAddress(from: string): string {
  const match = /<([^>]+)>/.exec(from);
  return (match?.[1] ?? from).trim().toLowerCase();
}

export function errorName(error: unknown): string {
  const e = (error ?? {}) as ErrorShape;
  return typeof e.name === 'string' ? e.name : 'Error';
}

/** The error as recorded on a recipient: name, message and the HTTP status when there was one. */
export function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const status = (error as ErrorShape).$metadata?.httpStatusCode;
  return `${error.name}: ${error.message}${status ? ` (HTTP ${status})` : ''}`;
}
