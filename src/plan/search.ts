import { kerfError } from '../errors.js';
import { findNetworkLink } from './network.js';
import { hopLatencyS, tierServiceS } from './cost.js';
import { chooseCodec, codecChoice, codecPairs, codedHopFields, transferS, type HopChoice } from './codec-cost.js';
import type {
  PlanCriteria, Network, PlanObjective, RankedPlacement, PlanProblem, RankedIndex, PlanSearchOptions, SystemCost, PlanTier, TierCriteria,
  TierPlacement, PlanTransfer,
} from './types.js';

/*
 * The search. Device runs blocks 0..x, edge x+1..y, cloud y+1..L-1 (any may be empty; an
 * unused edge has y = x). Placements fall in four families: device alone; device→cloud;
 * device→edge; device→edge→cloud. The first three are O(L) per system pair; the last is
 * O(L²) per triple in principle, but its latency splits as A(x) + g(y), so a suffix minimum
 * of g bounds every row x and rows (and cells) that cannot enter the top K are skipped.
 * Every cost is O(1) from prefix sums; nothing is allocated per placement.
 */

/** PlanCriteria of one tier, compiled for O(1) checks. */
interface TierRule {
  needUsed: boolean;
  nameOk: Uint8Array;
  incNeg: boolean;
  incPos: boolean;
  incMin: number;
  incMax: number;
  excNeg: boolean;
  exc: Int32Array;
  maxUp: number;
  maxT: number;
  maxPct: number;
  maxMem: number;
}

interface Sys {
  cost: SystemCost;
  /** prefix sums of time: pt[i] = time of blocks 0..i-1 */
  pt: Float64Array;
  /** prefix counts of blocks whose time is non-zero */
  nz: Int32Array;
  /** prefix sums of memory */
  pm: Float64Array;
}

/** NetworkLink between two tiers' systems, flattened [i * n + j]; NaN where no link exists.
 * `pairs`: the codecs both systems measured and that are allowed on the hop (src/plan/codec-cost.ts). */
interface LinkTable { ping: Float64Array; bw: Float64Array; n: number; pairs: Int32Array[] }

interface Ctx {
  L: number;
  input: number;
  first: Int32Array;
  last: Int32Array;
  D: Sys[];
  E: Sys[];
  C: Sys[];
  de: LinkTable;
  dc: LinkTable;
  ec: LinkTable;
  /** the result's return, back along the chain (kerf's workers reply to their caller) */
  ed: LinkTable;
  cd: LinkTable;
  ce: LinkTable;
  rd: TierRule;
  re: TierRule;
  rc: TierRule;
  minDev: number;
  throughput: boolean;
  ret: boolean;
  quirks: boolean;
}

function prep(s: SystemCost, L: number): Sys {
  const pt = new Float64Array(L + 1);
  const nz = new Int32Array(L + 1);
  const pm = new Float64Array(L + 1);
  for (let i = 0; i < L; i++) {
    pt[i + 1] = pt[i]! + s.time[i]!;
    nz[i + 1] = nz[i]! + (s.time[i] !== 0 ? 1 : 0);
    pm[i + 1] = pm[i]! + s.mem[i]!;
  }
  return { cost: s, pt, nz, pm };
}

function table(net: Network, a: SystemCost[], b: SystemCost[], allowed: ReadonlySet<string>): LinkTable {
  const n = b.length;
  const ping = new Float64Array(a.length * n).fill(NaN);
  const bw = new Float64Array(a.length * n).fill(NaN);
  const pairs: Int32Array[] = [];
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < n; j++) {
      const l = findNetworkLink(net, a[i]!.name, b[j]!.name);
      if (l) { ping[i * n + j] = l.rttS; bw[i * n + j] = l.bytesPerS; }
      pairs[i * n + j] = codecPairs(a[i]!.codecs, b[j]!.codecs, allowed);
    }
  }
  return { ping, bw, n, pairs };
}

