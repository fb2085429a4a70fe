/**
 * Pure estimators behind the adaptation monitors. They are fed samples that carry their own
 * timestamps (`atS`, seconds on any monotonic clock the caller chooses) and never read a clock,
 * so the live monitors in serve/ and the offline replay use the same code.
 */
import { kerfError } from '../errors.js';
import { median, trimmedMean, trimmedScv, weightedMedian } from './robust.js';

/** What a link monitor believes about one link. */
export interface LinkEstimate {
  /** payload throughput, bytes per second */
  bytesPerS: number;
  /** round-trip time (the fixed part of a transfer), seconds */
  rttS: number;
  /** transfer samples inside the window */
  samples: number;
  /** timestamp of the newest sample, or null when none */
  lastSampleS: number | null;
  /** false while the estimate still rests on the prior alone */
  confident: boolean;
  /** squared coefficient of variation of the transfer rates in the window (1 with fewer than 5) */
  serviceScv: number;
}

export interface LinkEstimatorOptions {
  /** samples older than this are forgotten, seconds (default 30) */
  windowS?: number;
  /** at most this many samples are kept (default 64) */
  maxSamples?: number;
  /** a sample's weight halves every halfLifeS of age: the smoothing (default 5) */
  halfLifeS?: number;
  /** a link without a transfer for this long wants an active probe (default 2) */
  idleProbeS?: number;
  /** believed before any sample arrives */
  prior?: { bytesPerS: number; rttS: number };
  /** level-shift detection (off by default): see `ShiftOptions` */
  shift?: ShiftOptions;
}

/**
 * Level-shift detection: when `run` consecutive samples all lie beyond `ratio` × the current
 * estimate on the same side (all above, or all below 1/ratio), the level has moved: the
 * window restarts from those samples. A lone outlier, or outliers on both sides, never
 * restarts it, so robustness is kept; a real step is followed after `run` samples instead of
 * after half the window's weight.
 */
export interface ShiftOptions {
  run: number;
  ratio: number;
  /** a step this large (samples beyond `bigRatio` × the estimate, same side) needs only `bigRun`
   * samples (defaults: off): on a tier slowed 16×, each sample takes a whole slowed run to
   * arrive, so waiting for `run` of them costs seconds while its queue grows */
  bigRatio?: number;
  bigRun?: number;
  /** one sample beyond `hugeRatio` × the estimate restarts the window on its own when its excess
   * (|value − estimate| × the sample's scale: seconds of a run for load ratios) is at least
   * `hugeExcess` (defaults: off). A tier slowed 12× under a 30 ms run answers 300 ms late: a stall
   * that long and that large is rare, while waiting for a second such run grows the queue behind it. */
  hugeRatio?: number;
  hugeExcess?: number;
}

