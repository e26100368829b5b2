import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  createCampaign,
  createCustomer,
  createRecipient,
  createTemplate,
} from '../helpers/factories.ts';

let db: TestDatabase;
let dir: string;
test.before(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'mailer-import-'));
});
test.after.always(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function csvFile(content: string | Buffer): Promise<string> {
  const path = join(dir, `${randomBytes(4).toString('hex')}.csv`);
  await writeFile(path, content);
  return path;
}

const env = () => ({ DATABASE_URL: db.url });

// JSON log lines (not the operator's output) must not carry addresses.
function logLines(output: string): string[] {
  return output.split('\n').filter((l) => l.startsWith('{"level"'));
}

async function customer(email: string) {
  const { rows } = await db.pool.query(
    'select email, name, company, country, is_active from customers where email = $1',
    [email],
  );
  return rows[0];
}

test('imports the good rows of a messy CSV and reports every bad one by line and reason', async (t) => {
  const file = await csvFile(
    Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]), // BOM
      Buffer.from(
        [
          'Email,Name,Company,Country',
          'Ann.Upper@Example.COM ,Ann,"Acme, Inc.",NL',
          'bob.example.com,Bob,,DE',
          ',Nobody,,',
          '"carol@example.com","Carol ""CJ""\r\nJones",Carol Co,FR',
          'ann.upper@example.com,Ann Again,,NL',
          'dave@example.com,Dave,Dave Co,US,surplus',
          'erin@exa mple.com,Erin,,SE',
          '',
          'frank@example.com,Frank,,',
        ].join('\r\n'),
      ),
      Buffer.from('\r\n'),
    ]),
  );
  const result = await runCli(['customers', 'import', file], env());
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /line 3: no @ \(bob\.example\.com\)/);
  t.regex(result.stdout, /line 4: empty email/);
  t.regex(result.stdout, /line 7: duplicate of line 2 \(ann\.upper@example\.com\)/);
  t.regex(result.stdout, /line 8: expected 4 fields, got 5/);
  t.regex(result.stdout, /line 9: contains whitespace/);
  t.regex(
    result.stdout,
    /8 rows read .*: 3 imported \(3 new, 0 updated, 0 unchanged\), 5 rejected/,
  );
  t.notRegex(result.stdout, /line (2|5|6|11):/);

  t.deepEqual(await customer('ann.upper@example.com'), {
    email: 'ann.upper@example.com',
    name: 'Ann',
    company: 'Acme, Inc.',
    country: 'NL',
    is_active: true,
  });
  t.is((await customer('carol@example.com'))?.name, 'Carol "CJ"\nJones');
  t.deepEqual(await customer('frank@example.com'), {
    email: 'frank@example.com',
    name: 'Frank',
    company: null,
    country: null,
    is_active: true,
  });
  t.is(await customer('bob.example.com'), undefined);
  t.is(await customer('dave@example.com'), undefined);
  for (const line of logLines(result.stdout + result.stderr)) t.notRegex(line, /@/);
});

test('a second import updates what changed, leaves identical rows alone, and is_active decides when present', async (t) => {
  await createCustomer(db.pool, {
    email: 'gina@example.com',
    name: 'Gina',
    company: 'G',
    country: 'IT',
  });
  await createCustomer(db.pool, {
    email: 'hal@example.com',
    name: 'Hal',
    company: 'H',
    country: 'UK',
    is_active: false,
  });
  const withoutFlag = await csvFile(
    'email,name,company,country\ngina@example.com,Gina,G,IT\nhal@example.com,Hal B,H,UK\n',
  );
  const first = await runCli(['customers', 'import', withoutFlag], env());
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /2 imported \(0 new, 1 updated, 1 unchanged\), 0 rejected/);
  t.is((await customer('hal@example.com'))?.is_active, false, 'no is_active column: flag kept');

  const withFlag = await csvFile(
    'country,email,is_active,company,name\nUK,HAL@example.com,yes,H,Hal B\nIT,gina@example.com,maybe,G,Gina\n',
  );
  const second = await runCli(['customers', 'import', withFlag], env());
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /line 3: is_active must be/);
  t.regex(second.stdout, /1 imported \(0 new, 1 updated, 0 unchanged\), 1 rejected/);
  t.is((await customer('hal@example.com'))?.is_active, true);
});

