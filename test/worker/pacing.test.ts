// The pacer's own logic (when a prepared request may be written, new slots for late ones) with
// an in-memory SendBatches; the paced pipeline end to end is
// test/pipeline/pacing.exclusive.test.ts.
import test from 'ava';
import type { Reservation, SendBatches } from '../../src/queries/send-batches.ts';
import { NotWrittenError, type WriteGate } from '../../src/ses/sdk-stack.ts';
import { createPacer, type Place, slotLatenessMs } from '../../src/worker/pacing.ts';

/** Hands out the given new slots in turn (ms from the call), and counts the calls. */
function fakeBatches(newSlotsInMs: number[], reservation?: Reservation) {
  const calls = { reserveAgain: 0, reserve: [] as number[] };
  const batches: SendBatches = {
    reserve: async (_key, _rate, leadMs) => {
      calls.reserve.push(leadMs);
      if (!reservation) throw new Error('not used');
      return reservation;
    },
    reserveAgain: async () => Date.now() + (newSlotsInMs[calls.reserveAgain++] ?? 0),
    claim: () => Promise.reject(new Error('not used')),
    record: () => Promise.reject(new Error('not used')),
    finishIfComplete: () => Promise.reject(new Error('not used')),
  };
  return { batches, calls };
}

function countingPlace() {
  const place = { released: 0, release: () => void place.released++ };
  return place satisfies Place;
}

/** Stands in for the SDK: prepares at once, waits at the gate, answers when it is written. */
function sdk() {
  const prepared: number[] = [];
  const send = async (gate: WriteGate | undefined) => {
    prepared.push(Date.now());
    await gate?.wait();
    return Date.now();
  };
  return { send, prepared };
}

const key = { campaign_id: 'c', customer_id: 'k' };
const claimed = {
  outcome: 'claimed' as const,
  email: 'a@example.com',
  template_data: null,
  provider: 'internal' as const,
  provider_template_name: null,
  template_id: null,
  attempt_count: 1,
};

test('a slot claimed with its reservation comes back with its claim, without a wait', async (t) => {
  const at = Date.now() + 1_000;
  const { batches, calls } = fakeBatches([], { at, claim: claimed });
  const pacer = createPacer(() => 100, batches);
  const asked = Date.now();
  const slot = await pacer.reserve(key);
  t.true(Date.now() - asked < 500, 'no wait for the claim time');
  t.deepEqual(slot, { at, rate: 96, claim: claimed });
  t.deepEqual(calls.reserve, [50], 'due means within the claim lead');
});

test('a slot reserved ahead comes back without a claim, just before its claim time', async (t) => {
  const at = Date.now() + 300;
  const { batches } = fakeBatches([], { at });
  const pacer = createPacer(() => 100, batches);
  const slot = await pacer.reserve(key);
  const woke = Date.now();
  t.deepEqual(slot, { at, rate: 96 });
  t.true(woke >= at - 60 && woke < at, `woke ${at - woke} ms before the slot`);
});

test('a paced request is prepared at once and written at its slot, freeing its place', async (t) => {
  const { batches } = fakeBatches([]);
  const pacer = createPacer(() => 100, batches);
  const place = countingPlace();
  const { send, prepared } = sdk();
  const at = Date.now() + 150;
  const written = await pacer.sendAt({ at, rate: 96 }, place, send);
  t.true(written >= at, `written ${at - written} ms before its slot`);
  t.true((prepared[0] ?? 0) < at - 100, 'prepared well before the slot');
  t.is(place.released, 1);
});

test('a request that would leave late takes a new slot and is written at it, prepared once', async (t) => {
  const { batches, calls } = fakeBatches([100]);
  let missed = 0;
  const pacer = createPacer(() => 100, batches, { onSlotMissed: () => missed++ });
  const { send, prepared } = sdk();
  const asked = Date.now();
  const written = await pacer.sendAt({ at: Date.now() - 1_000, rate: 96 }, countingPlace(), send);
  t.is(calls.reserveAgain, 1);
  t.is(missed, 1);
  t.true(written - asked >= 100, 'written at the new slot');
  t.is(prepared.length, 1);
});

test('how late a send may leave grows with the rate, from 10 ms up to ~20 ms', (t) => {
  // Paced rates (headroom taken) of accounts at 14, 100, 200, 1,000 and 1,000,000 per second.
  const ms = [13.44, 96, 192, 960, 960_000].map((rate) => Math.round(slotLatenessMs(rate) * 10));
  t.deepEqual(ms, [100, 104, 156, 198, 208]);
});

test('a request 13 ms late is written as it is at 1,000/s, and takes a new slot at 100/s', async (t) => {
  for (const [account, newSlots] of [
    [1_000, 0],
    [100, 1],
  ] as const) {
    const { batches, calls } = fakeBatches([20]);
    const pacer = createPacer(() => account, batches);
    const rate = (pacer.rate() ?? 0) as number;
    await pacer.sendAt({ at: Date.now() - 13, rate }, countingPlace(), sdk().send);
    t.is(calls.reserveAgain, newSlots, `R = ${account}/s`);
  }
});

test('a request signed too long before its new slot is dropped unwritten and signed again', async (t) => {
  const { batches, calls } = fakeBatches([300]);
  const pacer = createPacer(() => 100, batches, { maxSignedAgeMs: 100 });
  const gates: WriteGate[] = [];
  const outcomes: string[] = [];
  const asked = Date.now();
  const written = await pacer.sendAt(
    { at: Date.now() - 1_000, rate: 96 },
    countingPlace(),
    async (gate) => {
      if (gate) gates.push(gate);
      const prepared = Date.now() - asked;
      try {
        await gate?.wait();
        outcomes.push(`written, prepared at ${prepared}`);
        return Date.now();
      } catch (error) {
        t.true(error instanceof NotWrittenError);
        outcomes.push('dropped');
        throw error;
      }
    },
  );
  t.is(calls.reserveAgain, 1);
  t.is(outcomes.length, 2);
  t.is(outcomes[0], 'dropped');
  // Prepared again just before the new slot (50 ms ahead, as a claim), then written at it.
  const preparedAgain = Number(outcomes[1]?.replace('written, prepared at ', ''));
  t.true(preparedAgain >= 300 - 60 && preparedAgain < 300, `prepared again at ${preparedAgain}`);
  t.true(written - asked >= 300);
});

test('unpaced, a request has no gate and its place is freed at once', async (t) => {
  const { batches } = fakeBatches([]);
  const pacer = createPacer(() => 0, batches);
  const place = countingPlace();
  let gated = true;
  await pacer.sendAt(undefined, place, async (gate) => {
    gated = gate !== undefined;
    t.is(place.released, 1);
  });
  t.false(gated);
});
