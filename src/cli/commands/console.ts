// `mailer console user add|remove|list`: the people who may use the browser console. A password
// is read from stdin (piped) or a prompt that does not echo, never from a flag (flags end up in
// shell history and `ps`) and never logged; it is stored as a scrypt hash (src/console/passwords.ts).
// Adding and removing are recorded in operator_actions by the SQL functions.
import { type Command, InvalidArgumentError } from 'commander';
import { UsageError } from '../context.ts';
import { formatTime, orFail, print, printJson, table, withDatabase } from '../output.ts';

const MIN_PASSWORD_LENGTH = 12;
const USERNAME = /^[a-z0-9][a-z0-9._@-]{0,63}$/;

function username(value: string): string {
  if (!USERNAME.test(value)) {
    throw new InvalidArgumentError(
      'a username is 1-64 lowercase letters, digits and . _ @ - (starting with a letter or digit)',
    );
  }
  return value;
}

function role(value: string): string {
  if (value !== 'viewer' && value !== 'operator') {
    throw new InvalidArgumentError('--role must be viewer or operator');
  }
  return value;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// A prompt on the terminal with echo off: the characters typed are read in raw mode and never
// written back.
function prompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const onData = (data: Buffer) => {
      for (const c of data.toString('utf8')) {
        if (c === '\r' || c === '\n') {
          done();
          resolve(value);
          return;
        }
        if (c === '\u0003') {
          done();
          reject(new UsageError('cancelled'));
          return;
        }
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

async function readPassword(): Promise<string> {
  let password: string;
  if (process.stdin.isTTY) {
    password = await prompt('password: ');
    if ((await prompt('again: ')) !== password) throw new UsageError('the passwords differ');
  } else {
    // Piped: the first line is the password (a trailing newline is not part of it).
    password = (await readStdin()).split(/\r?\n/)[0] ?? '';
  }
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new UsageError(`a console password has at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  return password;
}

async function addAction(
  name: string,
  flags: { role: string; canQueue?: boolean; password: boolean },
): Promise<void> {
  const [{ hashPassword }, { addConsoleUser }] = await Promise.all([
    import('../../console/passwords.ts'),
    import('../../queries/console-users.ts'),
  ]);
  // --no-password: a user who logs in only through the single-sign-on proxy.
  const passwordHash = flags.password ? await hashPassword(await readPassword()) : null;
  await withDatabase(async (pool, ctx) => {
    const added = await orFail(async () => {
      await addConsoleUser(pool, {
        username: name,
        role: flags.role,
        canQueue: flags.canQueue === true,
        passwordHash,
      });
      return true;
    });
    if (!added) return;
    ctx.logger.info({ username: name, role: flags.role }, 'console user added');
    print(
      `console user ${name} added: ${flags.role}${flags.canQueue ? ', may queue campaigns' : ''}` +
        `${passwordHash ? '' : ', no password (single sign-on only)'}; recorded in operator_actions`,
    );
  });
}

async function removeAction(name: string): Promise<void> {
  const { removeConsoleUser } = await import('../../queries/console-users.ts');
  await withDatabase(async (pool, ctx) => {
    if (!(await removeConsoleUser(pool, name))) {
      process.stderr.write(`mailer: no console user ${name}\n`);
      process.exitCode = 1;
      return;
    }
    ctx.logger.info({ username: name }, 'console user removed');
    print(`console user ${name} removed, with their sessions; recorded in operator_actions`);
  });
}

async function listAction(flags: { json?: boolean }): Promise<void> {
  const { listConsoleUsers } = await import('../../queries/console-users.ts');
  await withDatabase(async (pool) => {
    const users = await listConsoleUsers(pool);
    if (flags.json) return printJson(users);
    if (users.length === 0) return print('no console users (mailer console user add NAME)');
    print(
      table(
        ['username', 'role', 'may queue', 'password', 'added', 'last seen', 'disabled'],
        users.map((u) => [
          u.username,
          u.role,
          u.can_queue ? 'yes' : 'no',
          u.has_password ? 'yes' : 'no (sso)',
          formatTime(u.created_at),
          u.last_seen_at ? formatTime(u.last_seen_at) : '-',
          u.disabled_at ? formatTime(u.disabled_at) : '-',
        ]),
      ),
    );
  });
}

export function registerConsole(program: Command): void {
  const consoleCommand = program
    .command('console')
    .description('The browser console (CONSOLE_PORT): its users');
  const user = consoleCommand
    .command('user')
    .description('Console users: viewer (support) or operator, and the right to queue');
  user
    .command('add')
    .argument('<username>', 'login name', username)
    .description('Add a user; the password is read from stdin or a prompt, never a flag')
    .requiredOption('--role <role>', 'viewer or operator', role)
    .option('--can-queue', 'may start (queue) campaigns')
    .option('--no-password', 'no password: logs in only through the single-sign-on proxy')
    .action((name: string, flags) => addAction(name, flags));
  user
    .command('remove <username>')
    .description('Remove a user and end their sessions')
    .action((name: string) => removeAction(name));
  user
    .command('list')
    .description('Every console user, role, right to queue and last activity')
    .option('--json', 'machine-readable output')
    .action((flags) => listAction(flags));
}
