/**
 * Realised-latency calibration: what each split delivered while it ran, against what the cost
 * model predicted for it. The model's error is not the same for every split (a device's compute
 * measured on 7 ms of blocks and priced on 60 ms; CPU quotas that throttle long runs more than
 * short ones; a tier near its capacity, where the queueing term and its headroom are least
 * reliable), so a split the controller ran is priced at what it delivered, not at what was
 * hoped: its own recent measured latency while nothing that sets it has changed (`factor`), else
 * the model scaled by its measured ÷ predicted ratio. Pure: every sample carries its time.
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
  /** a split's measured latency is its price while its samples are this recent, seconds (default 30) */
  recentS?: number;
  /** … and were measured under conditions whose unqueued prediction for it is within this factor
   * of now's (default 1.25: a load or bandwidth step on what the split uses moves it further) */
  comparable?: number;
}

/**
 * What the splits that ran may say about one that did not: an error common to the model
 * everywhere is within 2× (measured here: 0.86–0.94); a ratio beyond that is the split's own —
 * a tier near capacity that the queueing term over- or under-prices — and passing it on made an
 * untried split look 16× cheaper than the model said, because the split in force had.
 */
const COMMON_MAX_RATIO = 2;

interface Sample {
  ratio: number; requests: number; atS: number;
  /** mean measured latency, and the model's latency without queueing then (NaN when not given) */
  measuredS: number; baseS: number;
}

/** Per split (boundaries), measured ÷ predicted latency of the requests that ran on it. */
export class Calibration {
  private readonly memoryS: number;
  private readonly minRequests: number;
  private readonly maxRatio: number;
  private readonly recentS: number;
  private readonly comparable: number;
  private readonly splits = new Map<string, Sample[]>();

  constructor(opts: CalibrationOptions = {}) {
    this.memoryS = opts.memoryS ?? 120;
    this.minRequests = opts.minRequests ?? 3;
    this.maxRatio = opts.maxRatio ?? 16;
    this.recentS = opts.recentS ?? 30;
    this.comparable = opts.comparable ?? 1.25;
    if (!(this.memoryS > 0) || !(this.minRequests >= 1) || !(this.maxRatio >= 1) || !(this.recentS >= 0) || !(this.comparable >= 1)) {
      throw kerfError('KERF_ERR_CONFIG', 'calibration: memoryS must be positive, recentS non-negative, minRequests, maxRatio and comparable at least 1');
    }
  }

  /**
   * `requests` requests on split `boundaries` took `measuredS` on average where the model said
   * `predictedS`; `baseS`: its prediction then without queueing (rate 0), which tells later
   * whether the conditions that set its latency have moved since (omitted: they are taken to have).
   */
  add(boundaries: readonly number[], measuredS: number, predictedS: number, requests: number, atS: number, baseS = NaN): void {
    if (!(measuredS > 0 && predictedS > 0 && requests > 0 && Number.isFinite(measuredS) && Number.isFinite(predictedS) && Number.isFinite(atS))) return;
    const ratio = Math.min(this.maxRatio, Math.max(1 / this.maxRatio, measuredS / predictedS));
    const key = boundaries.join(',');
    let s = this.splits.get(key);
    if (!s) this.splits.set(key, (s = []));
    s.push({ ratio, requests, atS, measuredS, baseS: baseS > 0 ? baseS : NaN });
    if (s.length > 64) s.shift();
  }

  /**
   * The split's own measured latency, if it has one that still holds: the request-weighted
   * median of its samples from the last `recentS` whose unqueued prediction was within
   * `comparable` × `baseNowS` (at least `minRequests` requests), else null.
   */
  measured(boundaries: readonly number[], baseNowS: number, atS: number): number | null {
    const s = this.splits.get(boundaries.join(','));
    if (!s || !(baseNowS > 0)) return null;
    const lim = Math.log(this.comparable);
    const ok = s.filter((x) => atS - x.atS <= this.recentS && x.baseS > 0 && Math.abs(Math.log(x.baseS / baseNowS)) <= lim + 1e-12);
    return requestMedian(ok.map((x) => x.measuredS), ok.map((x) => x.requests), this.minRequests);
  }

  /**
   * The factor to put on the model's prediction `predictedNowS` of `boundaries` (whose unqueued
   * prediction now is `baseNowS`): its own measured latency ÷ the prediction while that holds
   * (`measured`: near a tier's capacity the prediction can be off many times over either way —
   * resnet18's [46,47], its 0.25-core device at ρ ≈ 0.9 under periodic arrivals, ran at 270 ms
   * where the saturation headroom priced it at over 16× that — and a measurement should simply
   * win), else `ratio`.
   */
  factor(boundaries: readonly number[], predictedNowS: number, baseNowS: number, atS: number): number {
    this.prune(atS);
    const m = predictedNowS > 0 && Number.isFinite(predictedNowS) ? this.measured(boundaries, baseNowS, atS) : null;
    return m !== null ? m / predictedNowS : this.ratio(boundaries, atS);
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
    return s ? requestMedian(s.map((x) => x.ratio), s.map((x) => x.requests), this.minRequests) : null;
  }

  /**
   * The factor to put on the model's prediction for `boundaries`: its own ratio when it ran
   * recently, else the median over the splits that did, each held within 2× (the model's error
   * common to all splits: `COMMON_MAX_RATIO`), else 1. Comparing a tried split with an untried one thus compares them on the same
   * footing: only what is particular to a split changes the ranking.
   */
  ratio(boundaries: readonly number[], atS: number): number {
    const own = this.own(boundaries, atS);
    if (own !== null) return own;
    const all: number[] = [];
    for (const s of this.splits.values()) {
      const r = this.ratioOf(s);
      if (r !== null) all.push(Math.min(COMMON_MAX_RATIO, Math.max(1 / COMMON_MAX_RATIO, r)));
    }
    return all.length ? median(all) : 1;
  }

  /** Splits with a ratio, for logs and GET /v1/conditions (`lastMeasuredS`: the mean of its latest sample). */
  snapshot(atS: number): { boundaries: number[]; ratio: number; requests: number; lastMeasuredS: number }[] {
    this.prune(atS);
    return [...this.splits.entries()].map(([k, s]) => ({
      boundaries: k.split(',').map(Number), ratio: this.ratioOf(s) ?? NaN, requests: s.reduce((a, x) => a + x.requests, 0), lastMeasuredS: s.at(-1)?.measuredS ?? NaN,
    }));
  }
}

/** Median of `xs`, each counted `w` times (at most 16), or null below `minWeight` in all. Not
 * robust.ts's `weightedMedian` (the lower weighted median): an even count averages the middle
 * pair, as the plain median of the requests would. */
function requestMedian(xs: readonly number[], w: readonly number[], minWeight: number): number | null {
  let n = 0;
  for (const x of w) n += x;
  if (!xs.length || n < minWeight) return null;
  const expanded: number[] = [];
  xs.forEach((x, i) => { for (let k = 0; k < Math.min(w[i]!, 16); k++) expanded.push(x); });
  return median(expanded);
}
