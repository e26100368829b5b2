// process_ses_event: applies one SES event (delivery, bounce, complaint, ...) to the database.
// Payload: the SNS Notification envelope stored by POST /webhooks/ses (its Message is the SES event
//   as a JSON string), or a bare SES event object, so an operator can replay one from psql:
//   select graphile_worker.add_job('process_ses_event', '<event json>'::json);
// Rerun-safe: public.apply_ses_event is one transaction, moves a recipient only out of the states
//   the event applies to, and a suppression only ever gets stronger; a rerun adds nothing but a
//   second row in email_events_op. Redelivered SNS messages never get here twice: the webhook
//   dedupes them by MessageId (sns_messages).
// A payload that is not an SES event, or an event type SES does not document, fails permanently:
//   retrying cannot make it parse. A database error is transient and retried.
// Enqueues nothing. May pause the campaign (reputation guard); that is logged with the reason.
import { applySesEvent } from '../src/events/queries.ts';
import { sesEventPayloadSchema } from '../src/events/ses-event.ts';
import { defineTask, PermanentJobError } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

// Opens, clicks and the like arrive by the thousand and change nothing; they are logged at debug.
const NOTEWORTHY = new Set(['bounce', 'complaint', 'reject', 'rendering_failure', 'subscription']);

// SQLSTATEs that come from the event itself, so it will be just as wrong on every retry:
// class 22 data exceptions (a timestamp PostgreSQL cannot read, an unknown event type), class 54
// program limits (a value too large for an index entry), and not-null and check violations.
// Connection failures, deadlocks and the like are transient and retried.
function isDataException(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  return code.startsWith('22') || code.startsWith('54') || code === '23502' || code === '23514';
}

export default function createProcessSesEvent(deps: TaskDeps) {
  return defineTask('process_ses_event', sesEventPayloadSchema, async (payload, helpers) => {
    const log = deps.logger.child({
      task: 'process_ses_event',
      job_id: helpers.job.id,
      sns_message_id: payload.snsMessageId,
    });
    if (payload.kind === 'subscription_succeeded') {
      log.info('SES confirmed its SNS topic subscription; nothing to apply');
      return;
    }
    let outcome: Awaited<ReturnType<typeof applySesEvent>>;
    try {
      outcome = await applySesEvent(deps.pool, payload.event, deps.config.reputation);
    } catch (error) {
      if (isDataException(error)) {
        throw new PermanentJobError(
          `process_ses_event: ${payload.type} event cannot be applied: ${(error as Error).message}`,
          { cause: error },
        );
      }
      throw new Error('process_ses_event: apply_ses_event failed', { cause: error });
    }
    deps.metrics.events.inc({ type: outcome.event_type });
    const fields = {
      event_type: outcome.event_type,
      ses_message_id: outcome.ses_message_id,
      campaign_id: outcome.campaign_id,
      customer_id: outcome.customer_id,
      event_id: outcome.event_id,
    };
    const line = `SES ${payload.type} event: ${outcome.effect}`;
    if (NOTEWORTHY.has(outcome.event_type)) log.info(fields, line);
    else log.debug(fields, line);
    if (outcome.paused_reason) {
      log.warn(
        { ...fields, reason: outcome.paused_reason },
        `reputation guard PAUSED campaign ${outcome.campaign_id}: ${outcome.paused_reason}. ` +
          'Check the list, then set the campaign back to queued to resume.',
      );
    }
  });
}
