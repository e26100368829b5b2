// How many send jobs a worker process runs at once: WORKER_CONCURRENCY when set, else 64
// unpaced, and paced as many as its rate needs to keep every slot filled (up to 128).
import test from 'ava';
import { sendConcurrency } from '../../src/worker/pacing.ts';
import { waitFor } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startWorkerWith } from '../helpers/worker.ts';

test('paced, a process runs rate x 0.15 s send jobs, never fewer than 64 nor more than 128', (t) => {
  const jobs = [undefined, 0, 14, 500, 1_000, 1_000_000].map((rate) => sendConcurrency(rate, 64));
  t.deepEqual(jobs, [64, 64, 64, 72, 128, 128]);
});

// The worker's own start-up, with an SES endpoint it never calls: SES_MAX_SEND_RATE spares it
// GetAccount, and the warm-up request is aborted before it is written.
for (const [env, expected] of [
  [{ SES_MAX_SEND_RATE: '1000' }, 128],
  [{ SES_MAX_SEND_RATE: '0' }, 64],
  [{ SES_MAX_SEND_RATE: '1000', WORKER_CONCURRENCY: '8' }, 8],
] as const) {
  test(`a worker started with ${JSON.stringify(env)} runs ${expected} jobs in each runner`, async (t) => {
    const db = await createTestDatabase();
    t.teardown(() => db.drop());
    const { worker, processId } = await startWorkerWith(t, db.url, 'http://127.0.0.1:9', env);
    t.is(worker.concurrency, expected);
    // graphile-worker makes one worker per job slot in each runner, and the process registers
    // every one of them (in batches, after its start).
    const ids = async () =>
      (
        await db.pool.query<{ ids: number }>(
          'select cardinality(worker_ids) as ids from worker_processes where process_id = $1',
          [processId],
        )
      ).rows[0]?.ids ?? 0;
    await waitFor(async () => (await ids()) >= 2 * expected, { what: `${2 * expected} ids` });
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.true((await ids()) <= 2 * expected + 2, `${await ids()} worker ids`);
  });
}