/** Tracks the run of samples beyond the estimate; true when the level has shifted. */
class ShiftDetector {
  private dir = 0;
  private n = 0;
  /** consecutive samples (same side) beyond bigRatio */
  private big = 0;
  constructor(private readonly o: ShiftOptions) {
    positive(o.run, 'shift.run');
    if (!(o.ratio > 1)) throw kerfError('KERF_ERR_CONFIG', `shift.ratio must be above 1, got ${o.ratio}`);
    if (o.bigRatio !== undefined && !(o.bigRatio > o.ratio)) throw kerfError('KERF_ERR_CONFIG', `shift.bigRatio must be above shift.ratio, got ${o.bigRatio}`);
    if (o.bigRun !== undefined) positive(o.bigRun, 'shift.bigRun');
    if (o.hugeRatio !== undefined && !(o.hugeRatio > 1)) throw kerfError('KERF_ERR_CONFIG', `shift.hugeRatio must be above 1, got ${o.hugeRatio}`);
    if ((o.hugeRatio === undefined) !== (o.hugeExcess === undefined)) throw kerfError('KERF_ERR_CONFIG', 'shift.hugeRatio and shift.hugeExcess go together');
    if (o.hugeExcess !== undefined && !(o.hugeExcess >= 0)) throw kerfError('KERF_ERR_CONFIG', `shift.hugeExcess must be non-negative, got ${o.hugeExcess}`);
  }
  /** Feed a sample's value against the estimate before it (`scale` turns their difference into
   * the excess `hugeExcess` is measured in); returns the run length when shifted, else 0. */
  feed(value: number, estimate: number, scale = 1): number {
    const hugeR = this.o.hugeRatio;
    if (hugeR !== undefined && (value > estimate * hugeR || value < estimate / hugeR) && Math.abs(value - estimate) * scale >= this.o.hugeExcess!) {
      this.n = 0; this.big = 0; this.dir = 0;
      return 1;
    }
    const d = value > estimate * this.o.ratio ? 1 : value < estimate / this.o.ratio ? -1 : 0;
    this.n = d !== 0 && d === this.dir ? this.n + 1 : d !== 0 ? 1 : 0;
    const bigR = this.o.bigRatio;
    const bd = bigR === undefined ? 0 : value > estimate * bigR ? 1 : value < estimate / bigR ? -1 : 0;
    this.big = bd !== 0 && d === this.dir ? this.big + 1 : bd !== 0 ? 1 : 0;
    this.dir = d;
    if (this.n >= this.o.run || (bd !== 0 && this.big >= (this.o.bigRun ?? this.o.run))) { const n = this.n; this.n = 0; this.big = 0; this.dir = 0; return n; }
    return 0;
  }
  reset(): void { this.n = 0; this.big = 0; this.dir = 0; }
}

interface TransferSample { bytes: number; seconds: number; atS: number; stalledS: number }

/**
 * How much a transfer sample is trusted when the measuring process waited `stalledS` of its
 * `seconds` for a CPU: (1 − stalled share)². A process that could not run read the answer late, so
 * the sample reads as a slower link than it is; samples taken while it ran count fully, a sample
 * half of whose time was such waiting counts a quarter, one that was all waiting next to nothing.
 */
export function stallTrust(seconds: number, stalledS: number): number {
  if (!(stalledS > 0) || !(seconds > 0)) return 1;
  const free = Math.max(0, 1 - stalledS / seconds);
  return Math.max(1e-3, free * free);
}
interface RttSample { seconds: number; atS: number }

function positive(v: number, what: string): void {
  if (!(Number.isFinite(v) && v > 0)) throw kerfError('KERF_ERR_CONFIG', `${what} must be a positive number, got ${v}`);
}

/**
 * Bandwidth and RTT of one link from passive transfer samples (bytes, seconds) and optional
 * RTT probes. The bandwidth is an exponentially time-weighted median of per-sample rates:
 * the weights smooth, the median ignores outliers (a stalled transfer, a burst of
 * cross-traffic) as long as they are fewer than half the weight.
 */
export class LinkEstimator {
  private readonly windowS: number;
  private readonly maxSamples: number;
  private readonly halfLifeS: number;
  private readonly idleProbeS: number;
  private readonly prior: { bytesPerS: number; rttS: number };
  private transfers: TransferSample[] = [];
  private rtts: RttSample[] = [];
  private lastAtS = -Infinity;
  /** throughput of the last window that held an informative transfer: a link's rate is kept
   * while only small transfers cross it (they cannot tell it), instead of falling back to the prior */
  private lastRate: number | null = null;
  /** when lastRate was last measured */
  private lastRateAtS = -Infinity;
  private readonly shift: ShiftDetector | null;
  /** when the last transfer that could tell the rate arrived (a probe or a real one) */
  private lastInformativeAt = -Infinity;

  constructor(opts: LinkEstimatorOptions = {}) {
    this.windowS = opts.windowS ?? 30;
    this.maxSamples = opts.maxSamples ?? 64;
    this.halfLifeS = opts.halfLifeS ?? 5;
    this.idleProbeS = opts.idleProbeS ?? 2;
    this.prior = opts.prior ?? { bytesPerS: 12.5e6, rttS: 0.001 };
    positive(this.windowS, 'windowS');
    positive(this.maxSamples, 'maxSamples');
    positive(this.halfLifeS, 'halfLifeS');
    positive(this.idleProbeS, 'idleProbeS');
    positive(this.prior.bytesPerS, 'prior.bytesPerS');
    this.shift = opts.shift ? new ShiftDetector(opts.shift) : null;
  }