/** Transfer seconds (round trip excluded) of `bytes`, the output of `block`, from system a to b over table t. */
function xfer(t: LinkTable, ia: number, ib: number, a: SystemCost, b: SystemCost, block: number, bytes: number): number {
  const k = ia * t.n + ib;
  return transferS(bytes, t.bw[k]!, block, a.codecs, b.codecs, t.pairs[k]!);
}

function rule(t: TierCriteria | undefined, systems: SystemCost[]): TierRule {
  const inc = t?.includeSystems ?? [];
  const exc = t?.excludeSystems ?? [];
  const nameOk = new Uint8Array(systems.length);
  systems.forEach((s, i) => {
    nameOk[i] = (inc.length === 0 || inc.includes(s.name)) && !exc.includes(s.name) ? 1 : 0;
  });
  const il = t?.includeLayers ?? [];
  const pos = il.filter((v) => v >= 0);
  const el = t?.excludeLayers ?? [];
  return {
    needUsed: inc.length > 0 || exc.length > 0,
    nameOk,
    incNeg: il.some((v) => v < 0),
    incPos: pos.length > 0,
    incMin: pos.length ? Math.min(...pos) : 0,
    incMax: pos.length ? Math.max(...pos) : 0,
    excNeg: el.some((v) => v < 0),
    exc: Int32Array.from(el.filter((v) => v >= 0)),
    maxUp: t?.maxUploadBytes ?? Infinity,
    maxT: t?.maxTimeS ?? Infinity,
    maxPct: t?.maxTimePct ?? Infinity,
    maxMem: t?.maxMemoryBytes ?? Infinity,
  };
}

/** Layer and name criteria of one tier whose blocks are a..b (used) or none. */
function tierOk(r: TierRule, ctx: Ctx, sysIdx: number, used: boolean, a: number, b: number): boolean {
  if (!used) return !r.needUsed && !r.incPos && !r.excNeg;
  if (r.needUsed && r.nameOk[sysIdx] === 0) return false;
  if (r.incNeg) return false; // -1 is only in an unused tier's range
  const lo = ctx.first[a]!;
  const hi = ctx.last[b]!;
  if (r.incPos && (lo > r.incMin || hi < r.incMax)) return false;
  const exc = r.exc;
  for (let i = 0; i < exc.length; i++) if (exc[i]! >= lo && exc[i]! <= hi) return false;
  return true;
}

function timeOk(r: TierRule, t: number, total: number): boolean {
  if (t > r.maxT) return false;
  if (r.maxPct !== Infinity && !((t / total) * 100 <= r.maxPct)) return false;
  return true;
}

/**
 * Cost of one placement, or NaN when a criterion rejects it or a link is missing.
 * d/e/c index systems of their tier (-1: tier unused).
 */
