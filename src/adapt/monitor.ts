/**
 * Live monitors: turn what the gateway sees of every real request (per-tier queue and compute
 * times from the tiers' response meta, the remote round trip, the bytes each hop carried under
 * the split in force) into link and tier estimates for the decision. Pure like the estimators:
 * every observation carries its own timestamp `atS`.
 */
import { ArrivalRate, LinkEstimator, LoadEstimator, type LinkEstimate, type LoadEstimate, type ShiftOptions } from './estimators.js';
import { RAW, type AdaptConditions, type SplitModel } from './decide.js';

/** One finished request as the gateway saw it. */
export interface RequestObservation {
  atS: number;
  /** boundaries of the split it ran on (SplitModel positions, one per link) */
  boundaries: readonly number[];
  /** per tier in chain order: queue wait and compute seconds (NaN when unknown), and for
   * remote tiers with a next hop the seconds they waited on it (`downS`, the worker's `d.<name>`) */
  tiers: readonly { queueS: number; computeS: number; downS?: number }[];
  /** seconds from sending to the first remote tier until its answer (all tiers beyond) */
  remoteS: number;
  /** of remoteS, the seconds the gateway's event loop waited for a CPU (serve/stall.ts; absent
   * or NaN: unknown): the first link's sample weighs less by it (`stallTrust`) */
  remoteStallS?: number;
  /** seconds the request spent in the pipeline: it arrived at atS − latencyS (default: the
   * sum of the first tier's queue and compute and remoteS) */
  latencyS?: number;
  /** the codec each link sent with (default: all raw) */
  codecs?: readonly string[];
}

/**
 * The live monitor's level-shift detection on load ratios: three samples beyond 1.5× the
 * window's median, two beyond 4×, or one beyond 6× that ran at least 0.15 s longer (or shorter)
 * than the median says. The last is a loaded edge's first slowed run (resnet18's 30 ms of edge
 * blocks at 0.12 core: ~12×, +0.3 s): a second such sample would take another slowed run to
 * arrive, by when the queue behind it has grown by a request.
 */
export const LOAD_SHIFT: ShiftOptions = { run: 3, ratio: 1.5, bigRatio: 4, bigRun: 2, hugeRatio: 6, hugeExcess: 0.15 };

export interface LiveMonitorOptions {
  /** per link, believed before transfers arrive (and kept for links the gateway cannot see
   * separately: only the first hop's share of the remote time is observable) */
  linkPriors: { bytesPerS: number; rttS: number }[];
  /** bytes of the model's outputs (they travel back over every link) */
  outputBytes: number;
  /** load and link windows, seconds (defaults 6 and 10: quick enough for phases of ~10 s) */
  loadWindowS?: number;
  linkWindowS?: number;
  linkHalfLifeS?: number;
  idleProbeS?: number;
  /** a tier's runs shorter than this (profiled seconds, overhead included) do not tell its load
   * (default 0.005: a run inside a CPU quota's budget per period runs at full speed) */
  minProfiledS?: number;
  /** level-shift detection for load ratios (default `LOAD_SHIFT`; null: off) and
   * link rates (default { run: 3, ratio: 2 }: a request's first-hop time is a difference of
   * timings, noisier than an execution time): a step in load or bandwidth is followed after 3
   * requests instead of half a window */
  shift?: ShiftOptions | null;
  linkShift?: { run: number; ratio: number } | null;
  /** window of the arrival-rate estimate, seconds (default 20: a Poisson count over 6 s is
   * ±25 % noise at 3 req/s, which the queueing term amplifies) */
  rateWindowS?: number;
}

/** The monitors' state as JSON (`GET /v1/conditions`, /metrics). */
export interface MonitorSnapshot {
  atS: number;
  links: (LinkEstimate & { from: string; to: string; observed: boolean })[];
  tiers: (LoadEstimate & { name: string; fixedS?: number })[];
  requests: number;
  /** estimated request arrival rate, per second */
  ratePerS: number;
  /** squared coefficient of variation of the gaps between arrivals (1: Poisson, 0: periodic) */
  arrivalScv: number;
}

/**
 * Per link a LinkEstimator, per tier a LoadEstimator, fed from request observations.
 *
 * What each request tells: tier j ran blocks [b_j, b_{j+1}), profiled P_j[b_{j+1}] − P_j[b_j],
 * observed computeS → a load sample; its queue wait → a queue sample. The network time of the
 * request is remoteS minus every remote tier's queue and compute; of that, links beyond the
 * first are predicted from their own estimates and the rest is the first hop's transfer of
 * bytes[b_1] up and the outputs back (an RTT plus bytes ÷ rate, as the link model counts it).
 *
 * When the remote tiers report the time they waited on their next hop (`downS`), every link is
 * solved on its own instead: link j's time = what tier j waited on tier j+1 (remoteS for the
 * gateway) − tier j+1's queue, compute and own wait downstream. Links beyond the first then get
 * real samples, and delay added beyond the first hop no longer reads as a slow first hop.
 */