  /** One finished transfer of `bytes` that took `seconds` (send start to receipt), at time atS;
   * `stalledS`: of those seconds, how long the measuring process waited for a CPU (0 when unknown):
   * the sample then weighs less (`stallTrust`), its stalled time makes no transfer informative,
   * and a sample mostly stalled never counts towards a level shift.
   * Returns true when it completed a level shift (the window restarted). */
  addTransfer(bytes: number, seconds: number, atS: number, stalledS = 0): boolean {
    if (!(bytes >= 0 && seconds > 0 && Number.isFinite(seconds) && Number.isFinite(atS))) return false;
    const stalled = stalledS > 0 && Number.isFinite(stalledS) ? Math.min(stalledS, seconds) : 0;
    let keep = 0;
    if (this.shift && this.transfers.length > 0 && stalled <= 0.25 * seconds) {
      const e = this.estimate(atS);
      const payloadS = seconds - e.rttS;
      if (e.confident && this.informative(bytes, seconds - stalled, e.rttS) && payloadS >= 0.1 * seconds) keep = this.shift.feed(bytes / payloadS, e.bytesPerS);
    }
    const rttS = this.rttEstimate(atS);
    if (this.informative(bytes, seconds - stalled, rttS) && seconds - rttS >= 0.1 * seconds && atS > this.lastInformativeAt) this.lastInformativeAt = atS;
    this.transfers.push({ bytes, seconds, atS, stalledS: stalled });
    if (keep > 0) this.transfers = this.transfers.slice(-keep);
    this.touch(atS);
    if (this.transfers.length > this.maxSamples) this.transfers.shift();
    return keep > 0;
  }

  /** One round-trip probe (an empty or tiny frame), at time atS. */
  addRtt(seconds: number, atS: number): void {
    if (!(seconds >= 0 && Number.isFinite(seconds) && Number.isFinite(atS))) return;
    this.rtts.push({ seconds, atS });
    this.touch(atS);
    if (this.rtts.length > this.maxSamples) this.rtts.shift();
  }

  private touch(atS: number): void {
    if (atS > this.lastAtS) this.lastAtS = atS;
  }

  private prune(atS: number): void {
    const keep = (s: { atS: number }) => atS - s.atS <= this.windowS;
    this.transfers = this.transfers.filter(keep);
    this.rtts = this.rtts.filter(keep);
  }

  private weight(age: number): number {
    return Math.pow(0.5, Math.max(0, age) / this.halfLifeS);
  }

  /**
   * Whether a transfer can tell the throughput at all: its payload time at the last known rate is
   * at least twice the fixed part f (the RTT, 1 ms at least), or its measured time exceeds the
   * RTT by at least 4 f (the last rate is then far off). Below that, the fixed costs of a
   * transfer beyond the RTT (framing, copies, a busy receiver) read as a low rate — resnet18's
   * 6 KB crossing at cut 46 read as 23 Mbit/s on a 50 Mbit/s link, and that priced every split
   * sending a real tensor over it 2× too high.
   */
  private informative(bytes: number, seconds: number, rttS: number): boolean {
    const f = Math.max(rttS, 0.001);
    return bytes > 0 && (bytes / (this.lastRate ?? this.prior.bytesPerS) >= 2 * f || seconds - rttS >= 4 * f);
  }

  /**
   * The rate believed while no transfer can tell it: the last one measured, returning to the
   * prior (the link as declared) with a half-life of `halfLifeS` × 2 in log scale. A rate read
   * while a tier beside the link was saturated (its own handling of the frames counted as the
   * link's time: 0.3 Mbit/s on a 100 Mbit/s link next to an edge held to 0.12 core) would
   * otherwise stay for as long as only small tensors cross.
   */
  private unconfirmedRate(atS: number): number {
    if (this.lastRate === null) return this.prior.bytesPerS;
    const w = Math.pow(0.5, Math.max(0, atS - this.lastRateAtS) / (2 * this.halfLifeS));
    return Math.exp(w * Math.log(this.lastRate) + (1 - w) * Math.log(this.prior.bytesPerS));
  }

