// Suppression strength (issue 15, item 7): whatever writes to suppression_list, the stronger reason
// wins (complaint > unsubscribe > bounce_hard > manual), and lifting an entry needs force whenever
// the address ever unsubscribed or complained, not only when the current reason says so.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { sesEvent } from '../events/helpers.ts';
import { connectClient, databaseForFile } from '../helpers/db.ts';
import { createCustomer, createTemplate, generateMonthCampaign } from '../helpers/factories.ts';
import { type TaskRun, taskRunner } from '../helpers/tasks.ts';

const db = databaseForFile();
let processSesEvent: TaskRun;
test.before(async () => {
  await createTemplate(db.pool, { week_of_month: 1 });
  processSesEvent = await taskRunner('process_ses_event', db.pool);
});

const REASONS = ['manual', 'bounce_hard', 'unsubscribe', 'complaint'] as const;
const SOURCE = { manual: 'ops', bounce_hard: 'ses', unsubscribe: 'user', complaint: 'ses' };

const address = (what: string) => `${what}-${randomUUID().slice(0, 8)}@example.com`;

async function entry(email: string) {
  const { rows } = await db.pool.query<{
    reason: string;
    source: string;
    created_at: Date;
    updated_at: Date;
  }>('select reason, source, created_at, updated_at from suppression_list where email = $1', [
    email,
  ]);
  return rows[0];
}

async function suppressAs(email: string, reason: string, source: string): Promise<void> {
  await db.pool.query(
    `insert into suppression_list (email, reason, source) values ($1, $2, $3)
     on conflict (email) do nothing`,
    [email, reason, source],
  );
}

let month = 0;
/** The unsubscribe token `email` got in a new campaign (one week-1 campaign per month). */
async function tokenFor(email: string): Promise<string> {
  month++;
  const campaign = await generateMonthCampaign(db.pool, 2040, month, 'https://mail.example.test');
  const { rows } = await db.pool.query<{ token_id: string }>(
    'select token_id from unsubscribe_tokens where campaign_id = $1 and email = $2',
    [campaign.campaign_id, email],
  );
  return rows[0]?.token_id ?? '';
}

test('whatever the order, the stronger reason wins: complaint > unsubscribe > bounce_hard > manual', async (t) => {
  for (const first of REASONS) {
    for (const second of REASONS) {
      const email = address(`${first}-${second}`);
      await suppressAs(email, first, SOURCE[first]);
      await suppressAs(email, second, SOURCE[second]);
      const stronger = REASONS.indexOf(second) > REASONS.indexOf(first) ? second : first;
      t.like(
        await entry(email),
        { reason: stronger, source: SOURCE[stronger] },
        `${first} then ${second}`,
      );
    }
  }
});

test('a strengthened entry keeps the date it was first suppressed and records the change', async (t) => {
  const email = address('dates');
  await db.pool.query(
    `insert into suppression_list (email, reason, source, created_at)
     values ($1, 'manual', 'ops', '2020-01-01T00:00:00Z')`,
    [email],
  );
  await suppressAs(email, 'unsubscribe', 'user');
  const after = await entry(email);
  t.is(after?.reason, 'unsubscribe');
  t.is(after?.created_at.toISOString(), '2020-01-01T00:00:00.000Z');
  t.true((after?.updated_at.getTime() ?? 0) > Date.parse('2020-01-01T00:00:00Z'));
});

test('an unsubscribe link used by an address suppressed by hand turns the entry into an unsubscribe', async (t) => {
  const customer = await createCustomer(db.pool, { email: address('link') });
  const token = await tokenFor(customer.email);
  t.true(
    (await db.pool.query("select suppress_email($1, 'manual') as r", [customer.email])).rows[0].r,
  );
  const { rows } = await db.pool.query("select * from unsubscribe_by_token($1, 'one_click')", [
    token,
  ]);
  t.is(rows[0]?.outcome, 'unsubscribed');
  t.like(await entry(customer.email), { reason: 'unsubscribe', source: 'user' });
  await t.throwsAsync(
    db.pool.query("select unsuppress_email($1, 'typo, ticket 7')", [customer.email]),
    { message: /suppressed for unsubscribe: removing that needs p_force/ },
  );
});

test('a complaint from SES for a hard-bounced address turns the entry into a complaint', async (t) => {
  const email = address('complaint');
  await processSesEvent.run(sesEvent('Bounce', { messageId: `m-${randomUUID()}`, email }));
  t.like(await entry(email), { reason: 'bounce_hard', source: 'ses' });
  await processSesEvent.run(sesEvent('Complaint', { messageId: `m-${randomUUID()}`, email }));
  t.like(await entry(email), { reason: 'complaint', source: 'ses' });
  // A later bounce does not weaken it.
  await processSesEvent.run(sesEvent('Bounce', { messageId: `m-${randomUUID()}`, email }));
  t.like(await entry(email), { reason: 'complaint', source: 'ses' });
});