function evaluate(ctx: Ctx, d: number, e: number, c: number, x: number, y: number): number {
  const L = ctx.L;
  const dUsed = x >= 0;
  const eUsed = e >= 0;
  const cUsed = c >= 0;
  const Ds = ctx.D[d]!;
  const dt = dUsed ? Ds.pt[x + 1]! : 0;
  let et = 0;
  let ct = 0;
  let devOut = dUsed ? Ds.cost.out[x]! : ctx.input;
  let edgeOut = 0;
  const Es = eUsed ? ctx.E[e]! : undefined;
  const Cs = cUsed ? ctx.C[c]! : undefined;
  if (Es) { et = Es.pt[y + 1]! - Es.pt[x + 1]!; edgeOut = Es.cost.out[y]!; }
  if (Cs) ct = Cs.pt[L]! - Cs.pt[y + 1]!;
  if (ctx.quirks) {
    // scission_predict.py decides "sends nothing" from a zero time sum, not from use
    const eZero = !Es || Es.nz[y + 1]! - Es.nz[x + 1]! === 0;
    const cZero = !Cs || Cs.nz[L]! - Cs.nz[y + 1]! === 0;
    if (eZero && cZero) devOut = 0;
    else if (cZero) edgeOut = 0;
  } else {
    if (!Es && !Cs) devOut = 0;
    if (!Cs) edgeOut = 0;
  }
  if (dUsed ? x + 1 < ctx.minDev : ctx.minDev > 0) return NaN;
  const rd = ctx.rd, re = ctx.re, rc = ctx.rc;
  if (!tierOk(rd, ctx, d, dUsed, 0, x)) return NaN;
  if (!tierOk(re, ctx, e, eUsed, x + 1, y)) return NaN;
  if (!tierOk(rc, ctx, c, cUsed, y + 1, L - 1)) return NaN;
  if (devOut > rd.maxUp || edgeOut > re.maxUp) return NaN;
  const tpt = dt + et + ct;
  if (!timeOk(rd, dt, tpt) || !timeOk(re, et, tpt) || !timeOk(rc, ct, tpt)) return NaN;
  if (dUsed && rd.maxMem !== Infinity && Ds.pm[x + 1]! > rd.maxMem) return NaN;
  if (Es && re.maxMem !== Infinity && Es.pm[y + 1]! - Es.pm[x + 1]! > re.maxMem) return NaN;
  if (Cs && rc.maxMem !== Infinity && Cs.pm[L]! - Cs.pm[y + 1]! > rc.maxMem) return NaN;
  // Each hop: its share of the round trip (src/plan/cost.ts hopLatencyS) and its busy time.
  let t1 = 0, t2 = 0, r1 = 0, r2 = 0;
  let l1 = 0, l2 = 0, lr = 0;
  if (Es) {
    t1 = xfer(ctx.de, d, e, Ds.cost, Es.cost, x, devOut);
    l1 = ping(ctx, ctx.de, d, e);
    if (Cs) {
      t2 = xfer(ctx.ec, e, c, Es.cost, Cs.cost, y, edgeOut);
      l2 = ping(ctx, ctx.ec, e, c);
    }
  } else if (Cs) {
    t1 = xfer(ctx.dc, d, c, Ds.cost, Cs.cost, x, devOut);
    l1 = ping(ctx, ctx.dc, d, c);
  }
  const res = Cs ? Cs.cost.out[L - 1]! : Es ? Es.cost.out[L - 1]! : 0;
  if (ctx.ret && (Es || Cs)) {
    // the result travels back along the chain: cloud → edge → device
    if (Cs && Es) {
      r2 = xfer(ctx.ce, c, e, Cs.cost, Es.cost, L - 1, res);
      r1 = xfer(ctx.ed, e, d, Es.cost, Ds.cost, L - 1, res);
      lr = ping(ctx, ctx.ce, c, e) + ping(ctx, ctx.ed, e, d);
    } else if (Cs) {
      r1 = xfer(ctx.cd, c, d, Cs.cost, Ds.cost, L - 1, res);
      lr = ping(ctx, ctx.cd, c, d);
    } else {
      r1 = xfer(ctx.ed, e, d, Es!.cost, Ds.cost, L - 1, res);
      lr = ping(ctx, ctx.ed, e, d);
    }
  }
  // Each tier in the path: its blocks plus its per-request terms (src/plan/cost.ts); the edge
  // between device and cloud also relays the result back.
  const ds = tierServiceS(dt, Ds.cost.terms, 1, Es || Cs ? devOut + res : 0, dUsed);
  const es = Es ? tierServiceS(et, Es.cost.terms, 1, devOut + (Cs ? edgeOut + 2 * res : res)) : 0;
  const cs = Cs ? tierServiceS(ct, Cs.cost.terms, 1, (Es ? edgeOut : devOut) + res) : 0;
  // a pipeline keeps many requests in flight: the round trip is latency, not a stage's time
  if (ctx.throughput) return Math.max(ds, es, cs, t1, t2, r1, r2);
  return ds + es + cs + (l1 + t1) + (l2 + t2) + (lr + r1 + r2);
}

/** The share of the round trip of the hop a → b that one crossing pays (NaN: no link). */
function ping(ctx: Ctx, t: LinkTable, ia: number, ib: number): number {
  return hopLatencyS(t.ping[ia * t.n + ib]!, ctx.ret);
}

