/**
 * The split decision: given per-tier prefix sums of the profiled block times, the bytes that
 * cross each possible boundary, and the current conditions (link bandwidth and RTT, tier load
 * factors and queueing delays), find the boundaries of a device → edge → cloud chain (any
 * number of tiers) with the least predicted latency, in O(tiers × blocks). Pure: no clock.
 */
import { kerfError } from '../errors.js';
import type { Profile } from '../profile/types.js';
import { hopBusyS, tierServiceS, type TierTerms } from '../plan/cost.js';
import type { SystemCodecs } from '../plan/codec-cost.js';

/**
 * What the decision needs from the profiles, laid out for a linear scan. Tier j of the chain
 * runs blocks [b_j, b_{j+1}) with b_0 = 0 and b_m = blocks; link j joins tier j and j+1.
 */
export interface SplitModel {
  /** number of blocks n */
  readonly blocks: number;
  /** tier names in chain order, e.g. ['edge', 'cloud'] or ['device', 'edge', 'cloud'] */
  readonly tiers: readonly string[];
  /** per tier, length n+1: prefix[j][b] = profiled seconds of blocks [0, b) on tier j */
  readonly prefix: readonly Float64Array[];
  /** length n+1: bytes crossing a boundary placed at b (b = 0: the model input). Nothing
   * crosses at b = n: the result's return is not counted, as in Scission. */
  readonly boundaryBytes: Float64Array;
  /** length n+1: 1 where a boundary may be placed */
  readonly allowed: Uint8Array;
  /** per tier: seconds (on the profile's scale, so the load factor scales them too) each request
   * costs the tier beyond its blocks' own time — handing tensors to the compute thread and back,
   * onnxruntime's fixed cost per run. Every tier of the chain handles every request. Absent: 0. */
  readonly overheadS?: Float64Array;
  /** codecs the links may use (absent: every link sends raw), priced as the planner prices them */
  readonly codecs?: SplitCodecs;
}

/**
 * Codec prices of a chain (src/plan/codec-cost.ts, what `kerf profile --codecs` measured): link j
 * sending the output of block b−1 with codec k costs tier j's encode + coded bytes ÷ bandwidth +
 * tier j+1's decode, each tier's time scaled by its load factor like its blocks. The model input
 * (boundary 0) always travels raw.
 */
export interface SplitCodecs {
  /** per tier: what its profile measured (undefined: no codec) */
  readonly tiers: readonly (SystemCodecs | undefined)[];
  /** per link: (sender codec index, receiver codec index) pairs allowed on it (codecPairs) */
  readonly pairs: readonly Int32Array[];
}

/** The codec a link uses when it sends raw. */
export const RAW = 'none';

/**
 * Link j's transfer of the tensors crossing boundary b under `c`: seconds (the round trip
 * excluded; the wire time queues at rate `lambda`, encode and decode are the tiers' CPU) and the
 * codec. With `codec` given, that codec's price (raw when it was not measured there); else the
 * cheapest allowed codec, raw winning ties.
 */
export function linkTransfer(m: SplitModel, c: AdaptConditions, j: number, b: number, lambda = 0, codec?: string): { seconds: number; codec: string } {
  const l = c.links[j]!, bytes = m.boundaryBytes[b]!;
  const lv = variability(c.arrivalScv, l.serviceScv);
  const raw = { seconds: sojourn(hopBusyS(bytes, l.bytesPerS), lambda, lv), codec: RAW };
  const cc = m.codecs;
  if (!cc || b <= 0 || b >= m.blocks || bytes === 0 || codec === RAW) return raw;
  const send = cc.tiers[j], recv = cc.tiers[j + 1], pairs = cc.pairs[j]!;
  if (!send || !recv) return raw;
  const fs = c.tiers[j]!.factor, fr = c.tiers[j + 1]!.factor;
  let best = raw;
  for (let i = 0; i < pairs.length; i += 2) {
    const k = pairs[i]!, r = send.ratio[k]![b - 1]!;
    if (codec !== undefined && send.names[k] !== codec) continue;
    if (!(r > 0)) continue;
    // hopBusyS(bytes, bw, coding) of src/plan/cost.ts, the planner's price, with the wire term
    // queued like a raw transfer (encode and decode are the tiers' CPU): equal to it without a rate.
    const s = send.encodeS[k]![b - 1]! * fs + sojourn(hopBusyS(bytes / r, l.bytesPerS), lambda, lv) + recv.decodeS[pairs[i + 1]!]![b - 1]! * fr;
    if (codec !== undefined || s < best.seconds) best = { seconds: s, codec: send.names[k]! };
  }
  return best;
}

