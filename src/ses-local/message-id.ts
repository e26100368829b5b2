import { randomUUID } from 'node:crypto';

/**
 * An SES-shaped message id: `0100` + the acceptance time as 12 hex digits + a random UUID +
 * `-000000`. The UUID alone makes ids unique; the time prefix keeps them sortable by acceptance
 * like the real ones.
 */
export function createMessageId(acceptedAtMs: number): string {
  return `0100${acceptedAtMs.toString(16).padStart(12, '0')}-${randomUUID()}-000000`;
}

export const MESSAGE_ID_PATTERN =
  /^0100([0-9a-f]{12})-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-000000$/;