/** A fixed-capacity, sorted top-K of placements: value, then (d, e, c, x, y). */
class TopK {
  readonly vals: Float64Array;
  readonly keys: Int32Array;
  n = 0;
  constructor(readonly k: number) {
    this.vals = new Float64Array(k);
    this.keys = new Int32Array(k * 5);
  }
  worst(): number { return this.n < this.k ? Infinity : this.vals[this.k - 1]!; }
  private before(v: number, d: number, e: number, c: number, x: number, y: number, i: number): boolean {
    const w = this.vals[i]!;
    if (v !== w) return v < w;
    const K = this.keys, o = i * 5;
    if (d !== K[o]) return d < K[o]!;
    if (e !== K[o + 1]) return e < K[o + 1]!;
    if (c !== K[o + 2]) return c < K[o + 2]!;
    if (x !== K[o + 3]) return x < K[o + 3]!;
    return y < K[o + 4]!;
  }
  offer(v: number, d: number, e: number, c: number, x: number, y: number): void {
    if (!(v === v)) return; // NaN: rejected
    if (this.n === this.k && !this.before(v, d, e, c, x, y, this.k - 1)) return;
    let i = this.n < this.k ? this.n++ : this.k - 1;
    while (i > 0 && this.before(v, d, e, c, x, y, i - 1)) {
      this.vals[i] = this.vals[i - 1]!;
      this.keys.copyWithin(i * 5, (i - 1) * 5, i * 5);
      i--;
    }
    this.vals[i] = v;
    const o = i * 5;
    this.keys[o] = d; this.keys[o + 1] = e; this.keys[o + 2] = c; this.keys[o + 3] = x; this.keys[o + 4] = y;
  }
}

function context(problem: PlanProblem, net: Network, criteria: PlanCriteria | undefined, opts: PlanSearchOptions): Ctx {
  const L = problem.blocks;
  const { forward, back } = allowedCodecs(opts);
  return {
    L,
    input: problem.inputBytes,
    first: problem.firstLayer,
    last: problem.lastLayer,
    D: problem.device.map((s) => prep(s, L)),
    E: problem.edge.map((s) => prep(s, L)),
    C: problem.cloud.map((s) => prep(s, L)),
    de: table(net, problem.device, problem.edge, forward),
    dc: table(net, problem.device, problem.cloud, forward),
    ec: table(net, problem.edge, problem.cloud, forward),
    ed: table(net, problem.edge, problem.device, back),
    cd: table(net, problem.cloud, problem.device, back),
    ce: table(net, problem.cloud, problem.edge, back),
    rd: rule(criteria?.device, problem.device),
    re: rule(criteria?.edge, problem.edge),
    rc: rule(criteria?.cloud, problem.cloud),
    minDev: criteria?.minDeviceBlocks ?? 0,
    throughput: (opts.objective ?? 'latency') === 'throughput',
    ret: opts.returnResult ?? false,
    quirks: opts.scissionQuirks ?? false,
  };
}

/** Codecs forward hops may use, and the lossless ones the result's return may use. */
function allowedCodecs(opts: PlanSearchOptions): { forward: Set<string>; back: Set<string> } {
  const forward = new Set((opts.codecs ?? []).filter((c) => c !== 'none'));
  const lossy = new Set(opts.lossyCodecs ?? []);
  return { forward, back: new Set([...forward].filter((c) => !lossy.has(c))) };
}

/** Slack for comparing a bound computed in another float order with a cost. */
const slack = (w: number): number => w + 1e-12 * (1 + Math.abs(w));