test('--strict imports nothing when a line is rejected (exit 1); --dry-run only reports', async (t) => {
  const file = await csvFile('email,name,company,country\nivy@example.com,Ivy,,\nnope,No,,\n');
  const strict = await runCli(['customers', 'import', '--strict', file], env());
  t.is(strict.code, 1);
  t.regex(strict.stdout, /line 3: no @/);
  t.regex(strict.stderr, /--strict/);
  const dry = await runCli(['customers', 'import', '--dry-run', file], env());
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /nothing imported \(--dry-run\)/);
  t.is(await customer('ivy@example.com'), undefined);

  const clean = await csvFile('email,name,company,country\nivy@example.com,Ivy,,\n');
  const ok = await runCli(['customers', 'import', '--strict', clean], env());
  t.is(ok.code, 0, ok.stderr);
  t.is((await customer('ivy@example.com'))?.name, 'Ivy');
});

test('--json lists the rejected lines and a summary', async (t) => {
  const file = await csvFile('email,name,company,country\njack@example.com,Jack,,\n@x.com,X,,\n');
  const result = await runCli(['customers', 'import', '--json', file], env());
  t.is(result.code, 0, result.stderr);
  const parsed = JSON.parse(result.stdout) as {
    rejected: Array<{ line: number; problem: string; value: string }>;
    summary: { rowsRead: number; valid: number; inserted: number; applied: boolean };
  };
  t.deepEqual(parsed.rejected, [{ line: 3, problem: 'nothing before the @', value: '@x.com' }]);
  t.like(parsed.summary, { rowsRead: 2, valid: 1, inserted: 1, applied: true });
});

test('a file that is not a customer CSV is bad usage (exit 2); a quote never closed imports nothing (exit 1)', async (t) => {
  const header = await csvFile('mail,name\nkim@example.com,Kim\n');
  const wrong = await runCli(['customers', 'import', header], env());
  t.is(wrong.code, 2);
  t.regex(wrong.stderr, /missing email, company, country; unknown mail/);

  const missing = await runCli(['customers', 'import', join(dir, 'absent.csv')], env());
  t.is(missing.code, 2);
  t.regex(missing.stderr, /no such file/);

  const empty = await runCli(['customers', 'import', await csvFile('')], env());
  t.is(empty.code, 2);

  const broken = await csvFile(
    'email,name,company,country\nlee@example.com,Lee,,\n"mo@example.com,Mo,,\nned@example.com,Ned,,\n',
  );
  const result = await runCli(['customers', 'import', broken], env());
  t.is(result.code, 1);
  t.regex(result.stderr, /line 3: a quoted field is never closed/);
  t.is(await customer('lee@example.com'), undefined, 'nothing imported');
});

