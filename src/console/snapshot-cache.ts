// The campaign page's report (campaign_report(): recipients by status, delivered, opened and
// clicked) reads every recipient and event of the campaign once: a few hundred milliseconds at
// 1,000,000 recipients. The page serves it from this per-process cache: a campaign is counted
// at most once per `refreshMs` however many people look at it, a request is answered at once
// from the last count while a newer one is made in the background (the page says as of when),
// and only the first look at a campaign waits for its count. An action on the campaign
// invalidates its entry, so its effect shows on the page it redirects to.
import type { Db } from '../db/pool.ts';
import { type CampaignReportRow, campaignReport } from '../queries/report.ts';

interface Entry {
  value: CampaignReportRow | undefined;
  at: number;
  usedAt: number;
  inflight: Promise<void> | undefined;
}

export interface CachedReport {
  report: CampaignReportRow | undefined;
  countedAt: Date;
}

export class CampaignReportCache {
  private readonly entries = new Map<string, Entry>();
  private readonly db: Db;
  private readonly refreshMs: { active: number; settled: number };

  constructor(db: Db, refreshMs = { active: 5_000, settled: 30_000 }) {
    this.db = db;
    this.refreshMs = refreshMs;
  }

  async get(campaignId: string): Promise<CachedReport> {
    const now = Date.now();
    this.evict(now);
    let entry = this.entries.get(campaignId);
    if (!entry) {
      entry = { value: undefined, at: 0, usedAt: now, inflight: undefined };
      this.entries.set(campaignId, entry);
    }
    entry.usedAt = now;
    const settled = entry.value?.status === 'done' || entry.value?.status === 'draft';
    const every = settled ? this.refreshMs.settled : this.refreshMs.active;
    if (entry.at === 0 || now - entry.at >= every) {
      const refreshing = this.refresh(entry, campaignId);
      if (entry.at === 0) await refreshing;
    }
    return { report: entry.value, countedAt: new Date(entry.at) };
  }

  invalidate(campaignId: string): void {
    this.entries.delete(campaignId);
  }

  private refresh(entry: Entry, campaignId: string): Promise<void> {
    if (!entry.inflight) {
      entry.inflight = campaignReport(this.db, campaignId)
        .then((value) => {
          entry.value = value;
          entry.at = Date.now();
        })
        .finally(() => {
          entry.inflight = undefined;
        });
      // A background refresh that fails leaves the last count; the next request tries again.
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
