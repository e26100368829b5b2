export type SnsVerificationReason =
  | 'bad_json'
  | 'malformed'
  | 'unsupported_version'
  | 'topic_not_allowed'
  | 'stale'
  | 'bad_cert_url'
  | 'cert_fetch_failed'
  | 'bad_certificate'
  | 'bad_signature';

/**
 * Every way an incoming SNS message can be refused. The HTTP layer maps any instance to a 4xx and stores
 * nothing; `reason` is a stable code for logs and metrics, the message is for humans.
 */
export class SnsVerificationError extends Error {
  readonly reason: SnsVerificationReason;

  constructor(reason: SnsVerificationReason, message: string, options?: ErrorOptions) {
    super(`SNS message rejected (${reason}): ${message}`, options);
    this.name = 'SnsVerificationError';
    this.reason = reason;
  }
}
