// `mailer jobs` (queue depth per task, failed jobs with their last error) and `mailer jobs retry`.
import { type Command, InvalidArgumentError } from 'commander';
import { UsageError } from '../context.ts';
import {
  formatAge,
  intArgument,
  orFail,
  print,
  printJson,
  table,
  withDatabase,
} from '../output.ts';

function firstLine(text: string | null, max = 100): string | null {
  if (text === null) return null;
  const line = text.split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

async function overviewAction(flags: { task?: string; limit: number; json?: boolean }) {
  const { failedJobs, jobQueueSummary } = await import('../../queries/jobs.ts');
  await withDatabase(async (pool) => {
    const depth = (await jobQueueSummary(pool)).filter(
      (d) => !flags.task || d.task_identifier === flags.task,
    );
    const failed = await failedJobs(pool, flags.task, flags.limit);
    if (flags.json) return printJson({ queues: depth, failed });
    print('queue depth per task');
    print(
      depth.length === 0
        ? '  no jobs'
        : table(
            ['task', 'ready', 'scheduled', 'running', 'retrying', 'failed', 'oldest ready'],
            depth.map((d) => [
              d.task_identifier,
              d.ready,
              d.scheduled,
              d.running,
              d.retrying,
              d.failed,
              d.oldest_ready_at ? formatAge(d.oldest_ready_at) : null,
            ]),
          ),
    );
    const totalFailed = depth.reduce((n, d) => n + d.failed, 0);
    print(
      `failed jobs (${failed.length} of ${totalFailed} shown; retry with mailer jobs retry ID)`,
    );
    if (failed.length > 0) {
      print(
        table(
          ['id', 'task', 'attempts', 'failed at', 'last error'],
          failed.map((j) => [
            j.id,
            j.task_identifier,
            `${j.attempts}/${j.max_attempts}`,
            j.updated_at,
            firstLine(j.last_error),
          ]),
        ),
      );
    }
  });
}

function jobId(value: string): string {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`a job id is a number, got ${value}`);
  return value;
}

async function retryAction(id: string | undefined, flags: { failed?: boolean; task?: string }) {
  if ((id === undefined) === (flags.failed !== true)) {
    throw new UsageError(
      'give a job id, or --failed (optionally with --task) to retry every failed job',
    );
  }
  if (id !== undefined && flags.task)
    throw new UsageError('--task goes with --failed, not a job id');
  const { retryFailedJobs, retryJob } = await import('../../queries/jobs.ts');
  await withDatabase(async (pool, ctx) => {
    if (id !== undefined) {
      const retried = await orFail(() => retryJob(pool, id));
      if (!retried) return;
      ctx.logger.info({ job_id: id }, 'operator retried a job');
      return print(`job ${id} will run again now (attempts reset)`);
    }
    const count = await retryFailedJobs(pool, flags.task);
    ctx.logger.info({ task: flags.task ?? null, jobs: count }, 'operator retried failed jobs');
    print(`${count} failed job(s)${flags.task ? ` of ${flags.task}` : ''} will run again now`);
  });
}

export function registerJobs(program: Command): void {
  const jobs = program
    .command('jobs')
    .description('graphile-worker jobs: queue depth, failed jobs, retries (default: jobs list)');
  jobs
    .command('list', { isDefault: true })
    .description('Queue depth per task and failed jobs (attempts used up) with their last error')
    .option('--task <task>', 'only this task')
    .option('--limit <n>', 'how many failed jobs to list', intArgument('--limit', 1), 20)
    .option('--json', 'machine-readable output')
    .action(overviewAction);
  jobs
    .command('retry')
    .description('Run a job again now with its attempts reset (or every failed job with --failed)')
    .argument('[id]', 'job id (from mailer jobs)', jobId)
    .option('--failed', 'retry every failed job')
    .option('--task <task>', 'with --failed: only jobs of this task')
    .action(retryAction);
}
