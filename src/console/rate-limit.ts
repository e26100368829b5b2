// Login attempts per IP address and per username: at most `max` in any `windowMs`, counted in
// this process (a console is one process; behind several, each counts its own, which still caps
// guessing at max × processes per window). Every attempt counts, right or wrong, so the limit
// cannot be probed for free.
export class AttemptLimiter {
  private readonly attempts = new Map<string, number[]>();
  private readonly max: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(max: number, windowMs: number, now: () => number = Date.now) {
    this.max = max;
    this.windowMs = windowMs;
    this.now = now;
  }

  /** Records an attempt for every key; false (and nothing recorded) when any key is over. */
  take(keys: string[]): { allowed: boolean; retryAfterSeconds: number } {
    const now = this.now();
    let retryAfter = 0;
    for (const key of keys) {
      const recent = (this.attempts.get(key) ?? []).filter((t) => now - t < this.windowMs);
      this.attempts.set(key, recent);
      if (recent.length >= this.max) {
        retryAfter = Math.max(
          retryAfter,
          Math.ceil(((recent[0] ?? now) + this.windowMs - now) / 1000),
        );
      }
    }
    if (retryAfter > 0) return { allowed: false, retryAfterSeconds: retryAfter };
    for (const key of keys) this.attempts.get(key)?.push(now);
    if (this.attempts.size > 10_000) this.sweep(now);
    return { allowed: true, retryAfterSeconds: 0 };
  }

  private sweep(now: number): void {
    for (const [key, times] of this.attempts) {
      if (times.every((t) => now - t >= this.windowMs)) this.attempts.delete(key);
    }
  }
}
