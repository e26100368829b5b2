// The one wrapper every task goes through: the payload is `unknown` until its zod schema parses
// it. A payload that does not parse is a permanent failure with a message saying what is wrong
// (the runner turns PermanentJobError into graphile_worker.permanently_fail_jobs), never 25 retries.
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
