// graphile-worker's queue as operators see it: typed callers of job_queue_summary, failed_jobs,
// retry_job and retry_failed_jobs (migrations/schema.sql), which read its jobs
// view and change jobs through its public functions only.
import type { Db } from '../db/pool.ts';

export interface QueueDepth {
  task_identifier: string;
  ready: number;
  scheduled: number;
  running: number;
  retrying: number;
  failed: number;
  oldest_ready_at: Date | null;
}

export async function jobQueueSummary(db: Db): Promise<QueueDepth[]> {
  const { rows } = await db.query<QueueDepth>(
    `select task_identifier, ready::int, scheduled::int, running::int, retrying::int, failed::int,
            oldest_ready_at
       from public.job_queue_summary()`,
  );
  return rows;
}

export interface FailedJob {
  id: string;
  task_identifier: string;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  run_at: Date;
  created_at: Date;
  updated_at: Date;
}

export async function failedJobs(
  db: Db,
  task: string | undefined,
  limit: number,
): Promise<FailedJob[]> {
  const { rows } = await db.query<FailedJob>('select * from public.failed_jobs($1, $2)', [
    task ?? null,
    limit,
  ]);
  return rows;
}

export async function retryJob(db: Db, jobId: string): Promise<boolean> {
  const { rows } = await db.query<{ retried: boolean }>('select public.retry_job($1) as retried', [
    jobId,
  ]);
  return rows[0]?.retried === true;
}

export async function retryFailedJobs(db: Db, task: string | undefined): Promise<number> {
  const { rows } = await db.query<{ retried: number }>(
    'select public.retry_failed_jobs($1) as retried',
    [task ?? null],
  );
  return rows[0]?.retried ?? 0;
}
