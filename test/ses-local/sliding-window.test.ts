import test from 'ava';
import fc from 'fast-check';
import { SlidingWindowCounter } from '../../src/ses-local/sliding-window.ts';

test('counts an event for exactly the window length after it', (t) => {
  const window = new SlidingWindowCounter(1000);
  window.record(5000);
  t.is(window.count(5000), 1);
  t.is(window.count(5999), 1);
  t.is(window.count(6000), 0);
});

test('agrees with a naive count for any sequence of events and queries', (t) => {
  const steps = fc.array(
    fc.record({ gap: fc.integer({ min: 0, max: 400 }), record: fc.boolean() }),
    {
      maxLength: 3000,
    },
  );
  fc.assert(
    fc.property(steps, (sequence) => {
      const window = new SlidingWindowCounter(1000);
      const times: number[] = [];
      let now = 0;
      for (const { gap, record } of sequence) {
        now += gap;
        if (record) {
          window.record(now);
          times.push(now);
        }
        const expected = times.filter((time) => time > now - 1000).length;
        if (window.count(now) !== expected) return false;
      }
      return true;
    }),
    { numRuns: 50 },
  );
  t.pass();
});

test('forgets everything on clear', (t) => {
  const window = new SlidingWindowCounter(1000);
  window.record(1);
  window.record(2);
  window.clear();
  t.is(window.count(2), 0);
});