/** The codec each link of `boundaries` uses at its cheapest under `c` ('none' for a link carrying nothing). */
export function chooseLinkCodecs(m: SplitModel, c: AdaptConditions, boundaries: readonly number[]): string[] {
  return boundaries.map((b, j) => (b < m.blocks ? linkTransfer(m, c, j, b, c.ratePerS ?? 0).codec : RAW));
}

/** The conditions a decision is made for. */
export interface AdaptConditions {
  /** one per link (tiers − 1): throughput in bytes/s and round-trip time in seconds */
  links: { bytesPerS: number; rttS: number; serviceScv?: number }[];
  /** one per tier: load factor (observed ÷ profiled). `queueS`, the queueing delay observed
   * under the placement in force, is carried for logs only: it belongs to that placement, so
   * the prediction derives each placement's own queueing from `ratePerS` instead. `fixedS`:
   * seconds of the tier's service per request that no split changes and the load factor does
   * not scale, as measured (a gateway's own request handling: HTTP, frames); default 0. */
  tiers: { factor: number; queueS?: number; serviceScv?: number; fixedS?: number }[];
  /** request arrival rate λ (per second); 0 or absent: no queueing is predicted */
  ratePerS?: number;
  /** squared coefficient of variation of the gaps between arrivals (default 1: Poisson; a camera
   * sending frames at a fixed rate is near 0). With each server's `serviceScv` (of its service
   * times, default 1) it sets how much a utilisation queues: Kingman's G/G/1 approximation. */
  arrivalScv?: number;
}

/**
 * Utilisation beyond which a server counts as saturated: its sojourn continues on a steep line
 * (finite, convex). Below 1 on purpose: a placement's service times are extrapolated from what
 * the monitors saw under another placement (a load factor measured on 7 ms of a tier's blocks
 * priced on 60 ms), off by 10–20 % on a slow device, so a placement predicted at ρ = 0.95 may
 * well be saturated — and a saturated placement's queue grows for as long as it stays.
 */
export const RHO_MAX = 0.9;
/** Slope of the sojourn beyond RHO_MAX, at least: M/M/1's tangent at ρ = 0.95, 1/(1 − 0.95)². */
export const SATURATED_SLOPE = 400;

/**
 * Expected sojourn of a FIFO server with service time `s` at arrival rate `lambda`, by
 * Kingman's G/G/1 approximation: s + c·s·ρ/(1 − ρ), ρ = λ·s, where c = (ca² + cs²)/2 is the mean
 * of the squared coefficients of variation of the arrival gaps and the service times. c = 1
 * (the default) is M/M/1: s / (1 − ρ). Periodic arrivals and steady service (c near 0) queue
 * little until the server saturates; bursty ones queue more. Beyond ρ = RHO_MAX it continues on
 * a line of slope at least SATURATED_SLOPE: a saturated placement's queue grows without bound
 * whatever the variability, so it costs (very) much more than any feasible one while staying
 * finite and convex in s (which the search relies on).
 */
export function sojourn(s: number, lambda: number, c = 1): number {
  if (!(lambda > 0) || s <= 0) return s;
  const rho = lambda * s;
  if (rho <= RHO_MAX) return s + (c * s * rho) / (1 - rho);
  const s0 = RHO_MAX / lambda, d = 1 - RHO_MAX;
  const slope = Math.max(1 + (c * (2 * RHO_MAX - RHO_MAX * RHO_MAX)) / (d * d), SATURATED_SLOPE);
  return s0 + (c * s0 * RHO_MAX) / d + (s - s0) * slope;
}

/**
 * Tier j's per-request terms beyond its blocks (src/plan/cost.ts, the cost every planner uses):
 * the profile's per-call overhead (profile scale, so the load factor scales it with the blocks)
 * and the measured fixed time (`fixedS`, wall seconds, which the factor does not scale). Every
 * tier of the chain handles every request, even one that runs no block, so each pays them.
 */
