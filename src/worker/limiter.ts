// An in-process limit on how many callers hold something at once (paced send slots).

/**
 * acquire() resolves to a release function once fewer than `limit` holders remain. `limit` may be
 * a function, read at every acquire and release (a limit that follows a rate that can change).
 */
export function createLimiter(limit: number | (() => number)) {
  const max = typeof limit === 'number' ? () => limit : limit;
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    active--;
    while (active < max() && waiting.length > 0) {
      active++;
      waiting.shift()?.();
    }
  };
  return {
    async acquire(): Promise<() => void> {
      if (active < max()) active++;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      let released = false;
      return () => {
        if (!released) release();
        released = true;
      };
    },
  };
}
