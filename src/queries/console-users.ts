// Console users (migrations/current/5-console.sql): added and removed through the operator
// functions, which record the act in operator_actions; read by the console and the CLI.
import type { Db } from '../db/pool.ts';

export interface ConsoleUserRow {
  username: string;
  role: 'viewer' | 'operator';
  can_queue: boolean;
  has_password: boolean;
  created_at: Date;
  disabled_at: Date | null;
  last_seen_at: Date | null;
}

export async function addConsoleUser(
  db: Db,
  user: { username: string; role: string; canQueue: boolean; passwordHash: string | null },
): Promise<void> {
  await db.query('select public.console_user_add($1, $2, $3, $4)', [
    user.username,
    user.role,
    user.canQueue,
    user.passwordHash,
  ]);
}

export async function removeConsoleUser(db: Db, username: string): Promise<boolean> {
  const { rows } = await db.query<{ removed: boolean }>(
    'select public.console_user_remove($1) as removed',
    [username],
  );
  return rows[0]?.removed === true;
}

export async function listConsoleUsers(db: Db): Promise<ConsoleUserRow[]> {
  const { rows } = await db.query<ConsoleUserRow>(
    `select u.username, u.role, u.can_queue, u.password_hash is not null as has_password,
            u.created_at, u.disabled_at,
            (select max(s.last_seen_at) from public.console_sessions s
              where s.username = u.username) as last_seen_at
       from public.console_users u
      order by u.username`,
  );
  return rows;
}