function termsOf(m: SplitModel, c: AdaptConditions, j: number): TierTerms {
  return { callOverheadS: m.overheadS?.[j] ?? 0, fixedS: c.tiers[j]!.fixedS ?? 0 };
}

/** Kingman's variability factor (ca² + cs²)/2 of a server under `c` (defaults: 1 each). */
export function variability(arrivalScv: number | undefined, serviceScv: number | undefined): number {
  const a = arrivalScv ?? 1, b = serviceScv ?? 1;
  return (Math.max(0, Number.isFinite(a) ? a : 1) + Math.max(0, Number.isFinite(b) ? b : 1)) / 2;
}

/**
 * Build a cost model from per-block times. `tiers[j].blockS[i]` is block i's profiled time on
 * tier j; `boundaryBytes[b]` the bytes crossing a boundary at b (length blocks+1, [0] is the
 * model input); `allowed` (length blocks+1) limits where boundaries may go (default: anywhere).
 */
export function splitCostModel(
  tiers: { name: string; blockS: readonly number[]; overheadS?: number }[],
  boundaryBytes: readonly number[],
  allowed?: readonly boolean[],
): SplitModel {
  if (tiers.length < 2) throw kerfError('KERF_ERR_PLAN', `a cost model needs at least two tiers, got ${tiers.length}`);
  const n = tiers[0]!.blockS.length;
  if (n < 1) throw kerfError('KERF_ERR_PLAN', `tier '${tiers[0]!.name}' has no blocks`);
  const prefix = tiers.map((t) => {
    if (t.blockS.length !== n) {
      throw kerfError('KERF_ERR_PROFILE', `tier '${t.name}' has ${t.blockS.length} blocks, tier '${tiers[0]!.name}' has ${n}`);
    }
    const p = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      const s = t.blockS[i]!;
      if (!(s >= 0 && Number.isFinite(s))) throw kerfError('KERF_ERR_PROFILE', `tier '${t.name}' block ${i}: time ${s} is not a non-negative number`);
      p[i + 1] = p[i]! + s;
    }
    return p;
  });
  const overheadS = tiers.map((t) => {
    const o = t.overheadS ?? 0;
    if (!(o >= 0 && Number.isFinite(o))) throw kerfError('KERF_ERR_PROFILE', `tier '${t.name}': per-request overhead ${o} is not a non-negative number`);
    return o;
  });
  return splitCostModelFromPrefix(tiers.map((t) => t.name), prefix, boundaryBytes, allowed, overheadS);
}

/** Build a cost model from cumulative times directly (prefix[j][b], length n+1 per tier). */
export function splitCostModelFromPrefix(
  names: readonly string[],
  prefix: readonly (Float64Array | readonly number[])[],
  boundaryBytes: readonly number[] | Float64Array,
  allowed?: readonly boolean[],
  overheadS?: readonly number[],
): SplitModel {
  const n = prefix[0]!.length - 1;
  if (names.length !== prefix.length || names.length < 2) {
    throw kerfError('KERF_ERR_PLAN', `need one prefix array per tier and at least two tiers (${names.length} names, ${prefix.length} arrays)`);
  }
  for (let j = 0; j < prefix.length; j++) {
    if (prefix[j]!.length !== n + 1) throw kerfError('KERF_ERR_PROFILE', `tier '${names[j]}': prefix has ${prefix[j]!.length} entries, expected ${n + 1}`);
  }
  if (boundaryBytes.length !== n + 1) {
    throw kerfError('KERF_ERR_PROFILE', `boundaryBytes has ${boundaryBytes.length} entries, expected blocks+1 = ${n + 1}`);
  }
  const a = new Uint8Array(n + 1);
  for (let b = 0; b <= n; b++) a[b] = allowed ? (allowed[b] ? 1 : 0) : 1;
  if (!a.some((v) => v === 1)) throw kerfError('KERF_ERR_PLAN', 'no boundary position is allowed');
  return Object.freeze({
    blocks: n,
    tiers: Object.freeze([...names]),
    prefix: Object.freeze(prefix.map((p) => Float64Array.from(p))),
    boundaryBytes: Float64Array.from(boundaryBytes),
    allowed: a,
    ...(overheadS && overheadS.some((o) => o > 0) ? { overheadS: Float64Array.from(overheadS) } : {}),
  });
}

