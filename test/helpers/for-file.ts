// A resource shared by the tests of one file: made before them, released after them.
import test from 'ava';

/**
 * Registers a serial before hook that makes the resource and an after hook that releases it;
 * returns its accessor. Call it at the top of the file: the file's own before hooks (ava runs
 * the others concurrently) start once the resource exists, and may use the accessor from then on.
 */
export function forFile<T>(
  what: string,
  make: () => Promise<T>,
  release: (resource: T) => Promise<void>,
): () => T {
  let resource: T | undefined;
  test.serial.before(async () => {
    resource = await make();
  });
  test.after.always(async () => {
    if (resource !== undefined) await release(resource);
  });
  return () => {
    if (resource === undefined)
      throw new Error(`the file ${what} exists from its test.before hook on`);
    return resource;
  };
}