  /** When the last transfer that could tell the rate was added (-Infinity: none yet): link probes stay off while real ones keep coming. */
  get lastInformativeS(): number { return this.lastInformativeAt; }

  /** The current belief at time atS. */
  estimate(atS: number): LinkEstimate {
    this.prune(atS);
    let rttS = this.rttEstimate(atS);
    const rates: number[] = [];
    const weights: number[] = [];
    const fixed: number[] = [];
    const ref = this.lastRate ?? this.prior.bytesPerS;
    for (const s of this.transfers) {
      const payloadS = s.seconds - rttS;
      if (s.bytes > 0 && !this.informative(s.bytes, s.seconds - s.stalledS, rttS)) { fixed.push(s.seconds - s.stalledS - s.bytes / ref); continue; }
      // A transfer dominated by the RTT says almost nothing about throughput.
      if (s.bytes <= 0 || payloadS < 0.1 * s.seconds) continue;
      rates.push(s.bytes / payloadS);
      weights.push(this.weight(atS - s.atS) * stallTrust(s.seconds, s.stalledS));
    }
    const confident = rates.length > 0;
    if (confident) { this.lastRate = weightedMedian(rates, weights); this.lastRateAtS = atS; }
    // Only small transfers: they tell the fixed part of a transfer, at the last rate known.
    else if (fixed.length) rttS = Math.max(rttS, median(fixed));
    return {
      bytesPerS: confident ? this.lastRate! : this.unconfirmedRate(atS),
      serviceScv: trimmedScv(rates) ?? 1,
      rttS,
      samples: this.transfers.length,
      lastSampleS: Number.isFinite(this.lastAtS) ? this.lastAtS : null,
      confident,
    };
  }

  private rttEstimate(atS: number): number {
    if (this.rtts.length > 0) {
      return weightedMedian(this.rtts.map((s) => s.seconds), this.rtts.map((s) => this.weight(atS - s.atS)));
    }
    // Without probes, a Theil–Sen line through (bytes, seconds) gives the intercept, provided
    // the window holds clearly different sizes.
    const t = this.transfers;
    if (t.length >= 3) {
      const slopes: number[] = [];
      for (let i = 0; i < t.length; i++) {
        for (let j = i + 1; j < t.length; j++) {
          const a = t[i]!, b = t[j]!;
          const hi = Math.max(a.bytes, b.bytes), lo = Math.min(a.bytes, b.bytes);
          if (hi > 1.5 * lo + 1) slopes.push((b.seconds - a.seconds) / (b.bytes - a.bytes));
        }
      }
      if (slopes.length >= 2) {
        const slope = median(slopes);
        if (slope > 0) return Math.max(0, median(t.map((s) => s.seconds - slope * s.bytes)));
      }
    }
    return this.prior.rttS;
  }

  /** True when the link has been idle for idleProbeS: the live monitor should send a small probe. */
  needsProbe(atS: number): boolean {
    return atS - this.lastAtS >= this.idleProbeS;
  }
}

/** One observation of a tier's execution: how long some blocks took, and what the unloaded
 * profile says they take. */
export interface ExecSample {
  observedS: number;
  profiledS: number;
}

export interface LoadFactorOptions {
  /** 'trimmed' (default): mean of the ratios after trimming `trim` at each end; 'median' */
  estimator?: 'trimmed' | 'median';
  /** fraction trimmed at each end (default 0.1) */
  trim?: number;
  /** samples whose profiled time is below this fraction of the largest profiled time in the
   * set are ignored: the ratio of two tiny times is timer noise and fixed overhead (default 0.2) */
  minProfiledFraction?: number;
  /** and samples below this many profiled seconds (default 0). A run shorter than a CPU quota's
   * budget per period runs at full speed on a tier held to 0.12 core: resnet18's edge running one
   * 0.24 ms block read 1.7× loaded where its 21 ms runs took 14×. With nothing above it in the
   * window the estimator keeps its last factor. */
  minProfiledS?: number;
}

