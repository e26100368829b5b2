import test from 'ava';
import fc from 'fast-check';
import { createMessageId, MESSAGE_ID_PATTERN } from '../../src/ses-local/message-id.ts';

test('encodes the acceptance time as 12 hex digits in an SES-shaped id', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (acceptedAt) => {
      const match = MESSAGE_ID_PATTERN.exec(createMessageId(acceptedAt));
      return match !== null && Number.parseInt(match[1] ?? '', 16) === acceptedAt;
    }),
  );
  t.pass();
});

test('never repeats an id over 200,000 ids made in the same millisecond', (t) => {
  const ids = new Set<string>();
  for (let i = 0; i < 200_000; i++) ids.add(createMessageId(1_700_000_000_000));
  t.is(ids.size, 200_000);
});
