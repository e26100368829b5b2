// send_recipient: sends one campaign email through SES, at most once.
// Payload: {"campaign_id": uuid, "customer_id": uuid}
// Rerun-safe: the recipient is claimed under its row lock and the claim is committed before
// SendEmail is called; a rerun finds it no longer pending and does nothing. A claim that never got
// an outcome (crash, timeout) becomes in_doubt, resolved later from SES events, never resent.
// Paced (src/worker/pacing.ts): the job first reserves a global send slot (none when its
// recipient is not pending or its campaign not sendable: it then ends at once), sleeps until
// just before it, and only then claims; so a worker killed while its jobs wait for their slots
// leaves nothing in doubt. Slot reservations, claims and outcomes of the jobs running at the same
// moment in this process share a statement and a commit each (src/queries/send-batches.ts); each
// job still waits for its own claim's commit.
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
import { campaignProgress } from '../src/queries/operations.ts';
import { createSendBatches } from '../src/queries/send-batches.ts';
import {
  autoPauseCampaign,
  type RecipientKey,
  type SendClaim,
  type SendOutcome,
} from '../src/queries/sending.ts';
import { createCircuitBreaker } from '../src/ses/circuit-breaker.ts';
import { classifySendError, errorMessage, errorName } from '../src/ses/errors.ts';
import { buildSendEmailInput, type OutgoingEmail } from '../src/ses/message.ts';
import { NotWrittenError, type WriteGate, writeWhen } from '../src/ses/sdk-stack.ts';
import { defineTask, PermanentJobError } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';
import { createFailureGuard } from '../src/worker/failure-guard.ts';
import { createPacer, type Place } from '../src/worker/pacing.ts';

const payloadSchema = z.object({ campaign_id: z.uuid(), customer_id: z.uuid() });

export default function createSendRecipient(deps: TaskDeps) {
  const { pool, config, ses } = deps;
  // Claims and outcomes of the sends running at the same moment share one statement and commit.
  const batches = createSendBatches(pool, { leaseSeconds: config.sendClaimLeaseSeconds });
  const pacer = createPacer(deps.sendRate, batches, {
    onSlotMissed: () => deps.metrics.slotsMissed.inc(),
  });
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

  async function send(
    key: RecipientKey,
    claim: SendClaim,
    gate: WriteGate | undefined,
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
      if (gate) writeWhen(input, gate);
      const result = await ses.send(new SendEmailCommand(input));
      breaker.succeeded();
      return { outcome: 'sent', messageId: result.MessageId ?? 'unknown' };
    } catch (error) {
      if (error instanceof NotWrittenError) throw error;
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

  // The job that finishes a campaign logs it once, with its counts (one line per campaign).
  async function finishIfComplete(campaignId: string): Promise<void> {
    if (!(await batches.finishIfComplete(campaignId))) return;
    const progress = await campaignProgress(pool, campaignId);
    deps.logger.info(
      { campaign_id: campaignId, recipients: progress?.recipients, counts: progress?.counts },
      'campaign done',
    );
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

  return defineTask('send_recipient', payloadSchema, async (key, helpers) => {
    // Held from the slot's reservation until the request starts (not while SES answers).
    const place = await pacer.place();
    try {
      // While SES is unavailable the whole process waits here, before taking a pacing slot or
      // claiming anyone; after the back-off one send probes. Inside the paced limit, so that
      // only the sends already past this point when SES goes away (those in flight, about
      // rate x latency, or the concurrency unpaced) fail before the breaker opens.
      const permit = await breaker.admit(helpers.abortSignal);
      try {
        await sendRecipient(key, helpers, place);
      } finally {
        permit.release();
      }
    } finally {
      place.release();
    }
  });

  async function sendRecipient(key: RecipientKey, helpers: JobHelpers, place: Place) {
    const log = helpers.logger;
    const slot = await pacer.reserve(key);
    const claim = slot?.claim ?? (await batches.claim(key, slot !== undefined));
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
      await finishIfComplete(key.campaign_id);
      return;
    }
    const attempt = claim.attempt_count;
    if (attempt === null) throw new Error('send_recipient: a claim without its attempt number');
    const outcome = await pacer.sendAt(slot, place, (gate) => send(key, claim, gate));
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
    if (recorded !== 'recorded') await finishIfComplete(key.campaign_id);
  }
}