/**
 * A cost model from kerf profiles, one per tier in chain order (same model, same blocks). The
 * bytes crossing boundary b are the output of block b−1; at 0 the model input.
 */
export function splitCostModelFromProfiles(profiles: readonly Profile[]): SplitModel {
  if (profiles.length < 2) throw kerfError('KERF_ERR_PROFILE', `need one profile per tier (at least two), got ${profiles.length}`);
  const first = profiles[0]!;
  for (const p of profiles) {
    if (p.blocks.length !== first.blocks.length) {
      throw kerfError('KERF_ERR_PROFILE', `profile of '${p.system.name}' has ${p.blocks.length} blocks, '${first.system.name}' has ${first.blocks.length}`);
    }
  }
  const bytes = [first.model.inputBytes ?? 0, ...first.blocks.map((b) => b.outputBytes)];
  return splitCostModel(profiles.map((p) => ({ name: p.system.tier ?? p.system.name, blockS: p.blocks.map((b) => b.latency.median), overheadS: p.callOverheadS ?? 0 })), bytes);
}

/** `m` with codec prices for its links (one SystemCodecs or undefined per tier, one pair list per link). */
export function withCodecs(m: SplitModel, codecs: SplitCodecs): SplitModel {
  const k = m.tiers.length;
  if (codecs.tiers.length !== k || codecs.pairs.length !== k - 1) {
    throw kerfError('KERF_ERR_PLAN', `codec prices for ${codecs.tiers.length} tiers and ${codecs.pairs.length} links; the model has ${k} tiers and ${k - 1} links`);
  }
  codecs.tiers.forEach((t, j) => {
    if (t && t.ratio.some((r) => r.length !== m.blocks)) throw kerfError('KERF_ERR_PROFILE', `tier '${m.tiers[j]}': codec measurements for another number of blocks than ${m.blocks}`);
  });
  return Object.freeze({ ...m, codecs: Object.freeze({ tiers: [...codecs.tiers], pairs: [...codecs.pairs] }) });
}

function checkConditions(m: SplitModel, c: AdaptConditions): void {
  const k = m.tiers.length;
  if (c.tiers.length !== k || c.links.length !== k - 1) {
    throw kerfError('KERF_ERR_PLAN', `conditions have ${c.tiers.length} tiers and ${c.links.length} links; the model has ${k} tiers and ${k - 1} links`);
  }
  for (const l of c.links) if (!(l.bytesPerS > 0)) throw kerfError('KERF_ERR_PLAN', `link bandwidth must be positive, got ${l.bytesPerS}`);
  for (const t of c.tiers) {
    if (!(t.factor > 0 && Number.isFinite(t.factor))) throw kerfError('KERF_ERR_PLAN', `load factor must be a positive number, got ${t.factor}`);
    if (t.fixedS !== undefined && !(t.fixedS >= 0 && Number.isFinite(t.fixedS))) throw kerfError('KERF_ERR_PLAN', `a tier's fixed time per request must be a non-negative number, got ${t.fixedS}`);
  }
  if (c.ratePerS !== undefined && !(c.ratePerS >= 0)) throw kerfError('KERF_ERR_PLAN', `request rate must be non-negative, got ${c.ratePerS}`);
}

/**
 * Predicted latency (seconds) of one placement: `boundaries` = [b_1, …, b_{m−1}], non-decreasing;
 * `codecs` (one per link): the codecs its links send with (default: each link's cheapest).
 */
export function predictSplitLatency(m: SplitModel, c: AdaptConditions, boundaries: readonly number[], codecs?: readonly string[]): number {
  checkConditions(m, c);
  const k = m.tiers.length, n = m.blocks;
  if (boundaries.length !== k - 1) throw kerfError('KERF_ERR_PLAN', `expected ${k - 1} boundaries, got ${boundaries.length}`);
  let total = 0;
  let lo = 0;
  for (let j = 0; j < k; j++) {
    const hi = j < k - 1 ? boundaries[j]! : n;
    if (!(Number.isInteger(hi) && hi >= lo && hi <= n)) throw kerfError('KERF_ERR_PLAN', `boundaries ${JSON.stringify(boundaries)} are not non-decreasing in 0..${n}`);
    const t = c.tiers[j]!, lambda = c.ratePerS ?? 0;
    total += sojourn(tierServiceS(m.prefix[j]![hi]! - m.prefix[j]![lo]!, termsOf(m, c, j), t.factor), lambda, variability(c.arrivalScv, t.serviceScv));
    if (j < k - 1 && hi < n) {
      total += c.links[j]!.rttS + linkTransfer(m, c, j, hi, lambda, codecs?.[j]).seconds;
    }
    lo = hi;
  }
  return total;
}

