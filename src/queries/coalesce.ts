// Callers that ask for the same kind of write at the same moment share one statement and one
// commit: a batch goes out as soon as fewer than `maxInFlight` are on their way, and whatever
// arrives meanwhile waits for the next one. A lone caller waits for nobody; a busy process pays per
// batch what it used to pay per call. Each caller still gets its own answer, after the commit.
// Used by the send path (send-batches.ts) and the SNS webhook (src/http/ses-webhook.ts).

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/** Turns `run(items) -> results` (same order) into a per-item function that batches callers. */
export function coalesce<I, O>(
  run: (items: I[]) => Promise<O[]>,
  options: { maxBatch: number; maxInFlight: number; lingerMs?: number },
): (item: I) => Promise<O> {
  const queue: Waiting<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, options.maxBatch);
      inFlight++;
      run(batch.map((w) => w.item))
        .then(
          (results) => {
            for (const [i, w] of batch.entries()) w.resolve(results[i] as O);
          },
          (error: unknown) => {
            for (const w of batch) w.reject(error);
          },
        )
        .finally(() => {
          inFlight--;
          schedule();
        });
    }
  };
  // Everything asked for in the same turn of the event loop goes into one batch; with lingerMs,
  // everything asked for within that long after the first one.
  const schedule = () => {
    if (scheduled || queue.length === 0) return;
    scheduled = true;
    if (options.lingerMs) setTimeout(flush, options.lingerMs);
    else setImmediate(flush);
  };
  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      schedule();
    });
}