/** The three-tier family for one (d, e, c), pruned by exact row and cell bounds. */
function searchTriple(ctx: Ctx, top: TopK, d: number, e: number, c: number, g: Float64Array, suf: Float64Array): void {
  const L = ctx.L;
  if (L < 2) return;
  const ping1 = ping(ctx, ctx.de, d, e), ping2 = ping(ctx, ctx.ec, e, c);
  if (!(ping1 === ping1) || !(ping2 === ping2)) return; // a link is missing
  const Ds = ctx.D[d]!, Es = ctx.E[e]!, Cs = ctx.C[c]!;
  // the result's way back (cloud → edge → device): its latency, and its slower hop's busy time
  let ret = 0, retBusy = 0;
  if (ctx.ret) {
    const res = Cs.cost.out[L - 1]!;
    const r2 = xfer(ctx.ce, c, e, Cs.cost, Es.cost, L - 1, res), r1 = xfer(ctx.ed, e, d, Es.cost, Ds.cost, L - 1, res);
    ret = ping(ctx, ctx.ce, c, e) + ping(ctx, ctx.ed, e, d) + r1 + r2;
    retBusy = Math.max(r1, r2);
    if (!(ret === ret)) return;
  }
  const cpt = Cs.pt, ept = Es.pt, eOut = Es.cost.out, cTotal = cpt[L]!;
  const tp = ctx.throughput;
  // g(y): the part of the cost that depends on y alone (latency) or the y-side stages (throughput)
  for (let y = 0; y <= L - 2; y++) {
    const eo = ctx.quirks && Cs.nz[L]! - Cs.nz[y + 1]! === 0 ? 0 : eOut[y]!;
    const t2 = xfer(ctx.ec, e, c, Es.cost, Cs.cost, y, eo);
    g[y] = tp ? Math.max(t2, cTotal - cpt[y + 1]!) : ept[y + 1]! - cpt[y + 1]! + t2;
  }
  suf[L - 1] = Infinity;
  for (let y = L - 2; y >= 0; y--) suf[y] = Math.min(g[y]!, suf[y + 1]!);
  const quirkZero = ctx.quirks && Cs.cost.time[L - 1] === 0;
  // A(x): the part that depends on x alone
  const rowA = (x: number): number => {
    const dev = quirkZero && Es.cost.time[x + 1] === 0 ? 0 : (x >= 0 ? Ds.cost.out[x]! : ctx.input);
    const dt = x >= 0 ? Ds.pt[x + 1]! : 0;
    const t1 = xfer(ctx.de, d, e, Ds.cost, Es.cost, x, dev);
    return tp ? Math.max(dt, t1, retBusy) : dt + ping1 + t1 - ept[x + 1]! + ping2 + cTotal + ret;
  };
  const bound = (a: number, gy: number): number => (tp ? Math.max(a, gy) : a + gy);
  const scanRow = (x: number, a: number): void => {
    for (let y = x + 1; y <= L - 2; y++) {
      if (bound(a, g[y]!) > slack(top.worst())) continue;
      top.offer(evaluate(ctx, d, e, c, x, y), d, e, c, x, y);
    }
  };
  // seed with the row of the smallest bound, then sweep the rest, skipping hopeless rows
  let best = -2, bestB = Infinity;
  for (let x = -1; x <= L - 3; x++) {
    const b = bound(rowA(x), suf[x + 1]!);
    if (b < bestB) { bestB = b; best = x; }
  }
  if (best === -2) return;
  scanRow(best, rowA(best));
  for (let x = -1; x <= L - 3; x++) {
    if (x === best) continue;
    const a = rowA(x);
    if (bound(a, suf[x + 1]!) > slack(top.worst())) continue;
    scanRow(x, a);
  }
}

/**
 * Rank placements of `problem` over `net`: every (device, edge, cloud) system triple and
 * every split, filtered by `criteria`, best `topK` first (ties: lower system and block
 * indices first). Exact: returns what exhaustive enumeration returns.
 */
