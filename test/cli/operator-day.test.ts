// An operator's day, driven through the `mailer` CLI alone on the embedded default PostgreSQL
// (DATABASE_URL unset; a data folder and port of this test's own), with `mailer ses-local` as
// SES: import a CSV with bad lines, preview and test-send the week's template, schedule a
// campaign, watch it start at its time, pause and resume it, and read its report. The report's
// numbers must match the database and what the local SES itself accepted; the worker's log stays
// a few lines whatever the number of recipients.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import pg from 'pg';
import { stopEmbeddedPostgres } from '../../src/db/embedded.ts';
import { freePort } from '../../src/free-port.ts';
import type { SentMessage } from '../../src/ses-local/model.ts';
import { type LongRunning, runCli, startCli, waitFor } from '../helpers/cli.ts';

const CUSTOMERS = 150;

test('an operator’s day from the CLI: import, preview, test send, schedule, pause, resume, report', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mailer-day-'));
  const env: Record<string, string> = {
    DATABASE_URL: '',
    EMBEDDED_PG_DIR: join(root, 'postgres'),
    EMBEDDED_PG_PORT: String(await freePort()),
    LOCAL_SES_PORT: String(await freePort()),
    LOG_LEVEL: 'info',
    MAIL_FROM: 'Mailer <news@example.com>',
    PUBLIC_URL: 'https://mail.example.com',
  };
  const sesUrl = `http://127.0.0.1:${env.LOCAL_SES_PORT}`;
  const sesEnv = { ...env, SES_ENDPOINT: sesUrl };
  const running: LongRunning[] = [];
  let db: pg.Pool | undefined;
  t.teardown(async () => {
    for (const child of running) child.child.kill('SIGKILL');
    await Promise.all(running.map((child) => child.exited));
    await db?.end();
    await stopEmbeddedPostgres(env.EMBEDDED_PG_DIR).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });
  const cli = async (args: string[], extra: Record<string, string> = {}) => {
    const result = await runCli(args, { ...sesEnv, ...extra }, { timeoutMs: 120_000 });
    t.is(result.code, 0, `mailer ${args.join(' ')}:\n${result.stderr}`);
    return result;
  };

  // The embedded server starts on demand; migrate first, as the README's quick start does.
  await cli(['migrate']);
  const { stdout: dbUrl } = await cli(['embedded', 'start']);
  db = new pg.Pool({ connectionString: dbUrl.trim(), max: 2 });

  const ses = startCli(['ses-local'], env);
  running.push(ses);
  const messages = async (): Promise<SentMessage[]> => {
    const response = await fetch(`${sesUrl}/_local/messages`);
    return (await response.json()) as SentMessage[];
  };
  await waitFor(
    () =>
      messages().then(
        () => true,
        () => false,
      ),
    { what: 'mailer ses-local' },
  );

  // 1. Import: the good lines go in, each bad line is reported by its line number.
  const lines = ['email,name,company,country'];
  for (let i = 1; i <= CUSTOMERS; i++) lines.push(`reader${i}@example.com,Reader ${i},Co ${i},NL`);
  lines.splice(11, 0, 'not-an-address,Broken,Co,NL');
  lines.splice(51, 0, ',No Address,Co,NL');
  const csv = join(root, 'customers.csv');
  await writeFile(csv, `${lines.join('\n')}\n`);
  const imported = await cli(['customers', 'import', csv]);
  const importReport = imported.stdout + imported.stderr;
  t.regex(importReport, /line 12\b/);
  t.regex(importReport, /line 52\b/);
  const { rows: counted } = await db.query<{ n: number }>(
    'select count(*)::int as n from customers',
  );
  t.is(counted[0]?.n, CUSTOMERS);

  // 2. The week's template, previewed for one customer and test-sent to the team only.
  await writeFile(join(root, 'week.txt'), 'Hello {{greeting_name}}, news for {{company}}.\n');
  await writeFile(join(root, 'week.html'), '<p>Hello {{greeting_name}}, news for {{company}}.</p>');
  await cli([
    'templates',
    'add',
    '--provider',
    'internal',
    '--week',
    '1',
    '--subject',
    'December news for {{name}}',
    '--text',
    join(root, 'week.txt'),
    '--html',
    join(root, 'week.html'),
  ]);
  const preview = await cli([
    'templates',
    'preview',
    '--week',
    '1',
    '--customer',
    'reader7@example.com',
    '--format',
    'text',
  ]);
  t.regex(preview.stdout, /December news for Reader 7/);
  t.regex(preview.stdout, /Hello Reader 7, news for Co 7\./);
  await cli(['campaign', 'test', '--week', '1', '--to', 'team@example.com']);
  const tests = await messages();
  t.deepEqual(
    tests.map((m) => m.to),
    [['team@example.com']],
  );
  t.regex(tests[0]?.subject ?? '', /^\[TEST\] /);
  const { rows: noRecipients } = await db.query('select 1 from campaign_recipients');
  t.is(noRecipients.length, 0, 'a test send touches no campaign_recipients');

  // 3. A campaign generated as a draft and scheduled a few seconds ahead.
  const generated = await cli([
    'campaign',
    'generate',
    '--week',
    '1',
    '--date',
    '2026-12-07',
    '--no-send',
    '--json',
  ]);
  const campaignId = (JSON.parse(generated.stdout) as { campaign_id: string }).campaign_id;
  const startAt = new Date(Date.now() + 4_000);
  startAt.setUTCMilliseconds(0);
  const at = `${startAt.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  await cli(['campaign', 'queue', campaignId, '--at', at]);
  const scheduled = await cli(['campaign', 'status', campaignId]);
  t.regex(scheduled.stdout, /scheduled/i);

  // Two paced workers; the campaign must not start before its time.
  const workerEnv = { ...sesEnv, SES_MAX_SEND_RATE: '40', WORKER_CONCURRENCY: '8' };
  const workers = [startCli(['worker'], workerEnv), startCli(['worker'], workerEnv)];
  running.push(...workers);
  const campaignMessages = async () =>
    (await messages()).filter((m) => m.tags.campaign_id === campaignId);
  const first = await waitFor(async () => (await campaignMessages())[0], {
    what: 'the scheduled campaign’s first email',
    timeoutMs: 60_000,
  });
  t.true(first.acceptedAt >= startAt.getTime(), 'nothing was sent before the scheduled time');

  // 4. Pause part-way: SES gets nothing more; resume: the rest goes out, once each.
  await waitFor(async () => (await campaignMessages()).length >= 30, { what: '30 sends' });
  await cli(['campaign', 'pause', campaignId]);
  const settled = await waitFor(
    async () => {
      const before = (await campaignMessages()).length;
      await new Promise((r) => setTimeout(r, 1_500));
      return (await campaignMessages()).length === before ? before : undefined;
    },
    { what: 'sends to stop after the pause', timeoutMs: 30_000 },
  );
  t.true(settled < CUSTOMERS, `${settled} sent when paused`);
  await cli(['campaign', 'resume', campaignId]);
  await waitFor(
    async () =>
      (
        await db?.query('select 1 from campaigns where campaign_id = $1 and status = $2', [
          campaignId,
          'done',
        ])
      )?.rowCount === 1,
    { what: 'the campaign done', timeoutMs: 90_000 },
  );

  // 5. The report agrees with the database and with the local SES's own count.
  const sent = await campaignMessages();
  const perAddress = new Map<string, number>();
  for (const m of sent) for (const to of m.to) perAddress.set(to, (perAddress.get(to) ?? 0) + 1);
  t.is(perAddress.size, CUSTOMERS);
  t.deepEqual(
    [...perAddress.values()].filter((n) => n > 1),
    [],
    'no address twice',
  );
  const report = JSON.parse(
    (await cli(['campaign', 'report', campaignId, '--json'], { LOG_LEVEL: 'warn' })).stdout,
  ) as { status: string; recipients: number; sent: number; accepted: number };
  const { rows: dbSent } = await db.query<{ n: number }>(
    `select count(*)::int as n from campaign_recipients
      where campaign_id = $1 and recipient_status = 'sent'`,
    [campaignId],
  );
  t.like(report, { status: 'done', recipients: CUSTOMERS, sent: CUSTOMERS });
  t.is(dbSent[0]?.n, CUSTOMERS);
  t.is(report.accepted, sent.length);

  // 6. The workers' logs: a few lines for the whole campaign, not a line per recipient.
  for (const worker of workers) worker.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
  for (const worker of workers) {
    const logLines = worker
      .output()
      .split('\n')
      .filter((line) => line.trim() !== '');
    t.log(`worker: ${logLines.length} lines`);
    t.true(logLines.length <= 30, logLines.join('\n'));
  }
});
