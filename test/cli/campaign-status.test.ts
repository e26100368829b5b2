// `campaign status` tells the truth: a rate from what SES accepted, an ETA only when one can be
// given, SES errors by kind, a paused campaign's reason, a done campaign's duration.
import test from 'ava';
import { describeStatus, estimate } from '../../src/cli/commands/campaign-status.ts';
import { pacingRateFor } from '../../src/queries/campaign-status.ts';
import { runCli } from '../helpers/cli.ts';
import { databaseForFile } from '../helpers/db.ts';
import { createCampaign, createTemplate } from '../helpers/factories.ts';

const db = databaseForFile();
let templateId: string;
test.before(async () => {
  templateId = (await createTemplate(db.pool, { week_of_month: 1 })).template_id;
});

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db.url,
  LOG_LEVEL: 'warn',
  ...extra,
});

interface Rows {
  n: number;
  status: string;
  /** Seconds ago: when the outcome was recorded (updated_at), when the send was claimed. */
  recordedAgo?: number;
  attemptedAgo?: number;
  accepted?: boolean;
  error?: string;
}

let date = 0;
async function campaignWith(status: string, rows: Rows[], pauseReason?: string): Promise<string> {
  date += 1;
  const { campaign_id: id } = await createCampaign(db.pool, {
    template_id: templateId,
    generated_date: `2031-01-${String(date).padStart(2, '0')}`,
    status,
  });
  if (pauseReason) {
    await db.pool.query('update campaigns set pause_reason = $2 where campaign_id = $1', [
      id,
      pauseReason,
    ]);
  }
  for (const r of rows) {
    // created_at = updated_at: the insert trigger keeps the given time, as if the outcome had
    // been recorded then.
    await db.pool.query(
      `with c as (
         insert into customers (email)
         select 'r-' || gen_random_uuid() || '@example.com' from generate_series(1, $2)
         returning customer_id, email)
       insert into campaign_recipients
         (campaign_id, customer_id, email, recipient_status, ses_message_id, last_attempt_at,
          attempt_count, last_error, created_at, updated_at)
       select $1, c.customer_id, c.email, $3,
              case when $4 then gen_random_uuid()::text end,
              case when $5::float8 is not null then now() - make_interval(secs => $5) end,
              case when $5::float8 is not null then 1 else 0 end, $6,
              now() - make_interval(secs => $7), now() - make_interval(secs => $7)
         from c`,
      [
        id,
        r.n,
        r.status,
        r.accepted === true,
        r.attemptedAgo ?? null,
        r.error ?? null,
        r.recordedAgo ?? 0,
      ],
    );
  }
  return id;
}

interface StatusJson {
  status: string;
  rate_per_second: number | null;
  pacing_rate: number | null;
  eta_seconds: number | null;
  stalled_seconds: number | null;
  duration_seconds: number | null;
  accepted_recently: number;
  attempts_last_minute: number;
  errors: Array<{ recipient_status: string; kind: string; recipients: number }>;
}

async function status(id: string, extra: Record<string, string> = {}) {
  const text = await runCli(['campaign', 'status', id], env(extra));
  const json = await runCli(['campaign', 'status', id, '--json'], env(extra));
  return {
    text: text.stdout,
    code: text.code,
    stderr: text.stderr,
    json: JSON.parse(json.stdout) as StatusJson,
  };
}