export class LiveMonitor {
  readonly links: LinkEstimator[];
  readonly loads: LoadEstimator[];
  readonly arrivals: ArrivalRate;
  private n = 0;
  /** the gateway's own busy time (its event loop) per tick, and the requests answered in it */
  private front: { activeS: number; requests: number; atS: number }[] = [];
  /** links that have had a transfer sample of their own */
  private readonly observed: boolean[];

  constructor(readonly model: SplitModel, private readonly opts: LiveMonitorOptions) {
    const k = model.tiers.length;
    const shift = opts.shift === undefined ? LOAD_SHIFT : opts.shift;
    const linkShift = opts.linkShift === undefined ? { run: 3, ratio: 2 } : opts.linkShift;
    this.links = Array.from({ length: k - 1 }, (_, j) => new LinkEstimator({
      windowS: opts.linkWindowS ?? 10, halfLifeS: opts.linkHalfLifeS ?? 3, idleProbeS: opts.idleProbeS ?? 2,
      prior: opts.linkPriors[j] ?? { bytesPerS: 12.5e6, rttS: 0.001 },
      ...(linkShift ? { shift: linkShift } : {}),
    }));
    this.loads = Array.from({ length: k }, () => new LoadEstimator({ windowS: opts.loadWindowS ?? 6, minProfiledS: opts.minProfiledS ?? 0.005, ...(shift ? { shift } : {}) }));
    this.arrivals = new ArrivalRate({ windowS: opts.rateWindowS ?? 20 });
    this.observed = Array.from({ length: k - 1 }, () => false);
  }

  /** Bytes crossing link j (up and back) under `boundaries`; 0 when the link carries nothing. */
  linkBytes(boundaries: readonly number[], j: number): number {
    const b = boundaries[j]!;
    return b >= this.model.blocks ? 0 : this.model.boundaryBytes[b]! + this.opts.outputBytes;
  }

  /**
   * What link j carried under `boundaries` with `codec`: the bytes on the wire (the tensors ÷ the
   * codec's profiled ratio, and the outputs back) and the seconds of the link's time that were the
   * tiers' encode and decode (as profiled, × the tiers' load factors), which the link's rate does
   * not explain. Raw: `linkBytes` and 0.
   */
  linkWire(boundaries: readonly number[], j: number, codec: string | undefined, atS: number): { bytes: number; codingS: number } {
    const bytes = this.linkBytes(boundaries, j), b = boundaries[j]!, cc = this.model.codecs;
    const send = cc?.tiers[j], recv = cc?.tiers[j + 1];
    if (bytes === 0 || !codec || codec === RAW || !send || !recv || b <= 0) return { bytes, codingS: 0 };
    const k = send.names.indexOf(codec), i = recv.names.indexOf(codec);
    const r = k >= 0 ? send.ratio[k]![b - 1]! : NaN;
    if (!(r > 0) || i < 0) return { bytes, codingS: 0 };
    const enc = send.encodeS[k]![b - 1]!, dec = recv.decodeS[i]![b - 1]!;
    const fs = this.loads[j]!.estimate(atS).factor, fr = this.loads[j + 1]!.estimate(atS).factor;
    return { bytes: this.model.boundaryBytes[b]! / r + this.opts.outputBytes, codingS: (Number.isFinite(enc) ? enc * fs : 0) + (Number.isFinite(dec) ? dec * fr : 0) };
  }

  /** A link's transfer sample, its coding time taken out (kept to at least a tenth of the sample). */
  private addLinkSample(o: RequestObservation, j: number, seconds: number): boolean {
    const w = this.linkWire(o.boundaries, j, o.codecs?.[j], o.atS);
    if (!(w.bytes > 0 && seconds > 0)) return false;
    this.observed[j] = true;
    // The gateway's own CPU wait is in its round trip, so it belongs to the first link's sample.
    const stall = j === 0 && o.remoteStallS !== undefined && Number.isFinite(o.remoteStallS) ? o.remoteStallS : 0;
    return this.links[j]!.addTransfer(w.bytes, Math.max(seconds - w.codingS, 0.1 * seconds), o.atS, stall);
  }

