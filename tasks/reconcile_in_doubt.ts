// reconcile_in_doubt (recurring, every 10 minutes; see crontab): in-doubt recipients (SendEmail was
// called, its outcome never recorded) are resolved from their own SES events in email_events_op
// (public.reconcile_in_doubt): an event whose tags name them, or an untagged one for their address
// that no other recipient can own, inside the attempt's window (SEND_CLAIM_LEASE_SECONDS). A send,
// delivery, open... makes them sent, a permanent bounce bounced, a complaint complained.
// With IN_DOUBT_RESEND_AFTER_MINUTES set, and SES_CONFIGURATION_SET publishing Send events to a
// topic in SNS_TOPIC_ARNS (asked of SES at each run that has a recipient to decide on), those with
// no event that long after their attempt are queued again, once (public.auto_resend_in_doubt,
// recorded in operator_actions as auto_resend). The rest, still without evidence after
// IN_DOUBT_ALERT_AFTER_HOURS, are reported (a warning with the count per campaign): an operator
// decides (`mailer doubt list`, `mailer doubt resolve`), since SES may have delivered them.
// Payload: none (cron's {_cron: ...} is ignored).
// Rerun-safe: only in_doubt rows change, each once (a resend at most once per recipient, ever);
// rows locked by an event being applied are skipped until the next run. Enqueues send_recipient
// jobs only for automatic resends, in the same transaction as the change.
import { z } from 'zod';
import { autoResendInDoubt, inDoubtRecipients, reconcileInDoubt } from '../src/queries/in-doubt.ts';
import { sendEventsUnpublished } from '../src/ses/preflight-events.ts';
import { defineTask } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

type Log = TaskDeps['logger'];

async function resendUnsent(deps: TaskDeps, log: Log, afterMinutes: number): Promise<void> {
  const { config } = deps;
  const afterSeconds = afterMinutes * 60;
  // Nothing old enough to decide on: SES is not asked.
  if (
    (await inDoubtRecipients(deps.pool, { olderThanSeconds: afterSeconds, limit: 1 })).length === 0
  ) {
    return;
  }
  const unpublished = await sendEventsUnpublished(
    deps.ses,
    config.ses.configurationSet,
    config.sns.topicArns,
  );
  if (unpublished !== undefined) {
    log.warn(
      { reason: unpublished },
      'IN_DOUBT_RESEND_AFTER_MINUTES is set, but SES does not publish Send events to mailer: ' +
        'no in-doubt recipient is resent automatically',
    );
    return;
  }
  const decisions = await autoResendInDoubt(deps.pool, {
    afterSeconds,
    leaseSeconds: config.sendClaimLeaseSeconds,
  });
  for (const d of decisions) {
    const fields = { campaign_id: d.campaign_id, customer_id: d.customer_id };
    if (d.resent) {
      log.warn(fields, `in-doubt recipient resent automatically (no SES Send event): ${d.result}`);
    } else {
      log.info(fields, `in-doubt recipient not resent automatically: ${d.result}`);
    }
  }
}

export default function createReconcileInDoubt(deps: TaskDeps) {
  return defineTask('reconcile_in_doubt', z.unknown(), async (_payload, helpers) => {
    const log = deps.logger.child({ task: 'reconcile_in_doubt', job_id: helpers.job.id });
    const resolved = await reconcileInDoubt(deps.pool, {
      leaseSeconds: deps.config.sendClaimLeaseSeconds,
    });
    for (const r of resolved) {
      const fields = { campaign_id: r.campaign_id, customer_id: r.customer_id };
      if (r.error !== null) {
        log.error({ ...fields, error: r.error }, 'in-doubt recipient could not be reconciled');
        continue;
      }
      log.info(
        { ...fields, event_id: r.event_id },
        `in-doubt recipient reconciled from an SES ${r.event_type} event: ${r.recipient_status}`,
      );
    }
    const afterMinutes = deps.config.inDoubtResendAfterMinutes;
    if (afterMinutes !== undefined) await resendUnsent(deps, log, afterMinutes);

    const hours = deps.config.inDoubtAlertAfterHours;
    const stale = await inDoubtRecipients(deps.pool, { olderThanSeconds: hours * 3600 });
    if (stale.length > 0) {
      const perCampaign: Record<string, number> = {};
      for (const r of stale) perCampaign[r.campaign_id] = (perCampaign[r.campaign_id] ?? 0) + 1;
      log.warn(
        { in_doubt: stale.length, campaigns: perCampaign },
        `${stale.length} recipient(s) in doubt for more than ${hours}h with no SES event to settle ` +
          'them: an operator must decide (mailer doubt list; mailer doubt resolve ... --sent|--resend)',
      );
    }
  });
}
