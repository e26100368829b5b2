import test from 'ava';
import { hashPassword, verifyPassword } from '../../src/console/passwords.ts';
import { runCli } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';

const db = databaseForFile();
const env = () => ({ DATABASE_URL: db.url });

test('a password hash is scrypt with N=2^15, a 16-byte salt, and verifies only its password', async (t) => {
  const hash = await hashPassword('correct horse battery');
  const [scheme, n, r, p, salt, key] = hash.split('$');
  t.deepEqual([scheme, n, r, p], ['scrypt', '32768', '8', '1']);
  t.is(Buffer.from(salt ?? '', 'base64url').length, 16);
  t.is(Buffer.from(key ?? '', 'base64url').length, 32);
  t.true(await verifyPassword('correct horse battery', hash));
  t.false(await verifyPassword('correct horse batterY', hash));
  t.false(await verifyPassword('correct horse battery', 'plain text'));
  t.not(await hashPassword('correct horse battery'), hash, 'a fresh salt each time');
});

test('user add reads the password from stdin, stores only its hash and records the act', async (t) => {
  const added = await runCli(
    ['console', 'user', 'add', 'alice', '--role', 'operator', '--can-queue'],
    env(),
    { input: 'a long enough secret\n' },
  );
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /console user alice added: operator, may queue campaigns/);
  t.notRegex(added.stdout + added.stderr, /long enough secret/);
  const { rows } = await db.pool.query(
    'select role, can_queue, password_hash from console_users where username = $1',
    ['alice'],
  );
  t.like(rows[0], { role: 'operator', can_queue: true });
  t.true(await verifyPassword('a long enough secret', rows[0].password_hash));
  const actions = await db.pool.query(
    `select details, actor from operator_actions
      where action = 'console_user_add' and details->>'username' = 'alice'`,
  );
  t.deepEqual(actions.rows[0]?.details, {
    username: 'alice',
    role: 'operator',
    can_queue: true,
    password: true,
  });
  const { rows: login } = await db.pool.query<{ user: string }>('select session_user as user');
  t.is(actions.rows[0]?.actor, login[0]?.user, 'the CLI records its database login');
  t.notRegex(JSON.stringify(actions.rows), /scrypt/);

  const again = await runCli(['console', 'user', 'add', 'alice', '--role', 'viewer'], env(), {
    input: 'another long secret\n',
  });
  t.is(again.code, 1);
  t.regex(again.stderr, /console_users_pkey|already exists/);
});

test('user add refuses a short password, a bad role and a bad name', async (t) => {
  const short = await runCli(['console', 'user', 'add', 'bob', '--role', 'viewer'], env(), {
    input: 'short\n',
  });
  t.is(short.code, 2);
  t.regex(short.stderr, /at least 12 characters/);
  const badRole = await runCli(['console', 'user', 'add', 'bob', '--role', 'admin'], env());
  t.is(badRole.code, 2);
  t.regex(badRole.stderr, /viewer or operator/);
  const badName = await runCli(['console', 'user', 'add', 'Bob Smith', '--role', 'viewer'], env());
  t.is(badName.code, 2);
  const { rows } = await db.pool.query(
    `select count(*)::int as n from console_users where username like 'bob%'`,
  );
  t.is(rows[0].n, 0);
});

test('user list shows users; remove deletes one with its sessions and records it', async (t) => {
  const added = await runCli(
    ['console', 'user', 'add', 'sso.carol', '--role', 'viewer', '--no-password'],
    env(),
  );
  t.is(added.code, 0, added.stderr);
  await db.pool.query(
    `insert into console_sessions (session_id, username, csrf_token, expires_at)
     values (repeat('a', 64), 'sso.carol', 'x', now() + interval '1 hour')`,
  );
  const list = await runCli(['console', 'user', 'list'], env());
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /sso\.carol\s+viewer\s+no\s+no \(sso\)/);
  const json = JSON.parse((await runCli(['console', 'user', 'list', '--json'], env())).stdout);
  t.true(json.some((u: { username: string }) => u.username === 'sso.carol'));

  const removed = await runCli(['console', 'user', 'remove', 'sso.carol'], env());
  t.is(removed.code, 0, removed.stderr);
  const sessions = await db.pool.query(`select count(*)::int as n from console_sessions`);
  t.is(sessions.rows[0].n, 0);
  const recorded = await db.pool.query(
    `select count(*)::int as n from operator_actions where action = 'console_user_remove'`,
  );
  t.is(recorded.rows[0].n, 1);
  const missing = await runCli(['console', 'user', 'remove', 'sso.carol'], env());
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no console user sso\.carol/);
});