/**
 * Finds the best placement by dynamic programming over the chain:
 * g_j(b) = least cost of tiers 0..j with tier j ending at b (including link j's transfer),
 * g_j(b) = link_j(b) + min_{a ≤ b} g_{j−1}(a) + h_j(P_j[b] − P_j[a]), a = b: tier j runs nothing.
 *
 * Without queueing (no rate) h_j is linear, h_j(x) = f_j·x, and the inner minimum is a running
 * prefix minimum: O(tiers × blocks). With a rate λ, h_j(x) = sojourn(f_j·x, λ) is convex in x
 * and P_j is non-decreasing, so the matrix of the inner minimum is Monge and its row minima
 * are monotone in b: divide and conquer finds them in O(blocks · log blocks) per tier, exactly.
 * Scratch arrays are allocated once per model, so a decision allocates almost nothing.
 */
export class SplitSearch {
  private readonly g: Float64Array[];
  private readonly from: Int32Array[];
  constructor(readonly model: SplitModel) {
    const k = model.tiers.length, n = model.blocks;
    this.g = Array.from({ length: k - 1 }, () => new Float64Array(n + 1));
    this.from = Array.from({ length: k - 1 }, () => new Int32Array(n + 1));
  }

  /** Best boundaries and their predicted latency for conditions c. */
  best(c: AdaptConditions): { boundaries: number[]; latencyS: number } {
    const m = this.model;
    checkConditions(m, c);
    const lambda = c.ratePerS ?? 0;
    if (lambda > 0) this.queued(c, lambda);
    else this.linear(c);
    const k = m.tiers.length, n = m.blocks, allowed = m.allowed;
    // last tier runs [a, n)
    const last = k - 1, P = m.prefix[last]!, f = c.tiers[last]!.factor, terms = termsOf(m, c, last);
    const cv = variability(c.arrivalScv, c.tiers[last]!.serviceScv);
    const gl = this.g[k - 2]!;
    let latencyS = Infinity, a = -1;
    for (let b = 0; b <= n; b++) {
      if (!allowed[b]) continue;
      const v = gl[b]! + sojourn(tierServiceS(P[n]! - P[b]!, terms, f), lambda, cv);
      if (v < latencyS) { latencyS = v; a = b; }
    }
    if (a < 0 || !Number.isFinite(latencyS)) throw kerfError('KERF_ERR_PLAN', 'no feasible placement under these conditions');
    const boundaries = new Array<number>(k - 1);
    let b = a;
    for (let j = k - 2; j >= 0; j--) {
      boundaries[j] = b;
      b = this.from[j]![b]!;
    }
    return { boundaries, latencyS };
  }

  /** g_j for linear tier costs: running prefix minimum of g_{j−1}(a) − f·P[a]. */
  private linear(c: AdaptConditions): void {
    const m = this.model;
    const k = m.tiers.length, n = m.blocks, allowed = m.allowed;
    for (let j = 0; j < k - 1; j++) {
      const g = this.g[j]!, from = this.from[j]!, P = m.prefix[j]!;
      // tierServiceS is f·blocks + a constant: the DP carries f·P and adds the constant.
      const f = c.tiers[j]!.factor, fo = tierServiceS(0, termsOf(m, c, j), f);
      const rtt = c.links[j]!.rttS;
      const prev = j > 0 ? this.g[j - 1]! : null;
      let runMin = Infinity, runArg = -1;
      for (let b = 0; b <= n; b++) {
        let best = Infinity, arg = -1;
        if (prev !== null && allowed[b]) {
          const cand = prev[b]! - f * P[b]!;
          if (cand < runMin) { runMin = cand; runArg = b; }
        }
        if (allowed[b]) {
          if (prev === null) { best = f * (P[b]! - P[0]!) + fo; arg = 0; }
          else if (runArg >= 0) { best = runMin + f * P[b]! + fo; arg = runArg; }
          best += b < n ? rtt + linkTransfer(m, c, j, b).seconds : 0;
        }
        g[b] = best;
        from[b] = arg;
      }
    }
  }

