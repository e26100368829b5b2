// coalesce() on its own: pure logic, so the batch function is an in-memory stand-in whose
// batches the test sees and finishes when it chooses.
import test from 'ava';
import { coalesce } from '../../src/queries/coalesce.ts';

interface Batch {
  items: number[];
  resolve(results: string[]): void;
  reject(error: unknown): void;
}

/** A batch function that records each call and answers only when the test says so. */
function heldBatches() {
  const batches: Batch[] = [];
  const run = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push({ items, resolve, reject });
    });
  return { batches, run };
}

/** Answers every batch at once (item i becomes `answer:i`), recording the batches in `calls`. */
function answeredBatches() {
  const calls: number[][] = [];
  const run = async (items: number[]) => {
    calls.push(items);
    return items.map((i) => `answer:${i}`);
  };
  return { calls, run };
}

/** A few turns of the event loop: time for coalesce to send out what it holds. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

test('a lone caller is run in a batch of its own and gets its answer', async (t) => {
  const { calls, run } = answeredBatches();
  const one = coalesce(run, { maxBatch: 64, maxInFlight: 1 });
  t.is(await one(7), 'answer:7');
  t.deepEqual(calls, [[7]]);
});

test('callers in the same turn of the event loop share one batch, each with its own answer', async (t) => {
  const { calls, run } = answeredBatches();
  const one = coalesce(run, { maxBatch: 64, maxInFlight: 1 });
  const answers = await Promise.all([one(3), one(1), one(2)]);
  t.deepEqual(answers, ['answer:3', 'answer:1', 'answer:2']);
  t.deepEqual(calls, [[3, 1, 2]], 'one batch, in the order the callers asked');
});

test('a batch holds at most maxBatch items; the rest go in the next batches', async (t) => {
  const { calls, run } = answeredBatches();
  const one = coalesce(run, { maxBatch: 4, maxInFlight: 8 });
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => one(i)));
  t.deepEqual(
    answers,
    Array.from({ length: 10 }, (_, i) => `answer:${i}`),
  );
  t.deepEqual(calls, [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
    [8, 9],
  ]);
});

test('at most maxInFlight batches run at once; what arrives meanwhile waits for the next', async (t) => {
  const { batches, run } = heldBatches();
  const one = coalesce(run, { maxBatch: 64, maxInFlight: 1 });
  const first = one(1);
  await settle();
  t.is(batches.length, 1);
  const waiting = [one(2), one(3)];
  await settle();
  t.is(batches.length, 1, 'no second batch while the first is on its way');
  const later = one(4);
  batches[0]?.resolve(['a1']);
  t.is(await first, 'a1');
  await settle();
  t.deepEqual(
    batches.map((b) => b.items),
    [[1], [2, 3, 4]],
    'everything that waited goes out together',
  );
  batches[1]?.resolve(['a2', 'a3', 'a4']);
  t.deepEqual(await Promise.all([...waiting, later]), ['a2', 'a3', 'a4']);
});

test('with room for more batches in flight, a later turn does not wait for an earlier batch', async (t) => {
  const { batches, run } = heldBatches();
  const one = coalesce(run, { maxBatch: 64, maxInFlight: 2 });
  const first = one(1);
  await settle();
  const second = one(2);
  await settle();
  t.deepEqual(
    batches.map((b) => b.items),
    [[1], [2]],
  );
  batches[1]?.resolve(['a2']);
  t.is(await second, 'a2', 'the second batch answers before the first');
  batches[0]?.resolve(['a1']);
  t.is(await first, 'a1');
});

test('a failed batch rejects each of its callers with its error, and no one else', async (t) => {
  const { batches, run } = heldBatches();
  const one = coalesce(run, { maxBatch: 2, maxInFlight: 2 });
  const failing = [one(1), one(2)];
  const fine = one(3);
  await settle();
  const error = new Error('the statement failed');
  batches[0]?.reject(error);
  batches[1]?.resolve(['a3']);
  for (const caller of failing) t.is(await t.throwsAsync(caller), error);
  t.is(await fine, 'a3');
});

test('after a failed batch, the next callers are batched and answered as usual', async (t) => {
  let fail = true;
  const { run } = answeredBatches();
  const one = coalesce(
    async (items: number[]) => {
      if (fail) throw new Error('down');
      return run(items);
    },
    { maxBatch: 64, maxInFlight: 1 },
  );
  await t.throwsAsync(Promise.all([one(1), one(2)]), { message: 'down' });
  fail = false;
  t.deepEqual(await Promise.all([one(3), one(4)]), ['answer:3', 'answer:4']);
});

test('with lingerMs, callers that come within that time of the first share its batch', async (t) => {
  const { calls, run } = answeredBatches();
  const lingering = coalesce(run, { maxBatch: 64, maxInFlight: 1, lingerMs: 40 });
  const first = lingering(1);
  await settle();
  t.deepEqual(calls, [], 'nothing sent while the first caller lingers');
  await new Promise((resolve) => setTimeout(resolve, 5));
  const second = lingering(2);
  t.deepEqual(await Promise.all([first, second]), ['answer:1', 'answer:2']);
  t.deepEqual(calls, [[1, 2]]);

  const { calls: eager, run: eagerRun } = answeredBatches();
  const immediate = coalesce(eagerRun, { maxBatch: 64, maxInFlight: 1 });
  const a = immediate(1);
  await new Promise((resolve) => setTimeout(resolve, 5));
  await Promise.all([a, immediate(2)]);
  t.deepEqual(eager, [[1], [2]], 'without it, the same callers go in two batches');
});
