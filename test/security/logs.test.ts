// What the logs may show. Policy (RELIABILITY.md, "Logs"): never a credential (AWS keys, session
// tokens, database passwords), and never a recipient's full address: log lines name recipients by
// customer_id and campaign_id, which support can look up. A worker and the HTTP server are run at
// the most verbose level, with credentials in their environment, through every error path we can
// provoke (SES rejecting, failing, timing out, pausing the account; malformed and valid SES events;
// forged webhook calls; unsubscribe links good and bad), and their whole output is searched.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { LOCAL_TOPIC_ARN } from '../../src/ses-local/event-publisher.ts';
import { createEventSink, waitForEventsApplied } from '../faults/support.ts';
import { startServeCli, waitFor } from '../helpers/cli.ts';
import { createCustomer } from '../helpers/factories.ts';
import { generate, seedCustomers, startPipeline, waitForDone } from '../pipeline/harness.ts';

const SECRETS = {
  AWS_ACCESS_KEY_ID: 'AKIAMAILERTESTKEY7Q2Z',
  AWS_SECRET_ACCESS_KEY: 'mailerTestSecret/Must+Not/Leak0123456789abcd',
  AWS_SESSION_TOKEN: 'IQoJb3JpZ2luX2VjMailerTestSessionTokenMustNotLeak',
};
const DB_PASSWORD = 'DbPassw0rdMustNotLeak';
const ADDRESS = /[a-z0-9._%+'-]+@[a-z0-9.-]+\.[a-z]{2,}/i;

function withPassword(url: string): string {
  const u = new URL(url);
  u.password = DB_PASSWORD;
  return u.toString();
}

let output = '';

test.serial(
  'worker and server logs hold no credential, even at trace level on every error path',
  async (t) => {
    t.timeout(120_000);
    const sink = createEventSink({ hold: false });
    const p = await startPipeline(t, {
      ses: {
        onSend: sink.onSend,
        // A 5xx leaves its recipient in doubt: the 500s come later, so that the rejected address
        // is surely sent (and refused) in the first campaign.
        faults: { rejectAddresses: ['rejected@example.com'] },
      },
      env: { LOG_LEVEL: 'trace', SES_TIMEOUT_MS: '800', ...SECRETS },
    });
    t.teardown(() => sink.close());
    await sink.connect(p.db.pool);
    await seedCustomers(p.db, { active: 12 });
    await createCustomer(p.db.pool, { email: 'rejected@example.com' });
    await createCustomer(p.db.pool, { email: 'bounce@simulator.amazonses.com' });
    const worker = await p.startWorker({ DATABASE_URL: withPassword(p.db.url) });
    const { serve, url: serveUrl } = await startServeCli(t, {
      ...p.env,
      ...SECRETS,
      DATABASE_URL: withPassword(p.db.url),
      LOG_LEVEL: 'trace',
      SNS_TOPIC_ARNS: LOCAL_TOPIC_ARN,
    });

    const campaignId = await generate(p.db);
    await waitForDone(p.db, campaignId);
    await waitForEventsApplied(p.db);
    // SES holds requests past the client timeout, then pauses the account.
    p.ses.setFaults({ hangMs: 1500 });
    await createCustomer(p.db.pool, { email: 'slow@example.com' });
    const second = await generate(p.db, { date: '2026-12-07' });
    // A few timeouts are enough for their log lines; the worker's breaker then holds the sends
    // and probes at growing intervals, so SES answers again before the rest go.
    await waitFor(
      async () =>
        (
          await p.db.pool.query(
            `select 1 from campaign_recipients where campaign_id = $1 and recipient_status = 'in_doubt'
              limit 2`,
            [second],
          )
        ).rowCount === 2,
      { what: 'timeouts in doubt' },
    );
    p.ses.setFaults({});
    await waitForDone(p.db, second);
    p.ses.setFaults({ sendingPaused: true, failNext: { status: 500, count: 3 } });
    await createCustomer(p.db.pool, { email: 'paused@example.com' });
    const third = await generate(p.db, { date: '2027-01-04' });
    await waitFor(
      async () =>
        (
          await p.db.pool.query(
            `select 1 from campaigns where campaign_id = $1 and status = 'paused'`,
            [third],
          )
        ).rowCount === 1,
      { what: 'account pause handled' },
    );
    // A malformed event job, forged webhook calls, good and bad unsubscribe links.
    await p.db.pool.query(
      `select graphile_worker.add_job('process_ses_event',
       '{"eventType": "Bounce", "bounce": {"bounceType": "Sideways"},
         "mail": {"messageId": "x", "destination": ["victim@example.com"]}}')`,
    );
    await fetch(`${serveUrl}/webhooks/ses`, { method: 'POST', body: '{"Type":"Notification"}' });
    await fetch(`${serveUrl}/unsubscribe/${randomUUID()}`, {
      method: 'POST',
      body: 'List-Unsubscribe=One-Click',
    });
    await fetch(`${serveUrl}/unsubscribe/nonsense`);
    await waitFor(
      async () =>
        (
          await p.db.pool.query(`select 1 from graphile_worker.jobs where task_identifier = 'process_ses_event'
                                 and attempts < max_attempts`)
        ).rowCount === 0,
      { what: 'the malformed event to fail' },
    );

    output = worker.output() + serve.output();
    t.true(output.length > 10_000, `the processes did log (${output.length} characters)`);
    for (const [name, value] of Object.entries({ ...SECRETS, DB_PASSWORD })) {
      t.false(output.includes(value), `${name} appears in the logs`);
    }
    t.false(
      output.includes(SECRETS.AWS_ACCESS_KEY_ID.slice(4)),
      'not even part of the access key id',
    );
    t.regex(output, /SendingPausedException/, 'the error paths were taken');
    t.regex(output, /MessageRejected/);
  },
);

// Text that can carry addresses we do not control (SES error messages, rejected payloads) is
// logged through maskEmails (a***@example.com); no log line may hold a full address.
test.serial('no log line holds a recipient’s full address', (t) => {
  t.true(output.length > 0, 'the previous test collected the output');
  const lines = output.split('\n').filter((line) => ADDRESS.test(line));
  const everywhere = new RegExp(ADDRESS.source, 'gi');
  const sources = new Set(
    lines.map((line) =>
      line
        .replace(everywhere, '<address>')
        .replace(/"time":\d+,"pid":\d+,/, '')
        .slice(0, 400),
    ),
  );
  t.log(`${lines.length} log lines with an address; kinds:\n${[...sources].join('\n')}`);
  t.deepEqual([...sources], []);
});
