// An operator's mistake or a missing server ends a command with one line on stderr that names
// what and where (host:port, the port and the variable to change); the stack only at
// LOG_LEVEL=debug. Also: --version, NO_COLOR, and pretty logs only when stderr is a terminal.
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { stopEmbeddedPostgres } from '../../src/db/embedded.ts';
import { freePort } from '../../src/free-port.ts';
import { cliPath, runCli } from '../helpers/cli.ts';
import { createEmptyDatabase } from '../helpers/db.ts';

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[`);

function stderrLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));
}

// A TCP server that accepts connections and never answers: a host that is "up" but not
// PostgreSQL, or a firewall that swallows the handshake.
async function silentServer(): Promise<{ server: Server; port: number }> {
  const server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { server, port: address.port };
}

test('a refused database connection is one line naming host:port, for queries and migrate', async (t) => {
  const port = await freePort();
  for (const args of [['jobs'], ['migrate'], ['customers', 'show', 'a@example.com']]) {
    const result = await runCli(args, { DATABASE_URL: `postgres://mailer@127.0.0.1:${port}/x` });
    t.is(result.code, 1, args.join(' '));
    t.deepEqual(stderrLines(result.stderr), [
      `mailer: cannot connect to the database at 127.0.0.1:${port}: connection refused ` +
        '(is PostgreSQL running there, on that port?) (ECONNREFUSED)',
    ]);
  }
});

test('a database host that never answers is one line naming it; debug adds the stack', async (t) => {
  const { server, port } = await silentServer();
  t.teardown(() => server.close());
  const url = `postgres://mailer@127.0.0.1:${port}/x`;
  const [quiet, debug] = await Promise.all([
    runCli(['jobs'], { DATABASE_URL: url }),
    runCli(['jobs'], { DATABASE_URL: url, LOG_LEVEL: 'debug' }),
  ]);
  t.is(quiet.code, 1);
  t.deepEqual(stderrLines(quiet.stderr), [
    `mailer: cannot connect to the database at 127.0.0.1:${port}: no answer before the ` +
      'connection timeout (a firewall, or the wrong host?)',
  ]);
  t.is(debug.code, 1);
  t.regex(debug.stderr, new RegExp(`^mailer: cannot connect .*127\\.0\\.0\\.1:${port}`, 'm'));
  t.regex(debug.stderr, /\n\s+at /, 'the stack at LOG_LEVEL=debug');
});

test('an unknown database host is one line naming host and port', async (t) => {
  const result = await runCli(['jobs'], {
    DATABASE_URL: 'postgres://mailer@no-such-host.invalid:6543/x',
  });
  t.is(result.code, 1);
  const output = stderrLines(result.stderr);
  t.is(output.length, 1, result.stderr);
  t.regex(
    output[0] ?? '',
    /^mailer: cannot connect to the database at no-such-host\.invalid:6543: /,
  );
});

test('a taken EMBEDDED_PG_PORT is one line naming the port and the variable', async (t) => {
  const { server, port } = await silentServer();
  // Reachable by the `postgres` user when the tests run as root (mkdtemp makes it 0700).
  const root = await mkdtemp(join(tmpdir(), 'mailer-taken-port-'));
  await chmod(root, 0o755);
  t.teardown(async () => {
    server.close();
    await stopEmbeddedPostgres(join(root, 'pg')).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });
  const result = await runCli(['jobs'], {
    DATABASE_URL: '',
    EMBEDDED_PG_PORT: String(port),
    EMBEDDED_PG_DIR: join(root, 'pg'),
  });
  t.is(result.code, 1, result.stderr);
  t.deepEqual(stderrLines(result.stderr), [
    `mailer: embedded PostgreSQL: could not start on port ${port}: another program listens ` +
      'there; set EMBEDDED_PG_PORT to a free port, or stop that program',
  ]);
});

test('mailer --version prints the version from package.json', async (t) => {
  const pkg = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8'));
  for (const flag of ['--version', '-V']) {
    const result = await runCli([flag]);
    t.is(result.code, 0);
    t.is(result.stdout, `${pkg.version}\n`);
  }
});

// `script` gives the command a terminal; stdout or stderr is sent elsewhere inside it.
function inTerminal(command: string, env: Record<string, string>): string | undefined {
  const probe = spawnSync('script', ['-qfec', 'true', '/dev/null']);
  if (probe.status !== 0) return undefined;
  const result = spawnSync('script', ['-qfec', command, '/dev/null'], {
    env: { ...process.env, CI: '', LOG_LEVEL: 'info', ...env },
    encoding: 'utf8',
  });
  return result.stdout;
}

test('logs are pretty when stderr is a terminal, coloured unless NO_COLOR is set', async (t) => {
  const db = await createEmptyDatabase();
  t.teardown(() => db.drop());
  const dir = await mkdtemp(join(tmpdir(), 'mailer-tty-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const node = process.execPath;
  // CI unset: pretty is for a person at a terminal, and CI machines set CI.
  const env = { DATABASE_URL: db.url };
  const coloured = inTerminal(`${node} ${cliPath} migrate > ${dir}/out`, env);
  if (coloured === undefined) {
    t.log('skipped: no `script` command to give the CLI a terminal');
    t.pass();
    return;
  }
  t.regex(coloured, /INFO.*database is up to date/);
  t.regex(coloured, ANSI);
  const plain = inTerminal(`${node} ${cliPath} migrate > ${dir}/out`, { ...env, NO_COLOR: '1' });
  t.regex(plain ?? '', /INFO.*database is up to date/);
  t.notRegex(plain ?? '', ANSI);
  // stdout a terminal, stderr a file: JSON lines, as for a log shipper.
  inTerminal(`${node} ${cliPath} migrate 2> ${dir}/err`, env);
  const json = (await readFile(join(dir, 'err'), 'utf8')).trim().split('\n');
  t.true(json.length > 0);
  for (const line of json) t.notThrows(() => JSON.parse(line), line);
});