test('a file not in UTF-8 loses nothing: its unreadable lines are rejected, --encoding reads them', async (t) => {
  // What Excel on Windows saves as "CSV": windows-1252.
  const rows = [
    'email,name,company,country',
    'jurgen.w1252@example.com,J\xfcrgen,M\xfcller & S\xf6hne,DE',
    'plain.w1252@example.com,Plain,Ascii Ltd,GB',
    'zoe.w1252@example.com,Zo\xeb,Caf\xe9 \x80uro,FR',
  ];
  const file = await csvFile(Buffer.from(`${rows.join('\r\n')}\r\n`, 'latin1'));
  const asUtf8 = await runCli(['customers', 'import', file], env());
  t.is(asUtf8.code, 0, asUtf8.stderr);
  t.regex(asUtf8.stdout, /line 2: has bytes that are not valid in the file's encoding/);
  t.regex(asUtf8.stdout, /line 4: has bytes that are not valid in the file's encoding/);
  t.regex(asUtf8.stdout, /3 rows read .*: 1 imported .*, 2 rejected/);
  t.is(await customer('jurgen.w1252@example.com'), undefined, 'nothing mangled was stored');

  const named = await runCli(['customers', 'import', '--encoding', 'windows-1252', file], env());
  t.is(named.code, 0, named.stderr);
  t.regex(named.stdout, /3 rows read .*: 3 imported \(2 new, 0 updated, 1 unchanged\), 0 rejected/);
  t.like(await customer('jurgen.w1252@example.com'), {
    name: 'Jürgen',
    company: 'Müller & Söhne',
  });
  // 0x80 is the euro sign in windows-1252 (not in ISO-8859-1).
  t.like(await customer('zoe.w1252@example.com'), { name: 'Zoë', company: 'Café €uro' });

  // Excel's "Unicode Text": UTF-16LE with a byte order mark, recognised without --encoding.
  const utf16 = await csvFile(
    Buffer.from(
      '\uFEFFemail,name,company,country\r\nsung.u16@example.com,성민,Ünïcode,KR\r\n',
      'utf16le',
    ),
  );
  const wide = await runCli(['customers', 'import', utf16], env());
  t.is(wide.code, 0, wide.stderr);
  t.like(await customer('sung.u16@example.com'), { name: '성민', company: 'Ünïcode' });

  const unknown = await runCli(['customers', 'import', '--encoding', 'klingon-8', file], env());
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown encoding "klingon-8"/);
});

test('10,000-character lines: long names and companies import whole, a long email is rejected by line', async (t) => {
  const longName = `Ann ${'n'.repeat(9_996)}`;
  const longCompany = `"Acme, ""quoted""\nand broken ${'c'.repeat(9_970)}"`;
  const longEmail = `${'e'.repeat(9_990)}@example.com`;
  const file = await csvFile(
    [
      'email,name,company,country',
      `long.name@example.com,${longName},Short Co,NL`,
      `long.company@example.com,Bo,${longCompany},BE`,
      `${longEmail},Cy,Cy Co,DE`,
      'after.long@example.com,Di,Di Co,FR',
      '',
    ].join('\n'),
  );
  const result = await runCli(['customers', 'import', file], env());
  t.is(result.code, 0, result.stderr);
  t.regex(
    result.stdout,
    /line 5: longer than 254 characters \(e{60}\.\.\. \(10002 characters\)\)\n/,
    'the long email is reported on its own line (after a two-line field), its value shortened',
  );
  t.notRegex(result.stdout, /line (2|3|4|6):/);
  t.regex(result.stdout, /4 rows read .*: 3 imported/);
  t.is((await customer('long.name@example.com'))?.name, longName);
  t.is(
    (await customer('long.company@example.com'))?.company,
    `Acme, "quoted"\nand broken ${'c'.repeat(9_970)}`,
  );
  t.truthy(await customer('after.long@example.com'));
});

test('20,000 rows stream through a heap far smaller than the file', async (t) => {
  // 20,000 rows of ~2 KB: a 40 MB file imported with a 32 MB heap only works when it is streamed.
  const filler = 'x'.repeat(2000);
  const lines = ['email,name,company,country,is_active'];
  for (let i = 0; i < 20_000; i++) {
    lines.push(
      i % 1000 === 999
        ? `broken-${i},B,${filler},NL,true`
        : `Bulk${i}@Example.com,Bulk ${i},${filler},NL,${i % 2 === 0}`,
    );
  }
  const file = await csvFile(`${lines.join('\n')}\n`);
  const result = await runCli(
    ['customers', 'import', file],
    { ...env(), NODE_OPTIONS: '--max-old-space-size=32' },
    { timeoutMs: 120_000 },
  );
  t.is(result.code, 0, result.stderr);
  t.regex(
    result.stdout,
    /20000 rows read .*: 19980 imported \(19980 new.*20 rejected \(20 invalid/,
  );
  const { rows } = await db.pool.query<{ n: number; active: number }>(
    `select count(*)::int as n, (count(*) filter (where is_active))::int as active
       from customers where email like 'bulk%@example.com'`,
  );
  t.deepEqual(rows[0], { n: 19_980, active: 10_000 });
});

test('customers show answers why a customer did or did not get each recent campaign', async (t) => {
  const template = await createTemplate(db.pool, { week_of_month: 2 });
  const older = await createCampaign(db.pool, {
    template_id: template.template_id,
    generated_date: '2030-03-02',
    status: 'done',
  });
  const zoe = await createCustomer(db.pool, { email: 'zoe@example.com', name: 'Zoe' });
  const latest = await createCampaign(db.pool, {
    template_id: template.template_id,
    generated_date: '2030-03-09',
    status: 'done',
  });
  await createRecipient(db.pool, latest.campaign_id, 'bounced', {
    customer: zoe,
    messageId: 'msg-zoe-1',
    lastError: 'permanent bounce (General): smtp; 550 user unknown',
  });
  await db.pool.query(
    "insert into suppression_list (email, reason, source) values ('zoe@example.com', 'bounce_hard', 'ses')",
  );
  await db.pool.query(
    `insert into email_events_op (event_type, email, campaign_id, customer_id, ses_message_id, payload)
     values ('bounce', $1, $2, $3, 'msg-zoe-1',
             '{"bounce": {"bounceType": "Permanent", "bounceSubType": "General",
               "bouncedRecipients": [{"diagnosticCode": "smtp; 550 user unknown"}]}}')`,
    [zoe.email, latest.campaign_id, zoe.customer_id],
  );

  const result = await runCli(['customers', 'show', 'Zoe@Example.com'], env());
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /suppressed\s+yes: bounce_hard, by ses, since \d{4}-\d\d-\d\d/);
  t.regex(
    result.stdout,
    new RegExp(`${latest.campaign_id}\\s+2030-03-09\\s+done\\s+bounced\\s+1 .*msg-zoe-1`),
  );
  t.regex(result.stdout, /bounced: permanent bounce \(General\): smtp; 550 user unknown/);
  t.regex(
    result.stdout,
    new RegExp(`${older.campaign_id}\\s+2030-03-02\\s+done\\s+not a recipient`),
  );
  t.regex(result.stdout, /not a recipient: customer was added after the campaign was generated/);
  t.regex(result.stdout, /bounce\s+\S+\s+msg-zoe-1\s+Permanent \/General smtp; 550 user unknown/);

  const json = await runCli(['customers', 'show', 'zoe@example.com', '--json'], env());
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as {
    suppression: { reason: string };
    campaigns: Array<{ recipient_status: string | null; explanation: string }>;
    events: Array<{ event_type: string }>;
  };
  t.is(report.suppression.reason, 'bounce_hard');
  t.is(report.events[0]?.event_type, 'bounce');
  t.true(report.campaigns.some((c) => c.recipient_status === 'bounced'));

  const unknown = await runCli(['customers', 'show', 'nobody@example.com'], env());
  t.is(unknown.code, 1);
  t.regex(unknown.stdout, /none: no customer has this address/);
  t.regex(unknown.stderr, /is not a customer/);
  const bad = await runCli(['customers', 'show', 'not-an-address'], env());
  t.is(bad.code, 2);
});

for (const command of [['customers'], ['customers', 'import'], ['customers', 'show']]) {
  test(`mailer ${command.join(' ')} --help prints usage and exits 0`, async (t) => {
    const result = await runCli([...command, '--help']);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /Usage: mailer customers/);
  });
}

test('customers show names the console user behind an operator action, not the console login', async (t) => {
  const email = `ann-${randomBytes(4).toString('hex')}@example.com`;
  await createCustomer(db.pool, { email });
  const client = await db.pool.connect();
  try {
    // What the console's withActor does around each action.
    await client.query('begin');
    await client.query(`select set_config('mailer.actor', 'console:olivia', true)`);
    await client.query(`select suppress_email($1, 'manual', 'asked by phone')`, [email]);
    await client.query('commit');
  } finally {
    client.release();
  }
  const result = await runCli(['customers', 'show', email], env());
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /suppress\s+console:olivia \(as \S+\)\s+asked by phone/);
});
