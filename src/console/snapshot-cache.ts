// The campaign page's counts (campaign_report(): recipients by status, delivered, opened and
// clicked) read every recipient and event of the campaign once: a few hundred milliseconds at
// 1,000,000 recipients. The page serves them, with its per-minute chart, from this per-process
// cache: a campaign is read at most once per `refreshMs` however many people look at it, a
// request is answered at once from the last reading while a newer one is made in the background
// (the page says as of when), and only the first look at a campaign waits. An action on the
// campaign invalidates its entry, so its effect shows on the page it redirects to.

interface Entry<T> {
  value: T | undefined;
  at: number;
  usedAt: number;
  inflight: Promise<void> | undefined;
}

export interface Cached<T> {
  value: T | undefined;
  readAt: Date;
}

export class CampaignSnapshotCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly load: (campaignId: string) => Promise<T | undefined>;
  private readonly refreshMs: (value: T | undefined) => number;

  /** `refreshMs` may depend on the last value: a finished campaign changes less often. */
  constructor(
    load: (campaignId: string) => Promise<T | undefined>,
    refreshMs: (value: T | undefined) => number,
  ) {
    this.load = load;
    this.refreshMs = refreshMs;
  }

  async get(campaignId: string): Promise<Cached<T>> {
    const now = Date.now();
    this.evict(now);
    let entry = this.entries.get(campaignId);
    if (!entry) {
      entry = { value: undefined, at: 0, usedAt: now, inflight: undefined };
      this.entries.set(campaignId, entry);
    }
    entry.usedAt = now;
    if (entry.at === 0 || now - entry.at >= this.refreshMs(entry.value)) {
      const refreshing = this.refresh(entry, campaignId);
      if (entry.at === 0) await refreshing;
    }
    return { value: entry.value, readAt: new Date(entry.at) };
  }

  invalidate(campaignId: string): void {
    this.entries.delete(campaignId);
  }

  private refresh(entry: Entry<T>, campaignId: string): Promise<void> {
    if (!entry.inflight) {
      entry.inflight = this.load(campaignId)
        .then((value) => {
          entry.value = value;
          entry.at = Date.now();
        })
        .finally(() => {
          entry.inflight = undefined;
        });
      // A background refresh that fails leaves the last reading; the next request tries again.
      entry.inflight.catch(() => undefined);
    }
    return entry.inflight;
  }

  private evict(now: number): void {
    for (const [id, entry] of this.entries) {
      if (now - entry.usedAt > 300_000 && !entry.inflight) this.entries.delete(id);
    }
  }
}