/**
 * Load factor of a tier: observed ÷ profiled execution time, robust over several samples.
 * Returns null when no sample is usable (the tier ran nothing worth timing: probe it).
 */
export function loadFactor(samples: readonly ExecSample[], opts: LoadFactorOptions = {}): number | null {
  return factorOf(usableRatios(samples, opts), opts);
}

/** The load factor of usable ratios (`usableRatios`), or null when there are none. */
function factorOf(ratios: readonly number[], opts: LoadFactorOptions): number | null {
  if (ratios.length === 0) return null;
  return opts.estimator === 'median' ? median(ratios) : trimmedMean(ratios, opts.trim ?? 0.1);
}

/** The least profiled time a sample needs to count (`minProfiledFraction` of the largest, and
 * `minProfiledS`), or null when no sample has a profiled time. */
function minUsableProfiledS(samples: readonly ExecSample[], opts: LoadFactorOptions): number | null {
  let maxP = 0;
  for (const s of samples) if (s.profiledS > maxP && Number.isFinite(s.observedS)) maxP = s.profiledS;
  return maxP > 0 ? Math.max((opts.minProfiledFraction ?? 0.2) * maxP, opts.minProfiledS ?? 0) : null;
}

/** Observed ÷ profiled of the samples a load factor rests on (see `minUsableProfiledS`). */
function usableRatios(samples: readonly ExecSample[], opts: LoadFactorOptions, minP = minUsableProfiledS(samples, opts)): number[] {
  if (minP === null) return [];
  const ratios: number[] = [];
  for (const s of samples) {
    if (s.profiledS >= minP && s.profiledS > 0 && Number.isFinite(s.observedS) && s.observedS >= 0) ratios.push(s.observedS / s.profiledS);
  }
  return ratios;
}

/** What a load monitor believes about one tier. */
export interface LoadEstimate {
  /** observed ÷ profiled execution time (1 = as profiled, 2 = twice as slow) */
  factor: number;
  /** typical wait before execution starts (queueing), seconds */
  queueS: number;
  /** execution samples inside the window */
  samples: number;
  /** false when no usable sample backs the factor (it is then 1, or the last known value) */
  confident: boolean;
  /** squared coefficient of variation of the usable observed ÷ profiled ratios in the window:
   * how variable the tier's service is (1 with fewer than 5) */
  serviceScv: number;
}

export interface LoadEstimatorOptions extends LoadFactorOptions {
  /** samples older than this are forgotten, seconds (default 30) */
  windowS?: number;
  /** level-shift detection on the ratios (off by default): see `ShiftOptions` */
  shift?: ShiftOptions;
  /** at most this many samples are kept (default 128) */
  maxSamples?: number;
}

/**
 * Load factor and queueing delay of one tier over a sliding window. Feed it every executed
 * segment or block (observed and profiled seconds) and every measured queue wait.
 */
export class LoadEstimator {
  private readonly windowS: number;
  private readonly maxSamples: number;
  private readonly opts: LoadFactorOptions;
  private exec: (ExecSample & { atS: number })[] = [];
  private queue: { waitS: number; atS: number }[] = [];
  private lastFactor = 1;
  private readonly shift: ShiftDetector | null;
  /** when the last sample long enough to tell the load arrived (profiled ≥ minProfiledS), seconds */
  lastUsableAtS = -Infinity;

  constructor(opts: LoadEstimatorOptions = {}) {
    this.shift = opts.shift ? new ShiftDetector(opts.shift) : null;
    this.windowS = opts.windowS ?? 30;
    this.maxSamples = opts.maxSamples ?? 128;
    positive(this.windowS, 'windowS');
    positive(this.maxSamples, 'maxSamples');
    this.opts = { estimator: opts.estimator ?? 'trimmed', trim: opts.trim ?? 0.1, minProfiledFraction: opts.minProfiledFraction ?? 0.2, minProfiledS: opts.minProfiledS ?? 0 };
  }