export function searchPlacements(problem: PlanProblem, net: Network, criteria?: PlanCriteria, opts: PlanSearchOptions = {}): RankedIndex[] {
  const K = opts.topK ?? 5;
  if (!Number.isInteger(K) || K < 1) throw kerfError('KERF_ERR_CRITERIA', `result count ${K} must be a positive integer`);
  if (problem.device.length === 0) throw kerfError('KERF_ERR_PLAN', `model '${problem.model}': no device profile (the device always exists)`);
  const ctx = context(problem, net, criteria, opts);
  const top = new TopK(K);
  const L = ctx.L, nd = ctx.D.length, ne = ctx.E.length, nc = ctx.C.length;
  for (let d = 0; d < nd; d++) {
    top.offer(evaluate(ctx, d, -1, -1, L - 1, L - 1), d, -1, -1, L - 1, L - 1);
    for (let c = 0; c < nc; c++) {
      for (let x = -1; x <= L - 2; x++) top.offer(evaluate(ctx, d, -1, c, x, x), d, -1, c, x, x);
    }
    for (let e = 0; e < ne; e++) {
      for (let x = -1; x <= L - 2; x++) top.offer(evaluate(ctx, d, e, -1, x, L - 1), d, e, -1, x, L - 1);
    }
  }
  if (ne > 0 && nc > 0) {
    const g = new Float64Array(L);
    const suf = new Float64Array(L);
    for (let d = 0; d < nd; d++) for (let e = 0; e < ne; e++) for (let c = 0; c < nc; c++) searchTriple(ctx, top, d, e, c, g, suf);
  }
  const out: RankedIndex[] = [];
  for (let i = 0; i < top.n; i++) {
    const o = i * 5;
    out.push({ value: top.vals[i]!, d: top.keys[o]!, e: top.keys[o + 1]!, c: top.keys[o + 2]!, x: top.keys[o + 3]!, y: top.keys[o + 4]! });
  }
  return out;
}

/** Sum of a[i..j] left to right, as scission_predict.py adds (so printed figures match). */
function seqSum(a: Float64Array, i: number, j: number): number {
  let t = 0;
  for (let k = i; k <= j; k++) t += a[k]!;
  return t;
}

/**
 * Describe one ranked placement fully. Figures are recomputed by summing blocks in order,
 * the way scission_predict.py does, so they print identically.
 */