  /** g_j with queueing: row minima of a Monge matrix by divide and conquer. */
  private queued(c: AdaptConditions, lambda: number): void {
    const m = this.model;
    const k = m.tiers.length, n = m.blocks, allowed = m.allowed;
    for (let j = 0; j < k - 1; j++) {
      const g = this.g[j]!, from = this.from[j]!, P = m.prefix[j]!;
      const f = c.tiers[j]!.factor, terms = termsOf(m, c, j), cv = variability(c.arrivalScv, c.tiers[j]!.serviceScv);
      if (j === 0) {
        for (let b = 0; b <= n; b++) { g[b] = sojourn(tierServiceS(P[b]! - P[0]!, terms, f), lambda, cv); from[b] = 0; }
      } else {
        const prev = this.g[j - 1]!;
        const solve = (lo: number, hi: number, optLo: number, optHi: number): void => {
          if (lo > hi) return;
          const mid = (lo + hi) >> 1;
          let best = Infinity, arg = optLo;
          const top = Math.min(mid, optHi), Pm = P[mid]!;
          for (let a = optLo; a <= top; a++) {
            const pa = prev[a]!;
            if (pa === Infinity) continue;
            const v = pa + sojourn(tierServiceS(Pm - P[a]!, terms, f), lambda, cv);
            if (v < best) { best = v; arg = a; }
          }
          g[mid] = best;
          from[mid] = arg;
          solve(lo, mid - 1, optLo, arg);
          solve(mid + 1, hi, arg, optHi);
        };
        solve(0, n, 0, n);
      }
      const rtt = c.links[j]!.rttS;
      for (let b = 0; b <= n; b++) {
        if (!allowed[b]) { g[b] = Infinity; from[b] = -1; }
        else if (b < n) g[b]! += rtt + linkTransfer(m, c, j, b, lambda).seconds;
      }
    }
  }
}