test('suppress_email strengthens a weaker entry (true, recorded) and leaves a stronger one (false)', async (t) => {
  const email = address('ops');
  const suppress = async (reason: string) =>
    (
      await db.pool.query<{ r: boolean }>('select suppress_email($1, $2, $3) as r', [
        email,
        reason,
        `as ${reason}`,
      ])
    ).rows[0]?.r;
  t.true(await suppress('manual'));
  t.true(await suppress('unsubscribe'));
  t.false(await suppress('bounce_hard'));
  t.false(await suppress('unsubscribe'));
  t.like(await entry(email), { reason: 'unsubscribe', source: 'ops' });
  const { rows } = await db.pool.query<{ note: string; details: Record<string, string> }>(
    "select note, details from operator_actions where action = 'suppress' and email = $1 order by action_id",
    [email],
  );
  t.deepEqual(
    rows.map((r) => [r.note, r.details.reason, r.details.previous_reason]),
    [
      ['as manual', 'manual', undefined],
      ['as unsubscribe', 'unsubscribe', 'manual'],
    ],
  );
});

test('an update that would weaken a reason is refused, even for the owner', async (t) => {
  const email = address('weaken');
  await suppressAs(email, 'complaint', 'ses');
  const error = await t.throwsAsync(
    db.pool.query(`update suppression_list set reason = 'manual' where email = $1`, [email]),
  );
  t.is((error as { code?: string }).code, '23514');
  t.regex(error?.message ?? '', /suppressed for complaint; a weaker reason \(manual\) never/);
  t.like(await entry(email), { reason: 'complaint' });
});

test.serial(
  'a manual suppression committed while an unsubscribe of the same new address waits does not win',
  async (t) => {
    const email = address('race');
    const first = await connectClient(t, db.url);
    const second = await connectClient(t, db.url);
    await first.query('begin');
    await first.query(
      `insert into suppression_list (email, reason, source) values ($1, 'manual', 'ops')`,
      [email],
    );
    // The unsubscribe starts while the manual entry is uncommitted: it must wait for it, then
    // strengthen it (before, it waited on the unique index and then did nothing).
    const unsubscribe = second.query(
      `insert into suppression_list (email, reason, source) values ($1, 'unsubscribe', 'user')
     on conflict (email) do nothing`,
      [email],
    );
    const waiting = async () =>
      (
        await db.pool.query(
          `select 1 from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'
            and query like '%''unsubscribe'', ''user''%'`,
        )
      ).rowCount === 1;
    for (let i = 0; i < 100 && !(await waiting()); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    t.true(await waiting(), 'the unsubscribe waits for the uncommitted manual entry');
    await first.query('commit');
    await unsubscribe;
    t.like(await entry(email), { reason: 'unsubscribe', source: 'user' });
  },
);

test('lifting needs force once the address ever unsubscribed, even when the entry now says manual', async (t) => {
  const email = address('ever');
  await suppressAs(email, 'unsubscribe', 'user');
  t.true(
    (
      await db.pool.query<{ r: boolean }>(
        "select unsuppress_email($1, 'signed up again on the website', true) as r",
        [email],
      )
    ).rows[0]?.r,
  );
  // Months later an operator suppresses the address by hand; a colleague lifts it.
  await db.pool.query("select suppress_email($1, 'manual', 'mailbox full')", [email]);
  const error = await t.throwsAsync(
    db.pool.query("select unsuppress_email($1, 'mailbox fixed')", [email]),
  );
  t.is((error as { code?: string }).code, '23514');
  t.regex(
    error?.message ?? '',
    /is suppressed for manual, but an unsubscribe was recorded for it on \d{4}-\d\d-\d\d \(operator_actions #\d+ \(unsuppress\)\): removing it needs p_force/,
  );
  t.like(await entry(email), { reason: 'manual' });
  t.true(
    (
      await db.pool.query<{ r: boolean }>(
        "select unsuppress_email($1, 'mailbox fixed, consent on file', true) as r",
        [email],
      )
    ).rows[0]?.r,
  );
});

test('an unsubscribe or complaint event kept beside a weaker entry also makes lifting need force', async (t) => {
  // As entries were before the fix: the event recorded, the first (weaker) reason kept.
  for (const [event, reason] of [
    ['unsubscribe', 'manual'],
    ['complaint', 'bounce_hard'],
  ]) {
    const email = address(`legacy-${event}`);
    await suppressAs(email, reason as string, 'ops');
    await db.pool.query(
      `insert into email_events_op (event_type, email, payload) values ($1, $2, '{}')`,
      [event, email],
    );
    await t.throwsAsync(db.pool.query("select unsuppress_email($1, 'cleanup')", [email]), {
      message: new RegExp(
        `suppressed for ${reason}, but an? ${event} was recorded for it .*email_events_op`,
      ),
    });
  }
});

test('a bounce or a manual entry alone is lifted without force', async (t) => {
  for (const reason of ['bounce_hard', 'manual']) {
    const email = address(`plain-${reason}`);
    await suppressAs(email, reason, 'ops');
    await db.pool.query("select unsuppress_email($1, 'mailbox fixed')", [email]);
    t.is(await entry(email), undefined, reason);
  }
});