test('an SES outage shows 0/s, no ETA and the error by kind, however many claims', async (t) => {
  const id = await campaignWith('sending', [
    // Accepted two minutes ago, before the outage.
    { n: 5, status: 'sent', accepted: true, recordedAgo: 120, attemptedAgo: 120 },
    // Claimed again and again in the last seconds, released each time: SES refused the connection.
    {
      n: 20,
      status: 'pending',
      attemptedAgo: 2,
      recordedAgo: 2,
      error: 'Error: connect ECONNREFUSED 127.0.0.1:4579',
    },
    {
      n: 2,
      status: 'in_doubt',
      attemptedAgo: 3,
      recordedAgo: 3,
      error: 'TimeoutError: socket hang up',
    },
    {
      n: 1,
      status: 'failed',
      attemptedAgo: 100,
      recordedAgo: 100,
      error: 'MessageRejected: bad address',
    },
    { n: 10, status: 'pending' },
  ]);
  const s = await status(id);
  t.is(s.code, 0, s.stderr);
  t.regex(
    s.text,
    /send rate 0\.0\/s accepted by SES over the last 30s; 30 left, ETA unknown: SES has accepted nothing for 2m\d+s/,
  );
  t.regex(
    s.text,
    /send errors: ECONNREFUSED 20 \(to be sent again, last \d+s ago\), TimeoutError 2 \(in doubt, last \d+s ago\), MessageRejected 1 \(failed, last \d+s ago\)/,
  );
  t.is(s.json.rate_per_second, 0);
  t.is(s.json.eta_seconds, null);
  t.true((s.json.stalled_seconds ?? 0) >= 120, `${s.json.stalled_seconds}`);
  t.is(s.json.attempts_last_minute, 22, 'the claims were there; the rate does not count them');
  t.deepEqual(
    s.json.errors.map((e) => [e.recipient_status, e.kind, e.recipients]),
    [
      ['pending', 'ECONNREFUSED', 20],
      ['in_doubt', 'TimeoutError', 2],
      ['failed', 'MessageRejected', 1],
    ],
  );
});

test('the rate counts the accepted sends of the last 30 s only', async (t) => {
  const id = await campaignWith('sending', [
    // Long before the window: not in the rate.
    { n: 300, status: 'sent', accepted: true, recordedAgo: 600, attemptedAgo: 600 },
    // 90 in the window: 3/s.
    { n: 90, status: 'sent', accepted: true, recordedAgo: 1, attemptedAgo: 1 },
    { n: 120, status: 'pending' },
  ]);
  // Whether an ETA follows depends on how long these CLI runs take on a loaded machine (past
  // 10 s without an accepted send, the campaign counts as stalled); estimate() is tested below.
  const free = await status(id);
  t.is(free.json.accepted_recently, 90);
  t.is(free.json.rate_per_second, 3);
  t.regex(free.text, /send rate 3\.0\/s accepted by SES over the last 30s; 120 left, ETA /);
  const paced = await status(id, { SES_MAX_SEND_RATE: '2' });
  t.is(paced.json.pacing_rate, 2);
  t.regex(
    paced.text,
    /send rate 3\.0\/s accepted by SES over the last 30s \(paced at 2\.0\/s\); 120 left, ETA /,
  );
});

// A sending campaign's progress at NOW as campaign status reads it (every sent one accepted), for
// the estimate() tests: the first attempt sinceMs before NOW, lastMinute attempts in the last minute.
const NOW = new Date('2031-02-01T10:00:00Z');
function sendingProgress(p: {
  pending: number;
  sent: number;
  sinceMs: number;
  lastMinute: number;
}) {
  return {
    campaign_id: 'c',
    campaign_name: 'n',
    status: 'sending',
    pause_reason: null,
    recipients: p.pending + p.sent,
    counts: { pending: p.pending, sent: p.sent },
    accepted: p.sent,
    bounce_rate: 0,
    complaint_rate: 0,
    first_attempt_at: new Date(NOW.getTime() - p.sinceMs),
    last_attempt_at: NOW,
    attempts_last_minute: p.lastMinute,
  };
}

// What SES accepted at NOW: how many in the window, the last one `lastAgoS` seconds before.
function acceptedAtNow(acceptedRecently: number, lastAgoS = 0) {
  return {
    now: NOW,
    updated_at: NOW,
    accepted_recently: acceptedRecently,
    last_accepted_at: new Date(NOW.getTime() - lastAgoS * 1000),
    pacer_rate: null,
    errors: [],
  };
}

test('the ETA is capped by SES_MAX_SEND_RATE when set, else by the rate the workers recorded', (t) => {
  const live = { ...acceptedAtNow(90), pacer_rate: 48 };
  t.is(pacingRateFor(undefined, live), 48, 'the account rate the workers pace at');
  t.is(pacingRateFor(100, live), 100);
  t.is(pacingRateFor(0, live), 0, 'unpaced by configuration');
  t.is(pacingRateFor(undefined, acceptedAtNow(90)), undefined);
});

