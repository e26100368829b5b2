import { randomUUID } from 'node:crypto';
import test from 'ava';
import { attentionRecipients, campaignChart } from '../../src/queries/campaign-page.ts';
import { actionsOf, databaseForFile } from '../helpers/db.ts';
import { createRecipient, createSendingCampaign, recipientRow } from '../helpers/factories.ts';
import { getPage, loginAs, pagesApp, postForm } from './pages-helpers.ts';

const db = databaseForFile();
const XSS = '<script>alert(1)</script>';

async function campaignWithTrouble() {
  const campaignId = await createSendingCampaign(db.pool);
  await createRecipient(db.pool, campaignId, 'sent', { messageId: `ses-${randomUUID()}` });
  const failed = await createRecipient(db.pool, campaignId, 'failed', {
    email: `${XSS}-${randomUUID()}@example.com`,
    lastError: `MessageRejected: ${XSS} (HTTP 400)`,
  });
  const doubt = await createRecipient(db.pool, campaignId, 'in_doubt', {
    lastError: 'TimeoutError: socket hang up',
  });
  // Two minutes of events, one quiet minute between them.
  await db.pool.query(
    `insert into email_events_op (event_type, campaign_id, email, event_time)
     select t, $1, 'x@example.com', date_trunc('minute', now()) - make_interval(mins => m)
       from (values ('send', 2), ('send', 2), ('delivery', 2), ('bounce', 0), ('complaint', 0))
            v(t, m)`,
    [campaignId],
  );
  return { campaignId, failed, doubt };
}

test('a viewer sees counts, rates, SES errors, the chart and the lists, escaped, and no forms', async (t) => {
  const { campaignId } = await campaignWithTrouble();
  const app = pagesApp(db.pool);
  const viewer = await loginAs(db.pool, 'viewer');
  const res = await getPage(app, viewer, `/campaigns/${campaignId}`);
  t.is(res.statusCode, 200);
  const body = res.body;
  t.regex(body, /<th scope="row">failed<\/th><td class="num">1<\/td>/);
  t.regex(body, /<th scope="row">in doubt<\/th><td class="num">1<\/td>/);
  t.regex(body, /delivered <strong>0<\/strong>/);
  t.regex(body, /SES reviews at/);
  t.regex(body, /<td>MessageRejected<\/td><td class="num">1<\/td><td>failed<\/td>/);
  t.regex(body, /<svg class="chart"/);
  t.regex(body, /<polyline points="[^"]+" fill="none" stroke="#1f6feb"/);
  t.false(body.includes(XSS), 'no raw markup from the data');
  t.true(body.includes('&lt;script&gt;alert(1)&lt;/script&gt;-'));
  t.false(body.includes('/retry-failed'), 'a viewer gets no action forms');
  t.false(body.includes('name="decision"'));
  t.false(/ style=/.test(body), 'no inline style');
});

test('the chart counts events per minute, a quiet minute as zero', async (t) => {
  const { campaignId } = await campaignWithTrouble();
  const minutes = await campaignChart(db.pool, campaignId, 120);
  t.deepEqual(
    minutes.map((m) => m.counts),
    [
      { send: 2, delivery: 1, bounce: 0, complaint: 0 },
      { send: 0, delivery: 0, bounce: 0, complaint: 0 },
      { send: 0, delivery: 0, bounce: 1, complaint: 1 },
    ],
  );
  t.deepEqual(await campaignChart(db.pool, campaignId, 1), [
    {
      minute: minutes[2]?.minute as Date,
      counts: { send: 0, delivery: 0, bounce: 1, complaint: 1 },
    },
  ]);
});

test('failed recipients come a page at a time, by address', async (t) => {
  const campaignId = await createSendingCampaign(db.pool);
  for (const name of ['c', 'a', 'b']) {
    await createRecipient(db.pool, campaignId, 'failed', { email: `${name}-${campaignId}@x.com` });
  }
  const first = await attentionRecipients(db.pool, campaignId, 'failed', undefined, 2);
  t.deepEqual(
    first.rows.map((r) => r.email[0]),
    ['a', 'b'],
  );
  const second = await attentionRecipients(db.pool, campaignId, 'failed', first.next, 2);
  t.deepEqual(
    second.rows.map((r) => r.email[0]),
    ['c'],
  );
  t.is(second.next, undefined);
  const app = pagesApp(db.pool);
  const viewer = await loginAs(db.pool, 'viewer');
  const page = await getPage(
    app,
    viewer,
    `/campaigns/${campaignId}?fa=${encodeURIComponent(first.next?.email ?? '')}&fi=${first.next?.customer_id}`,
  );
  t.true(page.body.includes(`c-${campaignId}@x.com`));
  t.false(page.body.includes(`a-${campaignId}@x.com`));
});

