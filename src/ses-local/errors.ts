// Errors in the restJson1 shape: the SDK reads the name from the x-amzn-ErrorType header first,
// then the body's `code`/`__type`, and the text from `message`. A name the SESv2 model knows
// (MessageRejected, TooManyRequestsException, ...) becomes that exception class with the $fault
// from the model; any other name becomes a generic SESv2ServiceException whose $fault follows
// the HTTP status (>= 500 -> 'server').

import type { z } from 'zod';

export class SesApiError extends Error {
  readonly status: number;
  readonly errorType: string;

  constructor(status: number, errorType: string, message: string) {
    super(message);
    this.name = 'SesApiError';
    this.status = status;
    this.errorType = errorType;
  }
}

export const badRequest = (message: string): SesApiError =>
  new SesApiError(400, 'BadRequestException', message);

/** A request that failed its schema, named by the first offending member. */
export function validationError(error: z.ZodError): SesApiError {
  const issue = error.issues[0];
  const at = issue && issue.path.length > 0 ? issue.path.join('.') : 'request';
  return badRequest(`Invalid value at ${at}: ${issue?.message ?? 'invalid request'}`);
}

export const notFound = (message: string): SesApiError =>
  new SesApiError(404, 'NotFoundException', message);

export const alreadyExists = (message: string): SesApiError =>
  new SesApiError(400, 'AlreadyExistsException', message);

export const messageRejected = (message: string): SesApiError =>
  new SesApiError(400, 'MessageRejected', message);

export const accessDenied = (action: string): SesApiError =>
  new SesApiError(
    403,
    'AccessDeniedException',
    `User: arn:aws:iam::000000000000:user/mailer is not authorized to perform: ${action}`,
  );

/**
 * A proxy or load balancer's answer in front of SES (502 Bad Gateway, 504 Gateway Timeout): an
 * HTML page with no SES request id and no error type, as nginx or an ALB would send.
 */
export class GatewayError extends Error {
  readonly status: 502 | 504;

  constructor(status: 502 | 504) {
    super(status === 502 ? 'Bad Gateway' : 'Gateway Timeout');
    this.name = 'GatewayError';
    this.status = status;
  }

  html(): string {
    return `<html><head><title>${this.status} ${this.message}</title></head><body><center><h1>${this.status} ${this.message}</h1></center></body></html>\n`;
  }
}

export const sendingPaused = (): SesApiError =>
  new SesApiError(400, 'SendingPausedException', 'Sending is paused for this account.');

export const accountSuspended = (): SesApiError =>
  new SesApiError(400, 'AccountSuspendedException', 'Your account has been suspended.');

export const tooManyRequests = (): SesApiError =>
  new SesApiError(429, 'TooManyRequestsException', 'Maximum sending rate exceeded.');

export const dailyQuotaExceeded = (): SesApiError =>
  new SesApiError(400, 'LimitExceededException', 'Daily message quota exceeded.');

export const payloadTooLarge = (limitBytes: number): SesApiError =>
  new SesApiError(413, 'PayloadTooLargeException', `Request body exceeds ${limitBytes} bytes.`);

export const unknownOperation = (method: string, path: string): SesApiError =>
  new SesApiError(
    404,
    'UnknownOperationException',
    `Local SES has no route for ${method} ${path}.`,
  );

/** The failures that real SES answers from its front end rather than from the SES model. */
export function injectedFailure(status: 429 | 500 | 503): SesApiError {
  if (status === 429) return tooManyRequests();
  if (status === 500) return new SesApiError(500, 'InternalFailure', 'Injected internal failure.');
  return new SesApiError(503, 'ServiceUnavailable', 'Injected service unavailability.');
}