export function describePlacement(problem: PlanProblem, net: Network, r: RankedIndex, rank: number, opts: PlanSearchOptions = {}, deviceCodec?: string): RankedPlacement {
  const L = problem.blocks;
  const D = problem.device[r.d]!;
  const E = r.e >= 0 ? problem.edge[r.e]! : undefined;
  const C = r.c >= 0 ? problem.cloud[r.c]! : undefined;
  const dUsed = r.x >= 0;
  const dt = dUsed ? seqSum(D.time, 0, r.x) : 0;
  const et = E ? seqSum(E.time, r.x + 1, r.y) : 0;
  const ct = C ? seqSum(C.time, r.y + 1, L - 1) : 0;
  let devOut = dUsed ? D.out[r.x]! : problem.inputBytes;
  let edgeOut = E ? E.out[r.y]! : 0;
  if (opts.scissionQuirks) {
    if (et === 0 && ct === 0) devOut = 0;
    else if (ct === 0) edgeOut = 0;
  } else {
    if (!E && !C) devOut = 0;
    if (!C) edgeOut = 0;
  }
  const transfers: PlanTransfer[] = [];
  const { forward, back } = allowedCodecs(opts);
  const ret = opts.returnResult ?? false;
  // a hop's stage time is its busy time (codec and bytes); its round trip is latency only
  const busy: number[] = [];
  const hop = (a: SystemCost, b: SystemCost, bytes: number, kind: 'forward' | 'return', block: number): number => {
    const l = findNetworkLink(net, a.name, b.name);
    if (!l) throw kerfError('KERF_ERR_NETWORK_FILE', `no link between '${a.name}' and '${b.name}' in the network file`);
    // `deviceCodec` fixes the codec of the hop leaving the device (Pareto fronts); else the cheapest
    const fixed = deviceCodec !== undefined && kind === 'forward' && transfers.length === 0;
    const ch: HopChoice | null = fixed
      ? codecChoice(bytes, l.bytesPerS, block, a.codecs, b.codecs, deviceCodec)
      : chooseCodec(bytes, l.bytesPerS, block, a.codecs, b.codecs, codecPairs(a.codecs, b.codecs, kind === 'return' ? back : forward));
    if (!ch) throw kerfError('KERF_ERR_PLAN', `codec '${deviceCodec}' was not measured on the output of block ${block} by both '${a.name}' and '${b.name}'`);
    const s = hopLatencyS(l.rttS, ret) + ch.seconds;
    busy.push(ch.seconds);
    transfers.push({
      from: a.name, to: b.name, bytes, seconds: s, kind,
      ...codedHopFields(ch),
    });
    return s;
  };
  let transfer = 0;
  if (E) {
    transfer += hop(D, E, devOut, 'forward', dUsed ? r.x : -1);
    if (C) transfer += hop(E, C, edgeOut, 'forward', r.y);
  } else if (C) transfer += hop(D, C, devOut, 'forward', dUsed ? r.x : -1);
  // the result travels back along the chain (kerf's workers reply to their caller)
  const res = C ? C.out[L - 1]! : E ? E.out[L - 1]! : 0;
  let back2 = 0;
  if (ret && (E || C)) {
    if (C && E) back2 = hop(C, E, res, 'return', L - 1) + hop(E, D, res, 'return', L - 1);
    else back2 = hop((C ?? E)!, D, res, 'return', L - 1);
  }
  // Each tier in the path: its blocks plus its per-request terms (src/plan/cost.ts), as `evaluate` prices it.
  const ds = tierServiceS(dt, D.terms, 1, E || C ? devOut + res : 0, dUsed);
  const es = E ? tierServiceS(et, E.terms, 1, devOut + (C ? edgeOut + 2 * res : res)) : 0;
  const cs = C ? tierServiceS(ct, C.terms, 1, (E ? edgeOut : devOut) + res) : 0;
  const totalS = ds + es + cs + transfer + back2;
  const bottleneckS = Math.max(ds, es, cs, ...busy);
  const layers = (a: number, b: number): [number, number] => [problem.firstLayer[a]!, problem.lastLayer[b]!];
  const extra = (service: number, compute: number) => (service - compute > 0 ? { overheadS: service - compute } : {});
  const tiers: TierPlacement[] = [
    { tier: 'device', system: D.name, blocks: dUsed ? [0, r.x] : null, layers: dUsed ? layers(0, r.x) : null, computeS: dt, ...extra(ds, dt), sendsBytes: E || C ? devOut : 0 },
    { tier: 'edge', system: E ? E.name : null, blocks: E ? [r.x + 1, r.y] : null, layers: E ? layers(r.x + 1, r.y) : null, computeS: et, ...extra(es, et), sendsBytes: E && C ? edgeOut : 0 },
    { tier: 'cloud', system: C ? C.name : null, blocks: C ? [r.y + 1, L - 1] : null, layers: C ? layers(r.y + 1, L - 1) : null, computeS: ct, ...extra(cs, ct), sendsBytes: 0 },
  ];
  const boundaries: number[] = [];
  if (dUsed && (E || C)) boundaries.push(r.x);
  if (E && C) boundaries.push(r.y);
  const objective: PlanObjective = opts.objective ?? 'latency';
  return {
    rank,
    totalS,
    bottleneckS,
    objectiveS: objective === 'throughput' ? bottleneckS : totalS,
    bytesSent: devOut + edgeOut,
    cuts: boundaries.map((b) => problem.cutIds[b] ?? null),
    boundaries,
    tiers,
    transfers,
  };
}

/** Search and describe: the ranked placements, best first. */
export function rankPlacements(problem: PlanProblem, net: Network, criteria?: PlanCriteria, opts: PlanSearchOptions = {}): RankedPlacement[] {
  return searchPlacements(problem, net, criteria, opts).map((r, i) => describePlacement(problem, net, r, i + 1, opts));
}

/** Names of systems of `problem` that the network never mentions. */
export function systemsMissingFromNetwork(problem: PlanProblem, net: Network): { tier: PlanTier; name: string }[] {
  const known = new Set<string>();
  for (const l of net.links) { known.add(l.from); known.add(l.to); }
  const out: { tier: PlanTier; name: string }[] = [];
  for (const t of ['device', 'edge', 'cloud'] as const) for (const s of problem[t]) if (!known.has(s.name)) out.push({ tier: t, name: s.name });
  return out;
}
