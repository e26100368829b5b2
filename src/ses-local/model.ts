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
  /** Added before answering any SES API call. */
  latencyMs?: number;
  /** Holds the response this long, to provoke client timeouts; the call is still processed after. */
  hangMs?: number;
}
