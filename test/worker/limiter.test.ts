import test from 'ava';
import { createLimiter } from '../../src/worker/limiter.ts';

test('no more than the limit hold at once; waiters go in order; a second release is harmless', async (t) => {
  const limiter = createLimiter(2);
  const order: number[] = [];
  let holding = 0;
  let most = 0;
  await Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      const release = await limiter.acquire();
      order.push(i);
      holding++;
      most = Math.max(most, holding);
      await new Promise((resolve) => setTimeout(resolve, 5));
      holding--;
      release();
      release();
    }),
  );
  t.is(most, 2);
  t.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  // All released: two can hold again at once, without waiting.
  const a = await limiter.acquire();
  const b = await limiter.acquire();
  let third = false;
  const c = limiter.acquire().then((release) => {
    third = true;
    return release;
  });
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.false(third, 'a third waits while two hold');
  a();
  (await c)();
  b();
  t.true(third);
});
