// Typed callers of the unsubscribe SQL (the baseline migration's section "Suppression and
// unsubscribe"; today's bodies in migrations/schema.sql).
import type { Db } from '../db/pool.ts';

// A token is honoured whatever its age (its mail may sit in an inbox for months, and it only ever
// unsubscribes its own address): 'expired' only tells the confirmation page to say the link is old.
export type UnsubscribeOutcome = 'unsubscribed' | 'already' | 'unknown';
export type TokenStatus = 'valid' | 'already' | 'expired' | 'unknown';
/** one_click: the RFC 8058 POST a mail client sends; form: the button on our confirmation page. */
export type UnsubscribeMethod = 'one_click' | 'form';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Tokens are UUIDs (version 7, mostly random); anything else is a broken link, answered without
 * a query. */
export function isTokenShaped(value: string): boolean {
  return UUID.test(value);
}

/** What the link would do, changing nothing (for GET, which link scanners follow). */
export async function unsubscribeTokenStatus(
  db: Db,
  tokenId: string,
): Promise<{ outcome: TokenStatus; email: string | null }> {
  const { rows } = await db.query<{ outcome: TokenStatus; email: string | null }>(
    'select * from public.unsubscribe_token_status($1)',
    [tokenId],
  );
  return rows[0] ?? { outcome: 'unknown', email: null };
}

export async function unsubscribeByToken(
  db: Db,
  tokenId: string,
  method: UnsubscribeMethod,
): Promise<{ outcome: UnsubscribeOutcome; email: string | null }> {
  const { rows } = await db.query<{ outcome: UnsubscribeOutcome; email: string | null }>(
    'select * from public.unsubscribe_by_token($1, $2)',
    [tokenId, method],
  );
  return rows[0] ?? { outcome: 'unknown', email: null };
}
