// A campaign's figures for screens that many people watch at once (the console): the same
// counts, rate and ETA as `mailer campaign status`, from a cache shared by every viewer in the
// process. campaign_progress() reads every recipient of the campaign (a GROUP BY over 1,000,000
// rows takes a few hundred milliseconds), so it runs at most once per refresh interval per
// campaign, in the background, however many pages poll; a request is answered from the last
// figures (stale by at most that interval, and the page says as of when) and never waits for a
// count longer than `waitMs`. The live part (accepted sends in the last 30 s, SES errors) reads
// indexes only, and is refreshed every second.
import type { Db } from '../db/pool.ts';
import { estimate, type StatusEstimate } from './campaign-estimate.ts';
import {
  type CampaignLive,
  campaignLive,
  pacingRateFor,
  RATE_WINDOW_SECONDS,
} from './campaign-status.ts';
import { type CampaignProgress, campaignProgress } from './operations.ts';

/** A sending campaign with nothing accepted by SES for this long is flagged as stalled. */
export const STALL_FLAG_SECONDS = 60;

export interface CampaignFigures {
  progress: CampaignProgress;
  live: CampaignLive;
  estimate: StatusEstimate;
  /** When the counts were read. */
  countedAt: Date;
  /** Seconds since SES last accepted one of its sends, when a sending campaign has been quiet
   * for STALL_FLAG_SECONDS or more; null otherwise. */
  stalledSeconds: number | null;
}

export interface CampaignState {
  campaign_id: string;
  status: string;
  pause_reason: string | null;
}

interface Slot<T> {
  value?: T;
  at: number;
  tookMs: number;
  inflight?: Promise<void>;
}

interface Entry {
  progress: Slot<CampaignProgress | undefined>;
  live: Slot<CampaignLive | undefined>;
  usedAt: number;
}

export interface FiguresCacheOptions {
  /** Least time between two counts of one campaign (longer when a count is slow). */
  progressRefreshMs?: number;
  liveRefreshMs?: number;
  /** Longest a request waits for a campaign's first count before answering without it. */
  waitMs?: number;
  pacingRate?: number | undefined;
  onError?: (error: unknown) => void;
}

const SETTLED = new Set(['done', 'draft']);

export class CampaignFiguresCache {
  private readonly entries = new Map<string, Entry>();
  private readonly db: Db;
  private readonly progressRefreshMs: number;
  private readonly liveRefreshMs: number;
  private readonly waitMs: number;
  private readonly pacingRate: number | undefined;
  private readonly onError: (error: unknown) => void;
  private closed = false;

  constructor(db: Db, options: FiguresCacheOptions = {}) {
    this.db = db;
    this.progressRefreshMs = options.progressRefreshMs ?? 2_000;
    this.liveRefreshMs = options.liveRefreshMs ?? 1_000;
    this.waitMs = options.waitMs ?? 60;
    this.pacingRate = options.pacingRate;
    this.onError = options.onError ?? (() => undefined);
  }

  /**
   * The figures of these campaigns (undefined: not counted yet, or no such campaign). Their
   * status and pause reason, read fresh by the caller, replace the counted ones: an action shows
   * at once.
   */
  async getMany(campaigns: CampaignState[]): Promise<Map<string, CampaignFigures | undefined>> {
    const now = Date.now();
    const campaignIds = campaigns.map((c) => c.campaign_id);
    this.evict(now);
    const waits: Promise<void>[] = [];
    for (const id of campaignIds) {
      const entry = this.entry(id, now);
      const progressEvery = Math.max(
        SETTLED.has(entry.progress.value?.status ?? '') ? 30_000 : this.progressRefreshMs,
        5 * entry.progress.tookMs,
      );
      waits.push(
        this.refresh(entry.progress, now, progressEvery, () => campaignProgress(this.db, id)),
        this.refresh(entry.live, now, this.liveRefreshMs, () => campaignLive(this.db, id)),
      );
    }
    // Only a campaign seen for the first time has nothing to show: wait a little for it.
    const missing = campaignIds.some((id) => {
      const e = this.entries.get(id);
      return e?.progress.value === undefined || e.live.value === undefined;
    });
    if (missing) {
      await Promise.race([
        Promise.all(waits),
        new Promise((resolve) => setTimeout(resolve, this.waitMs).unref()),
      ]);
    }
    const result = new Map<string, CampaignFigures | undefined>();
    for (const c of campaigns) result.set(c.campaign_id, this.figures(c));
    return result;
  }

  /** After an action (pause, resume, queue) the next read counts again at once. */
  invalidate(campaignId: string): void {
    const entry = this.entries.get(campaignId);
    if (entry) {
      entry.progress.at = 0;
      entry.live.at = 0;
    }
  }

  /** No more counts; resolves when those under way have finished (before the pool ends). */
  async close(): Promise<void> {
    this.closed = true;
    const inflight = [...this.entries.values()].flatMap((e) => [
      e.progress.inflight,
      e.live.inflight,
    ]);
    await Promise.all(inflight);
  }

  private entry(id: string, now: number): Entry {
    let entry = this.entries.get(id);
    if (!entry) {
      entry = { progress: { at: 0, tookMs: 0 }, live: { at: 0, tookMs: 0 }, usedAt: now };
      this.entries.set(id, entry);
    }
    entry.usedAt = now;
    return entry;
  }

  private refresh<T>(
    slot: Slot<T>,
    now: number,
    everyMs: number,
    read: () => Promise<T>,
  ): Promise<void> {
    if (slot.inflight) return slot.inflight;
    if (this.closed) return Promise.resolve();
    if (slot.at !== 0 && now - slot.at < everyMs) return Promise.resolve();
    const started = Date.now();
    slot.inflight = read()
      .then((value) => {
        slot.value = value;
        slot.at = Date.now();
        slot.tookMs = slot.at - started;
      })
      .catch((error: unknown) => {
        // Keep the last figures; the next request tries again.
        slot.at = Date.now();
        this.onError(error);
      })
      .finally(() => {
        slot.inflight = undefined;
      });
    return slot.inflight;
  }

  private figures(state: CampaignState): CampaignFigures | undefined {
    const entry = this.entries.get(state.campaign_id);
    const progress = entry?.progress.value;
    const live = entry?.live.value;
    if (!entry || !progress || !live) return undefined;
    const current = { ...progress, status: state.status, pause_reason: state.pause_reason };
    const e = estimate(current, live, RATE_WINDOW_SECONDS, pacingRateFor(this.pacingRate, live));
    const open = (progress.counts.pending ?? 0) + (progress.counts.sending ?? 0);
    let stalledSeconds: number | null = null;
    if ((current.status === 'sending' || current.status === 'queued') && open > 0) {
      const last = live.last_accepted_at ?? progress.first_attempt_at ?? live.updated_at;
      const quiet = (live.now.getTime() - last.getTime()) / 1000;
      if (quiet >= STALL_FLAG_SECONDS) stalledSeconds = quiet;
    }
    return {
      progress: current,
      live,
      estimate: e,
      countedAt: new Date(entry.progress.at),
      stalledSeconds,
    };
  }

  private evict(now: number): void {
    for (const [id, entry] of this.entries) {
      if (now - entry.usedAt > 300_000 && !entry.progress.inflight && !entry.live.inflight) {
        this.entries.delete(id);
      }
    }
  }
}