test('the ETA divides what is left by the observed rate, or by the pacing rate when lower', (t) => {
  const progress = sendingProgress({ pending: 120, sent: 390, sinceMs: 600_000, lastMinute: 90 });
  const live = acceptedAtNow(90);
  t.is(estimate(progress, live, 30, undefined).eta_seconds, 40);
  const paced = estimate(progress, live, 30, 2);
  t.is(paced.eta_seconds, 60, 'min(observed 3/s, pacing 2/s)');
  t.regex(
    describeStatus(progress, live, paced, false),
    /\(paced at 2\.0\/s\); 120 left, ETA 1m0s\n/,
  );
});

test('a campaign that started 5 s ago is measured over those 5 s, not the whole window', (t) => {
  const progress = sendingProgress({ pending: 100, sent: 10, sinceMs: 5000, lastMinute: 10 });
  const live = acceptedAtNow(10);
  const e = estimate(progress, live, 30, undefined);
  t.is(e.rate_per_second, 2);
  t.is(e.eta_seconds, 50);
  t.is(e.stalled_seconds, null);
  t.is(estimate(progress, live, 30, 0).eta_seconds, 50, 'SES_MAX_SEND_RATE=0: not paced');
  t.is(estimate(progress, live, 30, 1).eta_seconds, 100);
});

test('sends that stopped being accepted 15 s ago give no ETA, though the window still has some', (t) => {
  const progress = sendingProgress({ pending: 900, sent: 100, sinceMs: 600_000, lastMinute: 300 });
  const outage = acceptedAtNow(30, 15);
  const e = estimate(progress, outage, 30, undefined);
  t.is(e.rate_per_second, 1);
  t.is(e.eta_seconds, null);
  t.is(e.stalled_seconds, 15);
  // Paced at 0.1/s, 20 s between two sends is the pace, not a stall (three sends' time: 30 s).
  const slow = acceptedAtNow(3, 20);
  const paced = estimate(progress, slow, 30, 0.1);
  t.is(paced.stalled_seconds, null);
  t.is(paced.eta_seconds, 9000);
});

test('a paused campaign shows why and no ETA', async (t) => {
  const id = await campaignWith(
    'paused',
    [
      { n: 30, status: 'sent', accepted: true, recordedAgo: 5, attemptedAgo: 5 },
      { n: 70, status: 'pending' },
    ],
    'reputation: bounce rate 6.00% above 4.00%',
  );
  const s = await status(id);
  t.regex(s.text, /: paused: reputation: bounce rate 6\.00% above 4\.00%\n/);
  t.regex(s.text, /paused: no ETA; 70 left, sent when the campaign is resumed/);
  t.notRegex(s.text, /ETA \d/);
  t.notRegex(s.text, /send rate/);
  t.is(s.json.eta_seconds, null);
  t.is(s.json.rate_per_second, null);
});

test('a done campaign shows how long it took, not a rate', async (t) => {
  const id = await campaignWith('done', [
    { n: 50, status: 'sent', accepted: true, recordedAgo: 3600, attemptedAgo: 3733 },
    { n: 2, status: 'bounced', accepted: true, recordedAgo: 3600, attemptedAgo: 3700 },
  ]);
  // Done 3,600 s ago; the first send 3,733 s ago: 2m13s.
  await db.pool.query(
    `alter table campaigns disable trigger _200_timestamps;
     update campaigns set updated_at = now() - interval '3600 seconds' where campaign_id = '${id}';
     alter table campaigns enable trigger _200_timestamps;`,
  );
  const s = await status(id);
  t.regex(s.text, /done in 2m13s: first send \S+ \S+Z, finished \S+ \S+Z/);
  t.notRegex(s.text, /send rate|ETA/);
  t.is(Math.round(s.json.duration_seconds ?? 0), 133);
  t.is(s.json.rate_per_second, null);
});
