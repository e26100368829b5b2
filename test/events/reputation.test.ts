import test from 'ava';
import { applySesEvent } from '../../src/events/queries.ts';
import { automaticPauses, databaseForFile } from '../helpers/db.ts';
import {
  createRecipient,
  createRecipients,
  createSendingCampaign,
  createSentRecipient,
  type RecipientTarget,
} from '../helpers/factories.ts';
import { LIMITS, sesEvent } from './helpers.ts';

const db = databaseForFile();

async function statusOf(campaignId: string): Promise<string | undefined> {
  const { rows } = await db.pool.query<{ status: string }>(
    'select status from campaigns where campaign_id = $1',
    [campaignId],
  );
  return rows[0]?.status;
}

/** A campaign with `total` sent recipients, of which the returned ones are addressable. */
async function campaignWithSent(total: number, addressable: number, status = 'sending') {
  const campaignId = await createSendingCampaign(db.pool, status);
  const targets: RecipientTarget[] = [];
  for (let i = 0; i < addressable; i++)
    targets.push(await createSentRecipient(db.pool, campaignId));
  await createRecipients(db.pool, campaignId, total - addressable, 'sent');
  return { campaignId, targets };
}

test('pauses a sending campaign once permanent bounces go above 4% of 100 sent, saying why', async (t) => {
  const { campaignId, targets } = await campaignWithSent(100, 5);
  for (const target of targets.slice(0, 4)) {
    const outcome = await applySesEvent(db.pool, sesEvent('Bounce', target), LIMITS);
    t.is(outcome.paused_reason, null, '4 of 100 is at the limit, not above it');
  }
  t.is(await statusOf(campaignId), 'sending');
  const fifth = targets[4] as RecipientTarget;
  const outcome = await applySesEvent(db.pool, sesEvent('Bounce', fifth), LIMITS);
  t.is(
    outcome.paused_reason,
    'permanent bounce rate 5.00% (5 of 100 sent) is above the 4.000% limit',
  );
  t.is(await statusOf(campaignId), 'paused');
  t.deepEqual(await automaticPauses(db.pool, campaignId), [
    { actor: 'mailer:reputation-guard', note: outcome.paused_reason, automatic: true },
  ]);
});

test('does not pause a campaign below the minimum sample, however high its rates', async (t) => {
  const { campaignId, targets } = await campaignWithSent(50, 20);
  for (const target of targets.slice(0, 10)) {
    await applySesEvent(db.pool, sesEvent('Bounce', target), LIMITS);
  }
  for (const target of targets.slice(10)) {
    const outcome = await applySesEvent(db.pool, sesEvent('Complaint', target), LIMITS);
    t.is(outcome.paused_reason, null);
  }
  t.is(await statusOf(campaignId), 'sending');
});

test('pauses a queued campaign when complaints go above 0.08% of its sent recipients', async (t) => {
  const { campaignId, targets } = await campaignWithSent(1000, 1, 'draft');
  // Queued with nobody pending would be done at once; one recipient still waits for its send.
  await createRecipient(db.pool, campaignId, 'pending');
  await db.pool.query(`update campaigns set status = 'queued' where campaign_id = $1`, [
    campaignId,
  ]);
  t.is(await statusOf(campaignId), 'queued');
  const outcome = await applySesEvent(
    db.pool,
    sesEvent('Complaint', targets[0] as RecipientTarget),
    LIMITS,
  );
  t.is(outcome.paused_reason, 'complaint rate 0.100% (1 of 1000 sent) is above the 0.080% limit');
  t.is(await statusOf(campaignId), 'paused');
});

test('transient bounces, suppression-list bounces and repeated events do not count', async (t) => {
  const { campaignId, targets } = await campaignWithSent(100, 6);
  const [a, b, c, d, e, f] = targets as [RecipientTarget, ...RecipientTarget[]];
  for (const target of [a, b, c, d] as RecipientTarget[]) {
    await applySesEvent(db.pool, sesEvent('Bounce', target), LIMITS);
  }
  // The same bounce again (a replay): still 4 bouncing recipients.
  await applySesEvent(db.pool, sesEvent('Bounce', a), LIMITS);
  await applySesEvent(
    db.pool,
    sesEvent('Bounce', e as RecipientTarget, {
      detail: { bounceType: 'Transient', bounceSubType: 'MailboxFull' },
    }),
    LIMITS,
  );
  const outcome = await applySesEvent(
    db.pool,
    sesEvent('Bounce', f as RecipientTarget, {
      detail: { bounceSubType: 'OnAccountSuppressionList' },
    }),
    LIMITS,
  );
  t.is(outcome.paused_reason, null);
  t.is(await statusOf(campaignId), 'sending');
});

test('a campaign that is done is never paused', async (t) => {
  const { campaignId, targets } = await campaignWithSent(100, 10, 'done');
  for (const target of targets) {
    const outcome = await applySesEvent(db.pool, sesEvent('Bounce', target), LIMITS);
    t.is(outcome.paused_reason, null);
  }
  t.is(await statusOf(campaignId), 'done');
});

test('the limits come from the caller (configuration)', async (t) => {
  const { campaignId, targets } = await campaignWithSent(20, 2);
  const outcome = await applySesEvent(db.pool, sesEvent('Bounce', targets[0] as RecipientTarget), {
    maxBounceRate: 0.01,
    maxComplaintRate: 0.01,
    minSent: 10,
  });
  t.regex(outcome.paused_reason ?? '', /^permanent bounce rate 5\.00% \(1 of 20 sent\)/);
  t.is(await statusOf(campaignId), 'paused');
});