function sameBoundaries(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Codecs differ only where a link carries something (the last boundary's link carries nothing). */
function sameCodecs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A placement's boundaries with the codecs of its links, as one line: `[3,9]`, `[3,9] zstd-1,none`. */
function placementText(b: readonly number[], codecs: readonly string[]): string {
  return `[${b.join(',')}]${codecs.some((x) => x !== RAW) ? ` ${codecs.join(',')}` : ''}`;
}

/** 'bandwidth' ignores load (factors 1, no rate hence no queueing); 'load-aware' uses everything. */
export type AdaptMode = 'bandwidth' | 'load-aware';

export interface DeciderOptions {
  mode: AdaptMode;
  /** switch only when the new placement is predicted at least this much faster, relative
   * to the current one (default 0.1 = 10 %) */
  minGain?: number;
  /** and only when the current placement has been in place this long, seconds (default 5) */
  minDwellS?: number;
  /** flap damping: a switch back to the placement just left needs a dwell of
   * minDwellS × backoff^(returns so far), up to maxBackoff× (defaults 2 and 32); a switch
   * elsewhere resets the count */
  backoff?: number;
  maxBackoff?: number;
  /** and only when the same better placement has met the minimum gain at every decision for
   * this long, seconds (default 0: one decision suffices) — filters short excursions of noisy
   * estimates. A gain of at least `confirmBelowGain` (default 0.5) needs no confirmation: noise
   * does not halve a latency, saturation does, and every second waited there grows a queue. */
  confirmS?: number;
  confirmBelowGain?: number;
}

/** Options of one `Decider.decide`. */
export interface DecideOptions {
  /** the monitors have just detected a level shift: it stands in for the confirmation */
  shifted?: boolean;
  /** factor on the model's prediction of a placement (measured ÷ predicted latency where it
   * ran, see `Calibration`); default 1 for all */
  calibrate?: (boundaries: readonly number[]) => number;
}

/** One decision and why it was taken: what the controller logs. */
export interface Decision {
  atS: number;
  mode: AdaptMode;
  /** true when the controller should switch to `chosen` */
  switch: boolean;
  /** placement in force before the decision (null before the first) */
  current: number[] | null;
  /** the placement the search found best */
  best: number[];
  /** the placement in force after the decision */
  chosen: number[];
  /** the codec of each link (one per boundary, 'none': raw) in force before the decision (null
   * before the first), of the best placement, and in force after it */
  currentCodecs: string[] | null;
  bestCodecs: string[];
  chosenCodecs: string[];
  /** predicted latency of current and best, seconds (current: NaN before the first decision) */
  predictedCurrentS: number;
  predictedBestS: number;
  /** (current − best) / current: the relative gain a switch is expected to bring */
  gain: number;
  /** one line for the log */
  reason: string;
  /** the conditions as the decision used them (load masked out in 'bandwidth' mode) */
  inputs: AdaptConditions;
}

/**
 * The stateful decision with hysteresis: it remembers the placement in force and when it was
 * adopted, and switches only for a minimum expected gain after a minimum dwell time. Time comes
 * in with every call (atS); nothing here reads a clock.
 */
export class Decider {
  private readonly search: SplitSearch;
  private readonly minGain: number;
  private readonly minDwellS: number;
  readonly mode: AdaptMode;
  private readonly backoff: number;
  private readonly maxBackoff: number;
  private cur: number[] | null;
  private curCodecs: string[];
  private sinceS: number;
  private prev: { boundaries: number[]; codecs: string[] } | null = null;
  private returns = 0;
  private readonly confirmS: number;
  private readonly confirmBelowGain: number;
  private pending: { boundaries: number[]; codecs: string[]; sinceS: number } | null = null;

  constructor(readonly model: SplitModel, opts: DeciderOptions, initial?: { boundaries: number[]; atS: number; codecs?: readonly string[] }) {
    if (opts.mode !== 'bandwidth' && opts.mode !== 'load-aware') {
      throw kerfError('KERF_ERR_CONFIG', `adapt mode '${String(opts.mode)}' is not one of bandwidth, load-aware`);
    }
    this.mode = opts.mode;
    this.minGain = opts.minGain ?? 0.1;
    this.minDwellS = opts.minDwellS ?? 5;
    this.backoff = opts.backoff ?? 2;
    this.maxBackoff = opts.maxBackoff ?? 32;
    this.confirmS = opts.confirmS ?? 0;
    this.confirmBelowGain = opts.confirmBelowGain ?? 0.5;
    if (!(this.confirmS >= 0)) throw kerfError('KERF_ERR_CONFIG', 'confirmS must be non-negative');
    if (!(this.backoff >= 1) || !(this.maxBackoff >= 1)) throw kerfError('KERF_ERR_CONFIG', 'backoff and maxBackoff must be at least 1');
    if (!(this.minGain >= 0) || !(this.minDwellS >= 0)) throw kerfError('KERF_ERR_CONFIG', 'minGain and minDwellS must be non-negative');
    this.search = new SplitSearch(model);
    this.cur = initial ? [...initial.boundaries] : null;
    this.curCodecs = this.codecsOrRaw(initial?.codecs);
    this.sinceS = initial ? initial.atS : -Infinity;
    if (this.cur && this.cur.length !== model.tiers.length - 1) {
      throw kerfError('KERF_ERR_PLAN', `initial placement needs ${model.tiers.length - 1} boundaries, got ${this.cur.length}`);
    }
  }

  private codecsOrRaw(codecs: readonly string[] | undefined): string[] {
    const k = this.model.tiers.length - 1;
    if (codecs && codecs.length !== k) throw kerfError('KERF_ERR_PLAN', `a placement needs ${k} link codecs, got ${codecs.length}`);
    return codecs ? [...codecs] : Array.from({ length: k }, () => RAW);
  }

  /** Placement in force, or null before the first decision. */
  get current(): readonly number[] | null {
    return this.cur;
  }

  /** The codec of each link in force ('none' for raw). */
  get currentCodecs(): readonly string[] {
    return this.curCodecs;
  }

  /** Tell the decider that the placement in force changed for another reason (e.g. a manual
   * switch); `codecs`: its links' codecs (default: as before). */
  adopt(boundaries: readonly number[], atS: number, codecs?: readonly string[]): void {
    const cs = codecs ? this.codecsOrRaw(codecs) : this.curCodecs;
    if (this.cur && !(sameBoundaries(this.cur, boundaries) && sameCodecs(this.curCodecs, cs))) this.prev = { boundaries: this.cur, codecs: this.curCodecs };
    this.cur = [...boundaries];
    this.curCodecs = [...cs];
    this.sinceS = atS;
  }

  /**
   * One decision at `atS`. `opts.shifted`: the monitors have just detected a level shift (several
   * consecutive samples beyond a ratio of the reference, their own confirmation), so a better
   * placement needs no further confirmation; minimum gain and dwell still apply.
   */
  decide(conditions: AdaptConditions, atS: number, opts: DecideOptions = {}): Decision {
    const inputs: AdaptConditions = this.mode === 'bandwidth'
      ? { links: conditions.links, tiers: conditions.tiers.map(() => ({ factor: 1, queueS: 0 })), ratePerS: 0 }
      : conditions;
    const best = this.search.best(inputs);
    const bestCodecs = chooseLinkCodecs(this.model, inputs, best.boundaries);
    const cal = opts.calibrate ?? (() => 1);
    const calBest = cal(best.boundaries);
    const base = { atS, mode: this.mode, best: best.boundaries, bestCodecs, predictedBestS: best.latencyS * calBest, inputs };
    if (this.cur === null) {
      this.cur = best.boundaries;
      this.curCodecs = bestCodecs;
      this.sinceS = atS;
      return { ...base, switch: true, current: null, currentCodecs: null, chosen: best.boundaries, chosenCodecs: bestCodecs, predictedCurrentS: NaN, gain: 0, reason: 'initial placement' };
    }
    const current = this.cur, currentCodecs = this.curCodecs;
    const calCurrent = cal(current);
    const predictedCurrentS = predictSplitLatency(this.model, inputs, current, currentCodecs) * calCurrent;
    const gain = predictedCurrentS > 0 ? (predictedCurrentS - base.predictedBestS) / predictedCurrentS : 0;
    const calNote = calBest !== 1 || calCurrent !== 1 ? ` (measured ÷ model: current ×${calCurrent.toFixed(2)}, best ×${calBest.toFixed(2)})` : '';
    const same = sameBoundaries(best.boundaries, current) && sameCodecs(bestCodecs, currentCodecs);
    const back = this.prev !== null && sameBoundaries(best.boundaries, this.prev.boundaries) && sameCodecs(bestCodecs, this.prev.codecs);
    const dwell = this.minDwellS * (back ? Math.min(this.maxBackoff, this.backoff ** (this.returns + 1)) : 1);
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    let reason: string;
    let doSwitch = false;
    if (same || gain < this.minGain) this.pending = null;
    else if (!this.pending || !sameBoundaries(this.pending.boundaries, best.boundaries) || !sameCodecs(this.pending.codecs, bestCodecs)) this.pending = { boundaries: best.boundaries, codecs: bestCodecs, sinceS: atS };
    if (same) reason = 'current placement is the best';
    else if (gain < this.minGain) reason = `gain ${pct(gain)} < minimum ${pct(this.minGain)}${calNote}`;
    else if (gain < this.confirmBelowGain && !opts.shifted && atS - this.pending!.sinceS < this.confirmS) reason = `gain ${pct(gain)} for ${(atS - this.pending!.sinceS).toFixed(2)} s < ${this.confirmS} s to confirm`;
    else if (atS - this.sinceS < dwell) reason = `gain ${pct(gain)} but dwell ${(atS - this.sinceS).toFixed(2)} s < ${dwell} s${back ? ' (back to the placement just left: damped)' : ''}`;
    else {
      doSwitch = true;
      reason = `gain ${pct(gain)} ≥ ${pct(this.minGain)}: ${placementText(current, currentCodecs)} → ${placementText(best.boundaries, bestCodecs)}${calNote}`;
    }
    if (doSwitch) {
      this.pending = null;
      this.returns = back ? this.returns + 1 : 0;
      this.prev = { boundaries: current, codecs: currentCodecs };
      this.cur = best.boundaries;
      this.curCodecs = bestCodecs;
      this.sinceS = atS;
    }
    return {
      ...base, switch: doSwitch, current, currentCodecs, chosen: doSwitch ? best.boundaries : current, chosenCodecs: doSwitch ? bestCodecs : currentCodecs,
      predictedCurrentS, gain, reason,
    };
  }
}
