/**
 * Counts events in the last `windowMs` milliseconds. Timestamps are kept in arrival order, so
 * expiring them is a cursor move; the array is compacted only once the expired prefix dominates,
 * which keeps every operation amortised O(1) even at thousands of sends per second.
 */
export class SlidingWindowCounter {
  readonly windowMs: number;
  #times: number[] = [];
  #head = 0;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  /** Events with a timestamp in (now - windowMs, now]. */
  count(now: number): number {
    this.#expire(now);
    return this.#times.length - this.#head;
  }

  record(now: number): void {
    this.#times.push(now);
  }

  clear(): void {
    this.#times = [];
    this.#head = 0;
  }

  #expire(now: number): void {
    const cutoff = now - this.windowMs;
    const times = this.#times;
    let head = this.#head;
    while (head < times.length && (times[head] ?? 0) <= cutoff) head++;
    if (head > 1024 && head * 2 > times.length) {
      this.#times = times.slice(head);
      head = 0;
    }
    this.#head = head;
  }
}
