// send_recipient: sends one campaign email through SES, at most once.
// Payload: {"campaign_id": uuid, "customer_id": uuid}
// Rerun-safe: the recipient is claimed under its row lock and the claim is committed before
// SendEmail is called; a rerun finds it no longer pending and does nothing. A claim that never got
// an outcome (crash, timeout) becomes in_doubt, resolved later from SES events, never resent.
// Paced: the job first reserves a global send slot (none when its recipient is not pending or its
// campaign not sendable: it then ends at once), sleeps until just before it, and only then
// claims; so a worker killed while its jobs wait for their slots leaves nothing in doubt. The
// paced jobs of a process waiting for their slots are limited to PACED_HORIZON_S of the rate;
// the others wait before reserving. Slot reservations, claims and outcomes of the jobs running at
// the same moment in this process share a statement and a commit each
// (src/queries/send-batches.ts); each job still waits for its own claim's commit.
// SES errors are judged by their scope (src/ses/errors.ts): the recipient's own refusal fails it;
// an account or configuration error puts it back to pending and pauses its campaign with the
// reason (record_send_outcomes); an outage (refused connection, throttling) opens this process's
// circuit breaker, so the other sends wait in admit() instead of each failing, and the recipient
// gets a new job at the end of the back-off; an ambiguous answer (timeout, 5xx) leaves it in doubt.
// Enqueues: that new send_recipient, inside record_send_outcomes, in the same transaction.
// Fails permanently (no retries) for a malformed payload or a recipient that does not exist.
import { SendEmailCommand } from '@aws-sdk/client-sesv2';
import type { JobHelpers } from 'graphile-worker';
import { z } from 'zod';
import { maskEmails } from '../src/logger.ts';
import { createSendBatches } from '../src/queries/send-batches.ts';
import {
  autoPauseCampaign,
  finishCampaignIfComplete,
  type RecipientKey,
  reserveSendSlot,
  type SendClaim,
  type SendOutcome,
} from '../src/queries/sending.ts';
import { createCircuitBreaker } from '../src/ses/circuit-breaker.ts';
import { DeadlineMissedError, sendBy } from '../src/ses/client.ts';
import { classifySendError, errorMessage, errorName } from '../src/ses/errors.ts';
import { buildSendEmailInput, type OutgoingEmail } from '../src/ses/message.ts';
import { defineTask, PermanentJobError } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';
import { createFailureGuard } from '../src/worker/failure-guard.ts';
import { createLimiter } from '../src/worker/limiter.ts';

const payloadSchema = z.object({ campaign_id: z.uuid(), customer_id: z.uuid() });

// Pacing spends 96% of the allowed rate: a send that starts late (a busy CPU, a slow request)
// bunches up with the next ones, and up to ~40 ms of such lateness must still never put more than
// the account's limit into any one-second window.
const PACING_HEADROOM = 0.96;

// A send that wakes up more than this after its slot takes a new slot instead: late sends would
// bunch up with the on-time ones behind them and overfill a one-second window.
const MAX_SLOT_LATENESS_MS = 20;

// A send is late when the request leaves later than this after its slot. The check runs twice: on
// waking up, and again as the last step before the request is written (after rendering, building
// and signing), because a cold SDK path or a busy CPU can take longer than the slot's margin.
const MAX_SLOT_TRIES = 10;

// A paced job claims this long before its slot, so that the claim's commit is done by then.
const CLAIM_LEAD_MS = 8;

// Paced jobs wake up to claim on a grid of this step, so that the jobs whose slots fall in one
// step claim in one statement and one commit (R = 1,000/s: five claims a batch instead of one).
// A claim is then committed at most CLAIM_LEAD_MS + CLAIM_TICK_MS before its slot.
const CLAIM_TICK_MS = 5;

// How far ahead the paced jobs of one process may hold send slots: at most rate x this many jobs
// wait for their slots at once (never fewer than MIN_PACED_WAITING), the others wait before
// reserving. Reserved slots queue up to (jobs waiting) / rate seconds ahead; with many jobs
// asleep on their slots, a busy CPU wakes more of them late, each late one takes a new slot at
// the back of that queue, and the rate collapses (seen at concurrency 64 under load: 26/s for
// R = 100/s). A job leaves the limit when its request starts: jobs waiting on SES's answer hold
// no slot, so the sends in flight follow rate x latency (16 at once in all, as before, held
// R = 1,000/s with 30 ms of latency to 533/s).
const PACED_HORIZON_S = 0.1;
const MIN_PACED_WAITING = 16;

