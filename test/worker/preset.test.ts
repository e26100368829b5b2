import test from 'ava';
import { loadConfig } from '../../src/config.ts';
import { sendRunnerPreset, workerPreset } from '../../src/worker/runner.ts';

// graphile-worker warns, and fetches in too small batches, when its local queue is smaller than
// the concurrency; unset, the queue is 100 or the concurrency when larger (`mailer worker -c N`).
test('the local queue is never smaller than the concurrency unless WORKER_LOCAL_QUEUE_SIZE says', (t) => {
  const defaults = loadConfig({});
  t.is(defaults.worker.concurrency, undefined);
  t.deepEqual(workerPreset(defaults).localQueue, { size: 100 });
  t.deepEqual(workerPreset(loadConfig({ WORKER_CONCURRENCY: '128' })).localQueue, { size: 128 });
  t.deepEqual(sendRunnerPreset(defaults, 300).localQueue, { size: 300 });
  t.is(sendRunnerPreset(defaults).completeJobBatchDelay, 5);

  const sized = loadConfig({ WORKER_CONCURRENCY: '32', WORKER_LOCAL_QUEUE_SIZE: '50' });
  t.deepEqual(workerPreset(sized).localQueue, { size: 50 });
  t.deepEqual(workerPreset(sized, 300).localQueue, { size: 50 });

  const off = loadConfig({ WORKER_LOCAL_QUEUE_SIZE: '0' });
  t.is(workerPreset(off).localQueue, undefined);
});
