// Shapes shared by the local SES modules; server.ts re-exports them as the public API.

export interface SentMessage {
  messageId: string;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  text?: string;
  html?: string;
  headers: Array<{ name: string; value: string }>;
  templateName?: string;
  templateData?: Record<string, unknown>;
  tags: Record<string, string>;
  configurationSetName?: string;
  /** Decoded MIME source, only for Content.Raw sends. */
  raw?: string;
  /** Date.now()-style milliseconds at which the send was accepted. */
  acceptedAt: number;
  /** The access key id the request was signed with (SigV4 Credential=), unchecked. */
  accessKeyId?: string;
}

export type FaultStatus = 429 | 500 | 503;

export interface Faults {
  /** Any recipient matching (case-insensitive) -> 400 MessageRejected. */
  rejectAddresses?: string[];
  /** -> SendingPausedException. */
  sendingPaused?: boolean;
  /** -> AccountSuspendedException. */
  accountSuspended?: boolean;
  /** The next `count` SendEmail calls fail with `status`. */
  failNext?: { status: FaultStatus; count: number };
  /** A random `fraction` of SendEmail calls fail with `status`. */
  errorRate?: { status: FaultStatus; fraction: number };
  /** -> 403 AccessDeniedException for SendEmail (an IAM policy without ses:SendEmail). */
  accessDenied?: boolean;
  /**
   * The next `count` SendEmail calls are accepted (recorded, counted, events published) and then
   * answered with `status` as if the answer was lost: 500 InternalFailure from SES, or 502/504
   * with an HTML body and no request id, as a proxy or load balancer answers.
   */
  failAfterAccept?: { status: 500 | 502 | 504; count: number };
  /** Added before answering any SES API call. */
  latencyMs?: number;
  /** Holds the response this long, to provoke client timeouts; the call is still processed after. */
  hangMs?: number;
}