test('a viewer may not retry or resolve: 403 and nothing changes', async (t) => {
  const { campaignId, failed, doubt } = await campaignWithTrouble();
  const app = pagesApp(db.pool);
  const viewer = await loginAs(db.pool, 'viewer');
  const retry = await postForm(app, viewer, `/campaigns/${campaignId}/retry-failed`, {
    note: 'try',
  });
  t.is(retry.statusCode, 403);
  const resolve = await postForm(
    app,
    viewer,
    `/campaigns/${campaignId}/in-doubt/${doubt.customerId}`,
    {
      decision: 'sent',
    },
  );
  t.is(resolve.statusCode, 403);
  t.is((await recipientRow(db.pool, failed))?.recipient_status, 'failed');
  t.is((await recipientRow(db.pool, doubt))?.recipient_status, 'in_doubt');
});

test('an operator retries the failed recipients, recorded under their console name', async (t) => {
  const { campaignId, failed } = await campaignWithTrouble();
  const app = pagesApp(db.pool);
  const operator = await loginAs(db.pool, 'operator');
  const page = await getPage(app, operator, `/campaigns/${campaignId}`);
  t.true(page.body.includes(`action="/campaigns/${campaignId}/retry-failed"`));
  const noNote = await postForm(app, operator, `/campaigns/${campaignId}/retry-failed`, {});
  t.is(noNote.statusCode, 409);
  t.is((await recipientRow(db.pool, failed))?.recipient_status, 'failed');
  const res = await postForm(app, operator, `/campaigns/${campaignId}/retry-failed`, {
    note: 'addresses fixed, ticket 4713',
  });
  t.is(res.statusCode, 303);
  t.is(res.headers.location, `/campaigns/${campaignId}?done=retried&n=1`);
  t.is((await recipientRow(db.pool, failed))?.recipient_status, 'pending');
  const [action] = (await actionsOf(db.pool, 'retry_failed')).filter(
    (a) => a.campaign_id === campaignId,
  );
  t.is(action?.actor, `console:${operator.username}`);
  t.is(action?.note, 'addresses fixed, ticket 4713');
  const after = await getPage(app, operator, res.headers.location as string);
  t.regex(after.body, /1 failed recipient\(s\) queued again/);
});

test('an operator decides an in-doubt recipient: mark sent, resend or mark failed, recorded', async (t) => {
  const { campaignId, doubt } = await campaignWithTrouble();
  const other = await createRecipient(db.pool, campaignId, 'in_doubt');
  const third = await createRecipient(db.pool, campaignId, 'in_doubt');
  const app = pagesApp(db.pool);
  const operator = await loginAs(db.pool, 'operator');
  const page = await getPage(app, operator, `/campaigns/${campaignId}`);
  t.true(page.body.includes(`action="/campaigns/${campaignId}/in-doubt/${doubt.customerId}"`));
  const sent = await postForm(
    app,
    operator,
    `/campaigns/${campaignId}/in-doubt/${doubt.customerId}`,
    {
      decision: 'sent',
      note: 'in the SES console',
    },
  );
  t.is(sent.statusCode, 303);
  t.is((await recipientRow(db.pool, doubt))?.recipient_status, 'sent');
  const resend = await postForm(
    app,
    operator,
    `/campaigns/${campaignId}/in-doubt/${other.customerId}`,
    {
      decision: 'resend',
    },
  );
  t.is(resend.statusCode, 303);
  t.is((await recipientRow(db.pool, other))?.recipient_status, 'pending');
  const failed = await postForm(
    app,
    operator,
    `/campaigns/${campaignId}/in-doubt/${third.customerId}`,
    { decision: 'failed', note: 'refused in the endpoint log' },
  );
  t.is(failed.statusCode, 303);
  t.like(await recipientRow(db.pool, third), {
    recipient_status: 'failed',
    last_error: 'in doubt; marked not sent (failed) by an operator',
  });
  t.regex(
    (await getPage(app, operator, failed.headers.location as string)).body,
    /marked failed: nothing was sent/,
  );
  const actions = (await actionsOf(db.pool, 'resolve_in_doubt')).filter(
    (a) => a.campaign_id === campaignId,
  );
  t.deepEqual(
    actions.map((a) => [a.actor, a.details.decision, a.note]),
    [
      [`console:${operator.username}`, 'sent', 'in the SES console'],
      [`console:${operator.username}`, 'resend', null],
      [`console:${operator.username}`, 'failed', 'refused in the endpoint log'],
    ],
  );
  // Deciding again: the SQL function refuses, the page says why.
  const again = await postForm(
    app,
    operator,
    `/campaigns/${campaignId}/in-doubt/${doubt.customerId}`,
    {
      decision: 'resend',
    },
  );
  t.is(again.statusCode, 409);
  t.regex(again.body, /is sent, not in_doubt; nothing changed/);
});

test('an unknown campaign is a 404', async (t) => {
  const app = pagesApp(db.pool);
  const viewer = await loginAs(db.pool, 'viewer');
  t.is(
    (await getPage(app, viewer, '/campaigns/00000000-0000-0000-0000-000000000000')).statusCode,
    404,
  );
  t.is((await getPage(app, viewer, '/campaigns/nope')).statusCode, 404);
});
