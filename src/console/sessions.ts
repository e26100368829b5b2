// Console sessions in PostgreSQL (console_sessions). The cookie carries a random 32-byte token;
// the table keeps only its SHA-256, so reading the table (a backup, a replica) logs nobody in.
// Each request moves the expiry to 12 hours after itself (idle timeout); logout deletes the row.
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db/pool.ts';
import type { ConsoleUser } from './context.ts';

export const SESSION_IDLE_HOURS = 12;

export function sessionId(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

export interface Session {
  user: ConsoleUser;
  csrfToken: string;
}

interface SessionRow {
  username: string;
  role: 'viewer' | 'operator';
  can_queue: boolean;
  csrf_token: string;
}

function toSession(row: SessionRow): Session {
  return {
    user: { username: row.username, role: row.role, canQueue: row.can_queue },
    csrfToken: row.csrf_token,
  };
}

/**
 * The session of a cookie's token, or undefined (none, expired, user disabled or removed).
 * `touch` moves the idle expiry; the live updates of an open page do not, so a tab left open
 * does not keep a session alive for ever.
 */
export async function loadSession(
  db: Db,
  token: string,
  touch: boolean,
): Promise<Session | undefined> {
  // One round trip: the update returns the user's current role, so a role changed in the
  // database applies on the next request.
  const { rows } = await db.query<SessionRow>(
    `update public.console_sessions s
        set last_seen_at = case when $2 then now() else s.last_seen_at end,
            expires_at = case when $2 then now() + make_interval(hours => $3) else s.expires_at end
       from public.console_users u
      where s.session_id = $1 and s.expires_at > now()
        and u.username = s.username and u.disabled_at is null
      returning u.username, u.role, u.can_queue, s.csrf_token`,
    [sessionId(token), touch, SESSION_IDLE_HOURS],
  );
  return rows[0] ? toSession(rows[0]) : undefined;
}

/** Starts a session for a user who proved who they are; returns the cookie's token. */
export async function createSession(
  db: Db,
  username: string,
): Promise<{ token: string; session: Session } | undefined> {
  const token = randomToken();
  // Expired sessions go here, at the rare moment someone logs in, rather than on every request.
  await db.query('delete from public.console_sessions where expires_at < now()');
  const { rows } = await db.query<SessionRow>(
    `with u as (select username, role, can_queue from public.console_users
                 where username = $4 and disabled_at is null),
          s as (insert into public.console_sessions (session_id, username, csrf_token, expires_at)
                select $1, u.username, $2, now() + make_interval(hours => $3) from u
                returning username, csrf_token)
     select s.username, u.role, u.can_queue, s.csrf_token from s join u using (username)`,
    [sessionId(token), randomToken(), SESSION_IDLE_HOURS, username],
  );
  return rows[0] ? { token, session: toSession(rows[0]) } : undefined;
}

export async function deleteSession(db: Db, token: string): Promise<void> {
  await db.query('delete from public.console_sessions where session_id = $1', [sessionId(token)]);
}

export interface LoginCandidate {
  username: string;
  password_hash: string | null;
}

export async function findLoginUser(db: Db, username: string): Promise<LoginCandidate | undefined> {
  const { rows } = await db.query<LoginCandidate>(
    `select username, password_hash from public.console_users
      where username = $1 and disabled_at is null`,
    [username],
  );
  return rows[0];
}
