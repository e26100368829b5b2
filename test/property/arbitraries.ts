// Generators shared by the property tests.
import { fc } from '@fast-check/ava';

/**
 * A value of any JSON scalar kind (strings up to `maxStringLength`) or of one of `containers`:
 * what turns up where a field of another kind is expected.
 */
export function anyJsonValue(
  maxStringLength: number,
  ...containers: fc.Arbitrary<unknown>[]
): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.string({ maxLength: maxStringLength }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    ...containers,
  );
}
