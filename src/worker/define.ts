// The one wrapper every task goes through: the payload is `unknown` until its zod schema parses
// it. A payload that does not parse is a permanent failure with a message saying what is wrong
// (the runner turns PermanentJobError into graphile_worker.permanently_fail_jobs), never 25 retries.
// Why not the house rule for permanent errors (record on the row, complete the job): a malformed
// payload, or a send job whose recipient does not exist, has no row of ours to record on, and a
// completed job would vanish; failed for good, it stays in `mailer jobs failed` with its message
// until an operator looks. graphile-worker 0.18 has no helper that fails the running job
// (graphile/worker#148), and permanently_fail_jobs skips a locked row, so the runner retries it
// briefly after the job ends (src/worker/runner.ts failPermanently).
import type { JobHelpers, Task } from 'graphile-worker';
import type { z } from 'zod';
import { maskEmails } from '../logger.ts';

export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : 'payload'}: ${issue.message}`)
    .join('; ');
}

export function defineTask<S extends z.ZodType>(
  identifier: string,
  schema: S,
  handler: (payload: z.output<S>, helpers: JobHelpers) => Promise<void>,
): Task {
  return async (payload, helpers) => {
    const parsed = schema.safeParse(payload);
    if (!parsed.success) {
      throw new PermanentJobError(
        `${identifier}: malformed payload (${describeIssues(parsed.error)}); ` +
          `got ${maskEmails(JSON.stringify(payload)?.slice(0, 300) ?? 'nothing')}`,
      );
    }
    await handler(parsed.data, helpers);
  };
}