async function sleepUntil(at: number): Promise<void> {
  const wait = at - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

export default function createSendRecipient(deps: TaskDeps) {
  const { pool, config, ses } = deps;
  const pacedRate = () => (deps.sendRate() ?? 0) * PACING_HEADROOM || undefined;
  // Claims and outcomes of the sends running at the same moment share one statement and commit.
  const batches = createSendBatches(pool, { leaseSeconds: config.sendClaimLeaseSeconds });
  const breaker = createCircuitBreaker({ logger: deps.logger });
  const failureGuard = createFailureGuard(config.sendFailureMaxRate);
  // The last pause reason logged per campaign, so that the sends in flight when a campaign
  // pauses for one reason log it once, not once each.
  const pauseLogged = new Map<string, string>();

  async function content(claim: SendClaim): Promise<OutgoingEmail['content']> {
    const data = claim.template_data ?? {};
    if (claim.provider === 'ses') {
      return { kind: 'ses', templateName: claim.provider_template_name ?? '', templateData: data };
    }
    return { kind: 'internal', rendered: await deps.render(claim.template_id ?? '', data) };
  }

  // Sends at the claim's pacing slot; a send that would leave late takes a new slot (at most
  // MAX_SLOT_TRIES times, then it goes as it is).
  async function sendPaced(
    key: RecipientKey,
    claim: SendClaim,
    pacing: { rate: number; slot: number } | undefined,
    releaseSlot: () => void,
  ): Promise<SendOutcome> {
    let slot = pacing?.slot;
    for (let tries = 1; ; tries++) {
      const deadline =
        slot === undefined || tries > MAX_SLOT_TRIES ? undefined : slot + MAX_SLOT_LATENESS_MS;
      if (slot !== undefined) await sleepUntil(slot);
      if (deadline === undefined || Date.now() <= deadline) {
        releaseSlot();
        try {
          return await send(key, claim, deadline);
        } catch (error) {
          if (!(error instanceof DeadlineMissedError)) throw error;
        }
      }
      slot = await batches.reserveAgain(pacing?.rate ?? 1);
    }
  }

  async function send(
    key: RecipientKey,
    claim: SendClaim,
    deadline: number | undefined,
  ): Promise<SendOutcome> {
    let email: OutgoingEmail;
    try {
      email = {
        from: config.ses.from,
        to: claim.email ?? '',
        campaignId: key.campaign_id,
        customerId: key.customer_id,
        unsubscribeUrl: String(claim.template_data?.unsubscribe_url ?? ''),
        configurationSet: config.ses.configurationSet,
        content: await content(claim),
      };
    } catch (error) {
      // Nothing reached SES; a template that cannot render fails this recipient, not the job.
      return { outcome: 'failed', error: `render: ${errorMessage(error)}` };
    }
    try {
      const input = buildSendEmailInput(email);
      if (deadline !== undefined) sendBy(input, deadline);
      const result = await ses.send(new SendEmailCommand(input));
      breaker.succeeded();
      return { outcome: 'sent', messageId: result.MessageId ?? 'unknown' };
    } catch (error) {
      if (error instanceof DeadlineMissedError) throw error;
      deps.metrics.sesErrors.inc({ name: errorName(error) });
      const message = errorMessage(error);
      switch (classifySendError(error, config.ses.from)) {
        case 'recipient':
          breaker.succeeded();
          return { outcome: 'failed', error: message };
        case 'configuration':
          breaker.succeeded();
          return { outcome: 'paused', error: `SES: ${message}` };
        case 'outage':
          breaker.failed(message);
          return { outcome: 'released', error: message, retryAt: breaker.retryAt() };
        case 'ambiguous':
          breaker.failed(message);
          return { outcome: 'in_doubt', error: message };
      }
    }
  }

  // After the outcome is recorded: logs what an operator must know (once per campaign pause),
  // and lets the failure-rate guard pause a campaign SES keeps refusing.
  async function afterOutcome(key: RecipientKey, outcome: SendOutcome, log: JobHelpers['logger']) {
    const campaign = key.campaign_id;
    deps.metrics.sends.inc({ outcome: outcome.outcome });
    if (outcome.outcome === 'paused') {
      if (pauseLogged.get(campaign) !== outcome.error) {
        pauseLogged.set(campaign, outcome.error);
        deps.logger.error(
          { campaign_id: campaign, reason: maskEmails(outcome.error) },
          'campaign PAUSED: SES refuses to send for an account or configuration reason; fix it, ' +
            'then resume the campaign (recipients are pending, none failed)',
        );
      }
      return;
    }
    if (outcome.outcome === 'released') {
      log.debug(`send to ${key.customer_id} of ${campaign} released: ${outcome.error}`);
      return;
    }
    if (outcome.outcome === 'in_doubt') {
      log.warn(`send to ${key.customer_id} of ${campaign}: in doubt`, {
        error: maskEmails(outcome.error),
      });
      return;
    }
    if (outcome.outcome === 'failed') {
      log.warn(`send to ${key.customer_id} of ${campaign}: failed`, {
        error: maskEmails(outcome.error),
      });
    }
    const reason = failureGuard.record(campaign, outcome.outcome === 'failed');
    if (reason && (await autoPauseCampaign(pool, campaign, reason))) {
      deps.logger.error({ campaign_id: campaign, reason }, 'campaign PAUSED: too many sends fail');
    }
  }

  const pacedLimit = createLimiter(() =>
    Math.max(MIN_PACED_WAITING, Math.ceil((pacedRate() ?? 0) * PACED_HORIZON_S)),
  );

  return defineTask('send_recipient', payloadSchema, async (key, helpers) => {
    const rate = pacedRate();
    // Held from the slot's reservation until the request starts (not while SES answers).
    const releaseSlot = rate ? await pacedLimit.acquire() : () => undefined;
    try {
      // While SES is unavailable the whole process waits here, before taking a pacing slot or
      // claiming anyone; after the back-off one send probes. Inside the paced limit, so that
      // only the sends already past this point when SES goes away (those in flight, about
      // rate x latency, or the concurrency unpaced) fail before the breaker opens.
      const permit = await breaker.admit(helpers.abortSignal);
      try {
        await sendRecipient(key, helpers, rate, releaseSlot);
      } finally {
        permit.release();
      }
    } finally {
      releaseSlot();
    }
  });

  async function sendRecipient(
    key: RecipientKey,
    helpers: JobHelpers,
    rate: number | undefined,
    releaseSlot: () => void,
  ): Promise<void> {
    const log = helpers.logger;
    let pacing: { rate: number; slot: number } | undefined;
    if (rate) {
      // No slot for a recipient that is not pending or a campaign that is not sendable: such a
      // job claims at once and ends without spending the account's rate.
      const slot = await batches.reserve(key, rate);
      if (slot !== undefined) {
        pacing = { rate, slot };
        await sleepUntil(Math.floor((pacing.slot - CLAIM_LEAD_MS) / CLAIM_TICK_MS) * CLAIM_TICK_MS);
      }
    }
    const claim = await batches.claim(key, pacing !== undefined);
    if (rate && !pacing && claim.outcome === 'claimed') {
      // Resumed between the slot check and the claim: take a slot now (sendPaced waits for it).
      pacing = { rate, slot: (await reserveSendSlot(pool, rate)).getTime() };
    }
    if (claim.outcome === 'not_found') {
      throw new PermanentJobError(
        `send_recipient: no recipient (campaign_id ${key.campaign_id}, customer_id ${key.customer_id})`,
      );
    }
    if (claim.outcome === 'in_flight') {
      // Another job holds a fresh claim (a duplicate job). Nothing is left for this job: the
      // holder records the outcome; if its process dies, release_dead_workers puts the claim in
      // doubt (never resent), and the sweep does so once it has expired. Retrying
      // here only added graphile-worker's exponential backoff (minutes after a few attempts).
      log.debug(`skipping ${key.customer_id} of ${key.campaign_id}: another job holds its claim`);
      return;
    }
    if (claim.outcome !== 'claimed') {
      if (claim.outcome === 'in_doubt') {
        log.warn(`recipient ${key.customer_id} of ${key.campaign_id} is in doubt; not resending`);
      } else {
        log.debug(`skipping ${key.customer_id} of ${key.campaign_id}: ${claim.outcome}`);
      }
      await finishCampaignIfComplete(pool, key.campaign_id);
      return;
    }
    const attempt = claim.attempt_count;
    if (attempt === null) throw new Error('send_recipient: a claim without its attempt number');
    const outcome = await sendPaced(key, claim, pacing, releaseSlot);
    releaseSlot();
    const recorded = await batches.record(key, attempt, outcome);
    if (recorded === 'stale') {
      // Claimed again since (an operator's resend after this attempt was put in doubt): this
      // outcome must not overwrite the new claim. A message id here means SES did accept this
      // attempt's message, which the operator resending it did not know.
      log.warn(
        `outcome of attempt ${attempt} for ${key.customer_id} of ${key.campaign_id} is stale ` +
          `(claimed again since); dropped: ${outcome.outcome}` +
          (outcome.outcome === 'sent' ? ` as SES message ${outcome.messageId}` : ''),
      );
      return;
    }
    if (recorded !== 'unchanged') await afterOutcome(key, outcome, log);
    // Only the last sends of a campaign ask whether it is done (see record_send_outcomes).
    if (recorded !== 'recorded') await finishCampaignIfComplete(pool, key.campaign_id);
  }
}
