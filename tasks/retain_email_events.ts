// retain_email_events (recurring, daily; see crontab): email_events_op keeps EVENTS_RETENTION_DAYS
// of events for support; older rows are exported as gzip NDJSON that Redshift COPY loads (to
// EVENTS_EXPORT_DIR, or S3 when EVENTS_EXPORT_S3_BUCKET is set), verified, and only then deleted,
// exactly those ids, in one transaction (src/retention/events.ts).
// Payload: none (cron's {_cron: ...} is ignored).
// Rerun-safe: it works on "everything older than the cutoff", and a session advisory lock keeps
// two runs from exporting the same rows. A failure anywhere before the delete deletes nothing; the
// job fails and retries, and the next day's run catches up anyway.
// Enqueues nothing.
import { z } from 'zod';
import { retainEmailEvents } from '../src/retention/events.ts';
import { defineTask } from '../src/worker/define.ts';
import type { TaskDeps } from '../src/worker/deps.ts';

export default function createRetainEmailEvents(deps: TaskDeps) {
  return defineTask('retain_email_events', z.unknown(), async (_payload, helpers) => {
    const log = deps.logger.child({ task: 'retain_email_events', job_id: helpers.job.id });
    const result = await retainEmailEvents({ pool: deps.pool, config: deps.config, logger: log });
    if (result.skipped === 'locked') {
      log.warn('another retain_email_events run holds the lock; skipping this one');
      return;
    }
    log.info(
      { files: result.files.length, deleted: result.deleted },
      `email_events_op retention: ${result.deleted} events older than ` +
        `${deps.config.retention.eventsDays} days exported and deleted`,
    );
  });
}