  /** Feed one request; returns true when it revealed a level shift in a load or link estimate
   * (the controller then decides at once instead of at its next period). */
  observe(o: RequestObservation): boolean {
    let shifted = false;
    const m = this.model, k = m.tiers.length;
    this.n++;
    const t0 = o.tiers[0];
    const fin = (x: number | undefined): number => (x !== undefined && Number.isFinite(x) ? x : 0);
    const latencyS = o.latencyS ?? (fin(t0?.queueS) + fin(t0?.computeS) + fin(o.remoteS));
    this.arrivals.add(o.atS - latencyS);
    let lo = 0;
    let remoteTiersS = 0;
    for (let j = 0; j < k; j++) {
      const hi = j < k - 1 ? o.boundaries[j]! : m.blocks;
      const t = o.tiers[j];
      if (t && hi > lo) {
        // What the cost model charges the tier: its blocks plus its fixed per-request overhead
        // (without it, a tier running one tiny block reads as several times loaded).
        const profiled = m.prefix[j]![hi]! - m.prefix[j]![lo]! + (m.overheadS?.[j] ?? 0);
        if (Number.isFinite(t.computeS) && this.loads[j]!.addExec(t.computeS, profiled, o.atS)) shifted = true;
        if (Number.isFinite(t.queueS)) this.loads[j]!.addQueue(t.queueS, o.atS);
        if (j > 0) remoteTiersS += (Number.isFinite(t.queueS) ? t.queueS : 0) + (Number.isFinite(t.computeS) ? t.computeS : 0);
      }
      lo = hi;
    }
    if (!(o.remoteS > 0) || k < 2) return shifted;
    const solved = this.solveLinks(o);
    if (solved) {
      solved.forEach((sec, j) => { if (this.addLinkSample(o, j, sec)) shifted = true; });
      return shifted;
    }
    let beyondS = 0;
    for (let j = 1; j < k - 1; j++) {
      const w = this.linkWire(o.boundaries, j, o.codecs?.[j], o.atS);
      if (w.bytes === 0) continue;
      const e = this.links[j]!.estimate(o.atS);
      beyondS += e.rttS + w.bytes / e.bytesPerS + w.codingS;
    }
    const firstS = o.remoteS - remoteTiersS - beyondS;
    if (firstS > 0 && this.addLinkSample(o, 0, firstS)) shifted = true;
    return shifted;
  }

  /** Each link's seconds for this request from the tiers' downstream waits, or null when a
   * remote tier with a next hop did not report its wait (older workers). */
  private solveLinks(o: RequestObservation): number[] | null {
    const k = this.model.tiers.length;
    const waited = [o.remoteS];
    for (let j = 1; j < k - 1; j++) {
      const d = o.tiers[j]?.downS;
      if (d === undefined || !Number.isFinite(d)) return null;
      waited.push(d);
    }
    const fin = (x: number | undefined): number => (x !== undefined && Number.isFinite(x) ? x : 0);
    return waited.map((w, j) => {
      const t = o.tiers[j + 1];
      return w - fin(t?.queueS) - fin(t?.computeS) - (j + 1 < k - 1 ? waited[j + 1]! : 0);
    });
  }

  /** Requests observed so far. */
  get requests(): number { return this.n; }

  /**
   * The first tier's own work outside its compute (the gateway: parsing HTTP requests, copying
   * tensors, encoding frames, answering): `activeS` seconds its event loop was busy while it
   * answered `requests` requests. On a slow device this is tens of ms a request that no profile
   * holds, and it competes with the device's compute for the same CPU.
   */
  observeFront(activeS: number, requests: number, atS: number): void {
    if (!(activeS >= 0 && Number.isFinite(activeS) && requests > 0 && Number.isFinite(atS))) return;
    this.front.push({ activeS, requests, atS });
    if (this.front.length > 256) this.front.shift();
  }

  /** Seconds of the first tier's own work per request over the load window (0 before 3 requests). */
  frontS(atS: number): number {
    const w = this.opts.loadWindowS ?? 6;
    this.front = this.front.filter((f) => atS - f.atS <= w);
    let a = 0, r = 0;
    for (const f of this.front) { a += f.activeS; r += f.requests; }
    return r >= 3 ? a / r : 0;
  }

  /** A round trip of a tiny control frame over the first hop (the idle probe). */
  observeProbe(rttS: number, atS: number): void {
    this.links[0]?.addRtt(rttS, atS);
  }

  /** A probe run on tier `j` (its segment too small to tell its load): `observedS` where the
   * profile says `profiledS` (blocks and the per-request overhead, as for requests). Returns
   * true when it revealed a level shift. */
  observeLoadProbe(j: number, observedS: number, profiledS: number, atS: number): boolean {
    const l = this.loads[j];
    return l ? l.addExec(observedS, profiledS, atS) : false;
  }

  needsProbe(atS: number): boolean {
    return this.links.length > 0 && this.links[0]!.needsProbe(atS);
  }

  conditions(atS: number): AdaptConditions {
    return {
      links: this.links.map((l) => { const e = l.estimate(atS); return { bytesPerS: e.bytesPerS, rttS: e.rttS, serviceScv: e.serviceScv }; }),
      tiers: this.loads.map((l, j) => {
        const e = l.estimate(atS);
        const fixedS = j === 0 ? this.frontS(atS) : 0;
        return { factor: e.factor, queueS: e.queueS, serviceScv: e.serviceScv, ...(fixedS > 0 ? { fixedS } : {}) };
      }),
      ratePerS: this.arrivals.estimate(atS),
      arrivalScv: this.arrivals.scv(atS),
    };
  }

  snapshot(atS: number): MonitorSnapshot {
    const names = this.model.tiers;
    return {
      atS,
      links: this.links.map((l, j) => ({ from: names[j]!, to: names[j + 1]!, observed: this.observed[j]!, ...l.estimate(atS) })),
      tiers: this.loads.map((l, j) => ({ name: names[j]!, ...l.estimate(atS), ...(j === 0 ? { fixedS: this.frontS(atS) } : {}) })),
      requests: this.n,
      ratePerS: this.arrivals.estimate(atS),
      arrivalScv: this.arrivals.scv(atS),
    };
  }
}
