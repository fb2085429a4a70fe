/**
 * Realised-latency calibration: how far each split's measured latency has been from what the
 * cost model predicted for it while it ran. The model's error is not the same for every split
 * (a device's compute measured on 7 ms of blocks and priced on 60 ms; CPU quotas that throttle
 * long runs more than short ones), so a split the controller tried and that disappointed is
 * priced at what it delivered, not at what was hoped. Pure: every sample carries its time.
 */
import { kerfError } from '../errors.js';
import { median } from './robust.js';

export interface CalibrationOptions {
  /** samples older than this are forgotten, seconds (default 120: conditions move on) */
  memoryS?: number;
  /** a split's ratio needs this many requests behind it (default 3) */
  minRequests?: number;
  /** ratios are clamped to [1/maxRatio, maxRatio] (default 16: at a tier's capacity edge the
   * model's prediction can be off by more than 4× either way — resnet18's [46,47] ran at ¼ of a
   * prediction that called it saturated — and the measurement should win; a saturated split's
   * ratio grows with the time it runs, so beyond 16 it says "avoid", not "by how much") */
  maxRatio?: number;
}

interface Sample { ratio: number; requests: number; atS: number }

/** Per split (boundaries), measured ÷ predicted latency of the requests that ran on it. */
export class Calibration {
  private readonly memoryS: number;
  private readonly minRequests: number;
  private readonly maxRatio: number;
  private readonly splits = new Map<string, Sample[]>();

  constructor(opts: CalibrationOptions = {}) {
    this.memoryS = opts.memoryS ?? 120;
    this.minRequests = opts.minRequests ?? 3;
    this.maxRatio = opts.maxRatio ?? 16;
    if (!(this.memoryS > 0) || !(this.minRequests >= 1) || !(this.maxRatio >= 1)) {
      throw kerfError('KERF_ERR_CONFIG', 'calibration: memoryS must be positive, minRequests and maxRatio at least 1');
    }
  }

  /** `requests` requests on split `boundaries` took `measuredS` on average where the model said `predictedS`. */
  add(boundaries: readonly number[], measuredS: number, predictedS: number, requests: number, atS: number): void {
    if (!(measuredS > 0 && predictedS > 0 && requests > 0 && Number.isFinite(measuredS) && Number.isFinite(predictedS) && Number.isFinite(atS))) return;
    const ratio = Math.min(this.maxRatio, Math.max(1 / this.maxRatio, measuredS / predictedS));
    const key = boundaries.join(',');
    let s = this.splits.get(key);
    if (!s) this.splits.set(key, (s = []));
    s.push({ ratio, requests, atS });
    if (s.length > 64) s.shift();
  }

  private prune(atS: number): void {
    for (const [k, s] of this.splits) {
      const kept = s.filter((x) => atS - x.atS <= this.memoryS);
      if (kept.length) this.splits.set(k, kept); else this.splits.delete(k);
    }
  }

  /** The split's own ratio (request-weighted median of its samples), or null when it has too few requests. */
  own(boundaries: readonly number[], atS: number): number | null {
    this.prune(atS);
    return this.ratioOf(this.splits.get(boundaries.join(',')));
  }

  private ratioOf(s: readonly Sample[] | undefined): number | null {
    if (!s) return null;
    let n = 0;
    for (const x of s) n += x.requests;
    if (n < this.minRequests) return null;
    const expanded: number[] = [];
    for (const x of s) for (let i = 0; i < Math.min(x.requests, 16); i++) expanded.push(x.ratio);
    return median(expanded);
  }

  /**
   * The factor to put on the model's prediction for `boundaries`: its own ratio when it ran
   * recently, else the median over the splits that did (the model's error common to all
   * splits), else 1. Comparing a tried split with an untried one thus compares them on the same
   * footing: only what is particular to a split changes the ranking.
   */
  ratio(boundaries: readonly number[], atS: number): number {
    const own = this.own(boundaries, atS);
    if (own !== null) return own;
    const all: number[] = [];
    for (const s of this.splits.values()) {
      const r = this.ratioOf(s);
      if (r !== null) all.push(r);
    }
    return all.length ? median(all) : 1;
  }

  /** Splits with a ratio, for logs and GET /v1/conditions. */
  snapshot(atS: number): { boundaries: number[]; ratio: number; requests: number }[] {
    this.prune(atS);
    return [...this.splits.entries()].map(([k, s]) => ({
      boundaries: k.split(',').map(Number), ratio: this.ratioOf(s) ?? NaN, requests: s.reduce((a, x) => a + x.requests, 0),
    }));
  }
}
