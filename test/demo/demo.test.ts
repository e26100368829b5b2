import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { stopEmbeddedPostgres } from '../../src/db/embedded.ts';
import { freePort } from '../../src/free-port.ts';
import { runNodeScript } from '../helpers/cli.ts';

// `npm run demo` with nothing configured (no DATABASE_URL, no SES settings), so on an embedded
// PostgreSQL created from scratch. Its data folder and port are this test's own: the default
// .data/postgres and port 54329 may be held by the suite's server or by another checkout.
test('npm run demo sends a campaign end to end and reports bounces, complaints and unsubscribes', async (t) => {
  const env = { ...process.env };
  for (const name of ['DATABASE_URL', 'SES_ENDPOINT', 'SES_MAX_SEND_RATE', 'SNS_TOPIC_ARNS']) {
    delete env[name];
  }
  const dataRoot = await mkdtemp(join(tmpdir(), 'mailer-demo-'));
  env.EMBEDDED_PG_DIR = join(dataRoot, 'postgres');
  env.EMBEDDED_PG_PORT = String(await freePort());
  t.teardown(async () => {
    await stopEmbeddedPostgres(env.EMBEDDED_PG_DIR).catch(() => undefined);
    await rm(dataRoot, { recursive: true, force: true });
  });
  const root = join(import.meta.dirname, '..', '..');
  const { code, stdout, stderr } = await runNodeScript(join(root, 'src', 'demo', 'run.ts'), [], {
    env,
    cwd: root,
  });
  t.is(code, 0, stderr.slice(-3000));
  const report = JSON.parse(stdout) as {
    recipients: Record<string, number>;
    suppression_list: Record<string, number>;
    emails_accepted_by_ses: number;
    total_seconds: number;
  };
  t.is(report.recipients.bounced, 2, 'bounce@ and suppressionlist@ simulator addresses');
  t.is(report.recipients.complained, 1);
  t.is(report.recipients.unsubscribed, 1);
  t.is(report.recipients.suppressed, 1, 'the address suppressed before the campaign');
  t.is(report.suppression_list.bounce_hard, 2);
  t.is(report.suppression_list.complaint, 1);
  t.is(report.emails_accepted_by_ses, 484);
  // How long it takes is a figure for the README, not an assertion (timing belongs in bench/).
  t.log(`demo took ${report.total_seconds} s`);
});

// As root the embedded server runs as `postgres`; a checkout under a folder only root may enter
// (what `mktemp -d` gives) failed with `spawn initdb EACCES`. The demo says why and what to do.
test('npm run demo as root under a folder postgres cannot enter says so in one line', async (t) => {
  if (userInfo().uid !== 0) {
    t.log('skipped: only root runs the embedded server as the `postgres` user');
    t.pass();
    return;
  }
  const env = { ...process.env };
  delete env.DATABASE_URL;
  const locked = await mkdtemp(join(tmpdir(), 'mailer-demo-locked-'));
  t.teardown(() => rm(locked, { recursive: true, force: true }));
  env.EMBEDDED_PG_DIR = join(locked, 'checkout', '.data', 'postgres');
  env.EMBEDDED_PG_PORT = String(await freePort());
  const root = join(import.meta.dirname, '..', '..');
  const { code, stderr } = await runNodeScript(join(root, 'src', 'demo', 'run.ts'), [], {
    env,
    cwd: root,
  });
  t.is(code, 1);
  t.deepEqual(
    stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{')),
    [
      `npm run demo: embedded PostgreSQL: as root the server runs as the \`postgres\` user, ` +
        `which cannot enter ${locked} (mode 0700, owner uid 0); run mailer as another user, let ` +
        `it in (chmod o+x ${locked}), or set DATABASE_URL to a server of your own`,
    ],
  );
});
