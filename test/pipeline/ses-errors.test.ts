// SES errors judged by their scope, end to end: real worker processes, the real SESv2 client over
// HTTP, the local SES and its fault modes. Emails are counted at the endpoint.
import { CreateEmailTemplateCommand } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { loadConfig } from '../../src/config.ts';
import { createSesClient } from '../../src/ses/client.ts';
import { type LocalSes, startLocalSes } from '../../src/ses-local/server.ts';
import { runCli, waitFor } from '../helpers/cli.ts';
import { automaticPauses } from '../helpers/db.ts';
import { createTemplate } from '../helpers/factories.ts';
import {
  campaignStatus,
  deliveriesByAddress,
  duplicates,
  generate,
  type Pipeline,
  seedCustomers,
  startPipeline,
  statusCounts,
  waitForDone,
} from './harness.ts';

async function pauseReason(p: Pipeline, campaignId: string): Promise<string | null> {
  const { rows } = await p.db.pool.query<{ pause_reason: string | null }>(
    'select pause_reason from campaigns where campaign_id = $1',
    [campaignId],
  );
  return rows[0]?.pause_reason ?? null;
}

async function waitForPaused(p: Pipeline, campaignId: string): Promise<void> {
  await waitFor(async () => (await campaignStatus(p.db, campaignId)) === 'paused', {
    what: 'campaign paused',
  });
  // In-flight sends of the campaign record their outcome after the pause.
  await waitFor(async () => (await statusCounts(p.db, campaignId)).sending === undefined, {
    what: 'no send in flight',
  });
}

async function resume(p: Pipeline, campaignId: string): Promise<void> {
  await p.db.pool.query('select resume_campaign($1)', [campaignId]);
}

test('AccessDenied pauses the campaign with the reason, fails nobody; after the fix one email each', async (t) => {
  const p = await startPipeline(t, { ses: { faults: { accessDenied: true } } });
  await seedCustomers(p.db, { active: 40 });
  await p.startWorker();
  const campaignId = await generate(p.db);
  await waitForPaused(p, campaignId);

  const reason = (await pauseReason(p, campaignId)) ?? '';
  t.regex(reason, /AccessDeniedException.*ses:SendEmail/);
  t.deepEqual(
    await automaticPauses(p.db.pool, campaignId),
    [{ actor: 'mailer:ses-error', note: reason, automatic: true }],
    'the pause is in the audit trail, by mailer',
  );
  t.deepEqual(await statusCounts(p.db, campaignId), { pending: 40 });
  t.is(p.ses.sent().length, 0);

  p.ses.setFaults({});
  await resume(p, campaignId);
  await waitForDone(p.db, campaignId);
  t.is(await pauseReason(p, campaignId), null, 'the reason goes with the pause');
  t.deepEqual(await statusCounts(p.db, campaignId), { sent: 40 });
  t.is(deliveriesByAddress(p.ses).size, 40);
  t.deepEqual(duplicates(p.ses), []);
});

test('a missing SES template pauses the campaign, fails nobody; created and resumed, one email each', async (t) => {
  const p = await startPipeline(t);
  await seedCustomers(p.db, { active: 30, week: 2 });
  await createTemplate(p.db.pool, {
    provider: 'ses',
    provider_template_name: 'weekly-one',
    week_of_month: 1,
  });
  await p.startWorker();
  const campaignId = await generate(p.db, { week: 1 });
  await waitForPaused(p, campaignId);

  t.regex((await pauseReason(p, campaignId)) ?? '', /weekly-one does not exist/);
  t.deepEqual(await statusCounts(p.db, campaignId), { pending: 30 });

  const ses = createSesClient(loadConfig({}), p.ses.url);
  await ses.send(
    new CreateEmailTemplateCommand({
      TemplateName: 'weekly-one',
      TemplateContent: { Subject: 'Hi {{name}}', Text: 'Hello {{name}}' },
    }),
  );
  ses.destroy();
  await resume(p, campaignId);
  await waitForDone(p.db, campaignId);
  t.deepEqual(await statusCounts(p.db, campaignId), { sent: 30 });
  t.is(deliveriesByAddress(p.ses).size, 30);
  t.deepEqual(duplicates(p.ses), []);
});