  /** Returns true when this sample completed a level shift (the window restarted). */
  addExec(observedS: number, profiledS: number, atS: number): boolean {
    if (!(observedS >= 0 && profiledS > 0 && Number.isFinite(observedS) && Number.isFinite(atS))) return false;
    if (profiledS >= (this.opts.minProfiledS ?? 0) && atS > this.lastUsableAtS) this.lastUsableAtS = atS;
    let keep = 0;
    if (this.shift && this.exec.length > 0) {
      // only samples the factor would use (not tiny against the window's largest)
      const inWindow = this.exec.filter((x) => atS - x.atS <= this.windowS);
      const minP = minUsableProfiledS(inWindow, this.opts);
      if (minP !== null && profiledS >= minP) {
        // against the window's median, not the (trimmed-mean) factor: a bursty minority of
        // hit runs pulls the mean but not the median, so it never reads as a shift
        const ref = factorOf(usableRatios(inWindow, this.opts, minP), { estimator: 'median' });
        if (ref !== null) keep = this.shift.feed(observedS / profiledS, ref, profiledS);
      }
    }
    this.exec.push({ observedS, profiledS, atS });
    if (keep > 0) this.exec = this.exec.slice(-keep);
    if (this.exec.length > this.maxSamples) this.exec.shift();
    return keep > 0;
  }

  addQueue(waitS: number, atS: number): void {
    if (!(waitS >= 0 && Number.isFinite(waitS) && Number.isFinite(atS))) return;
    this.queue.push({ waitS, atS });
    if (this.queue.length > this.maxSamples) this.queue.shift();
  }

  estimate(atS: number): LoadEstimate {
    const keep = (s: { atS: number }) => atS - s.atS <= this.windowS;
    this.exec = this.exec.filter(keep);
    this.queue = this.queue.filter(keep);
    const ratios = usableRatios(this.exec, this.opts);
    const f = factorOf(ratios, this.opts);
    if (f !== null) this.lastFactor = f;
    return {
      factor: f ?? this.lastFactor,
      serviceScv: trimmedScv(ratios, this.opts.trim ?? 0.1) ?? 1,
      queueS: this.queue.length ? median(this.queue.map((q) => q.waitS)) : 0,
      samples: this.exec.length,
      confident: f !== null,
    };
  }
}

/**
 * Request arrival rate λ over a sliding window: the count of arrivals stamped inside the window
 * divided by the window (or by the time since the first arrival while the window is filling).
 * Arrivals are stamped when they are known (the gateway sees a request when it is answered and
 * back-dates it by its latency): requests still in flight are missing, so a saturated pipeline
 * reads as its service rate, which still makes the saturated placement look saturated.
 */
export class ArrivalRate {
  private readonly windowS: number;
  private stamps: number[] = [];
  private firstS = Infinity;

  constructor(opts: { windowS?: number } = {}) {
    this.windowS = opts.windowS ?? 10;
    positive(this.windowS, 'windowS');
  }

  add(atS: number): void {
    if (!Number.isFinite(atS)) return;
    this.stamps.push(atS);
    if (atS < this.firstS) this.firstS = atS;
    if (this.stamps.length > 4096) this.stamps.shift();
  }

  /**
   * Squared coefficient of variation of the gaps between the arrivals in the window (1, as for
   * Poisson arrivals, with fewer than 5 gaps): near 0 for a source sending at a fixed rate.
   */
  scv(atS: number): number {
    const s = this.stamps.filter((x) => atS - x <= this.windowS).sort((a, b) => a - b);
    if (s.length < 6) return 1;
    const gaps: number[] = [];
    for (let i = 1; i < s.length; i++) gaps.push(s[i]! - s[i - 1]!);
    // untrimmed: the long gaps of Poisson arrivals are the variability, not outliers
    return trimmedScv(gaps, 0, 5) ?? 1;
  }

  /** Requests per second at `atS` (0 before two arrivals). */
  estimate(atS: number): number {
    this.stamps = this.stamps.filter((s) => atS - s <= this.windowS);
    if (this.stamps.length < 2) return 0;
    const span = Math.min(this.windowS, atS - this.firstS);
    return span > 0 ? this.stamps.length / span : 0;
  }
}