test('SES refusing connections for 20 s: nobody fails, the worker backs off as a whole and carries on by itself', async (t) => {
  const p = await startPipeline(t, { ses: { faults: { latencyMs: 20 } } });
  await seedCustomers(p.db, { active: 600 });
  const worker = await p.startWorker();
  const campaignId = await generate(p.db);
  await waitFor(async () => p.ses.sent().length >= 100, { what: 'sending under way' });
  await p.ses.close();
  const first = p.ses;
  const outputBefore = worker.output().length;
  await new Promise((resolve) => setTimeout(resolve, 20_000));
  const second: LocalSes = await startLocalSes({ port: first.port, faults: { latencyMs: 20 } });
  t.teardown(() => second.close());
  await waitForDone(p.db, campaignId);

  // Requests on the wire when the connections were cut are in doubt (SES may have taken them):
  // one per job running at that moment (8), and the breaker opens on the third failure in a row,
  // so a job freed by the first two can write one more on a connection being torn down (seen once
  // in CI: 9). Nobody failed, nobody got two emails.
  const counts = await statusCounts(p.db, campaignId);
  t.is((counts.sent ?? 0) + (counts.in_doubt ?? 0), 600, JSON.stringify(counts));
  t.true((counts.in_doubt ?? 0) <= 8 + 2, JSON.stringify(counts));
  const received = new Map<string, number>();
  for (const message of [...first.sent(), ...second.sent()]) {
    for (const to of message.to) received.set(to, (received.get(to) ?? 0) + 1);
  }
  const sent = await p.db.pool.query<{ email: string }>(
    `select email from campaign_recipients where campaign_id = $1 and recipient_status = 'sent'`,
    [campaignId],
  );
  t.deepEqual(
    sent.rows.filter((row) => received.get(row.email) !== 1).map((row) => row.email),
    [],
    'every sent recipient got exactly one email',
  );
  t.deepEqual(
    [...received].filter(([, n]) => n > 1),
    [],
  );
  // Without the breaker every job released its recipient and retried on its own: hundreds of
  // attempts and WARN lines in 20 s. With it: the sends in flight at the cut, then one probe
  // per back-off (1, 2, 4, 8, 16 s).
  const { rows } = await p.db.pool.query<{ extra: number }>(
    'select sum(attempt_count)::int - count(*)::int as extra from campaign_recipients where campaign_id = $1',
    [campaignId],
  );
  t.true((rows[0]?.extra ?? 0) <= 20, `extra attempts: ${rows[0]?.extra}`);
  const outageLines = worker
    .output()
    .slice(outputBefore)
    .split('\n')
    .filter((line) => line.includes('"level":40') || line.includes('"level":50'))
    .filter((line) => !line.includes(': in doubt"'));
  t.true(outageLines.length <= 2, `warn/error lines during the outage:\n${outageLines.join('\n')}`);
});

for (const status of [500, 502] as const) {
  test(`an answer of ${status} after SES recorded the message leaves it in doubt, never a second email`, async (t) => {
    const p = await startPipeline(t);
    await seedCustomers(p.db, { active: 50 });
    await p.startWorker();
    p.ses.setFaults({ failAfterAccept: { status, count: 5 } });
    const campaignId = await generate(p.db);
    await waitForDone(p.db, campaignId);

    t.deepEqual(await statusCounts(p.db, campaignId), { sent: 45, in_doubt: 5 });
    t.is(p.ses.sent().length, 50, 'SES took all 50, five of them without the caller knowing');
    t.deepEqual(duplicates(p.ses), []);
    const { rows } = await p.db.pool.query<{ last_error: string }>(
      `select last_error from campaign_recipients
        where campaign_id = $1 and recipient_status = 'in_doubt'`,
      [campaignId],
    );
    for (const row of rows) t.regex(row.last_error, status === 500 ? /InternalFailure/ : /502/);
  });
}

test('a campaign SES keeps refusing is paused by the failure-rate guard before everyone fails', async (t) => {
  const rejected = Array.from({ length: 300 }, (_, i) => `customer${i * 2 + 1}@example.com`);
  const p = await startPipeline(t, { ses: { faults: { rejectAddresses: rejected } } });
  await seedCustomers(p.db, { active: 600 });
  await p.startWorker();
  const campaignId = await generate(p.db);
  await waitForPaused(p, campaignId);

  const reason = (await pauseReason(p, campaignId)) ?? '';
  t.regex(reason, /of the last \d+ sends failed/);
  t.deepEqual(await automaticPauses(p.db.pool, campaignId), [
    { actor: 'mailer:failure-guard', note: reason, automatic: true },
  ]);
  const counts = await statusCounts(p.db, campaignId);
  t.true((counts.failed ?? 0) < 150, JSON.stringify(counts));
  t.true((counts.pending ?? 0) > 300, JSON.stringify(counts));
});

test("retry-failed queues a done campaign's failed recipients once; they get one email each", async (t) => {
  const p = await startPipeline(t, {
    ses: { faults: { rejectAddresses: ['customer3@example.com', 'customer4@example.com'] } },
  });
  await seedCustomers(p.db, { active: 20 });
  await p.startWorker();
  const campaignId = await generate(p.db);
  await waitForDone(p.db, campaignId);
  t.deepEqual(await statusCounts(p.db, campaignId), { sent: 18, failed: 2 });

  p.ses.setFaults({});
  const result = await runCli(
    ['campaign', 'retry-failed', campaignId, '--reason', 'addresses fixed, ticket 12'],
    { DATABASE_URL: p.db.url },
  );
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /2 failed recipients queued again/);
  await waitForDone(p.db, campaignId);
  t.deepEqual(await statusCounts(p.db, campaignId), { sent: 20 });
  t.is(deliveriesByAddress(p.ses).get('customer3@example.com'), 1);
  t.deepEqual(duplicates(p.ses), []);
  const { rows } = await p.db.pool.query(
    `select note, details from operator_actions where action = 'retry_failed' and campaign_id = $1`,
    [campaignId],
  );
  t.is(rows.length, 1);
  t.is(rows[0]?.note, 'addresses fixed, ticket 12');
  t.is(rows[0]?.details.recipients, 2);

  const again = await runCli(['campaign', 'retry-failed', campaignId], { DATABASE_URL: p.db.url });
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /no failed recipients/);
});
