import { candidates, firstLat, firstLink, reachTable } from './core.js';
import { hopBusy, hopLat, type Inst, score, type Seg, stageTime } from './instance.js';

/** Exact solvers handle at most this many nodes (subsets are integers below 2^53). */
export const EXACT_MAX_NODES = 52;

const P2 = Array.from({ length: 53 }, (_, i) => 2 ** i);
/** whether node w is in subset S (S an integer below 2^53) */
function has(S: number, w: number): boolean {
  return w < 32 ? ((S >> w) & 1) === 1 : Math.floor(S / P2[w]!) % 2 === 1;
}

interface State { S: number; v: number; val: Float64Array; par: Int32Array }

export interface Budget {
  shouldStop?: () => boolean;
  maxWork: number;
  work: number;
  stopped: boolean;
}

function spend(b: Budget, w: number): boolean {
  const before = b.work;
  b.work += w;
  if (b.work > b.maxWork) { b.stopped = true; return false; }
  if (b.shouldStop && Math.floor(before / 65536) !== Math.floor(b.work / 65536) && b.shouldStop()) { b.stopped = true; return false; }
  return true;
}

/**
 * Dynamic programme over (set of used nodes S, last node v, blocks placed q): the least
 * latency of a pipeline whose every stage and link stays within T. Exact: nodes are distinct
 * by construction, and for a fixed (S, v, w) the best predecessor of every q comes from a
 * sliding-window minimum (segment ends that fit w grow with the segment start).
 * Returns the min-latency placement within T, null when none exists, 'stopped' when the
 * budget ran out.
 */
export function exactCheck(I: Inst, T: number, budget: Budget): Seg[] | null | 'stopped' {
  // a missing link costs Infinity, which must fail even an unbounded T
  T = Math.min(T, Number.MAX_VALUE);
  const { n, N } = I;
  const jm = reachTable(I, T);
  // a layer maps a subset S to its states by last node
  type Layer = Map<number, (State | undefined)[]>;
  let layer: Layer = new Map();
  const layers: Layer[] = [];
  const states = function* (L: Layer): Generator<State> {
    for (const row of L.values()) for (const st of row) if (st) yield st;
  };
  const get = (L: Layer, S: number, v: number): State => {
    let row = L.get(S);
    if (!row) { row = new Array<State | undefined>(N); L.set(S, row); }
    let st = row[v];
    if (!st) {
      st = { S, v, val: new Float64Array(n + 1).fill(Infinity), par: new Int32Array(n + 1).fill(-1) };
      row[v] = st;
    }
    return st;
  };
  for (let w = 0; w < N; w++) {
    const l0 = firstLink(I, w);
    const e = jm[w * n]!;
    if (l0 > T || e < 0) continue;
    const st = get(layer, P2[w]!, w);
    const base = firstLat(I, w);
    for (let q = 1; q <= e + 1; q++) {
      const t = stageTime(I, w, 0, q - 1);
      if (t <= T) st.val[q] = base + t;
    }
  }
  const dqP = new Int32Array(n + 1);
  const dqKey = new Float64Array(n + 1);
  let best: { st: State; total: number; layer: number } | null = null;
  for (let k = 1; layer.size > 0; k++) {
    layers.push(layer);
    for (const st of states(layer)) {
      if (st.val[n]! < Infinity) {
        // the result's way back is priced on every hop already
        const total = st.val[n]!;
        if (!best || total < best.total) best = { st, total, layer: k - 1 };
      }
    }
    if (k >= I.maxStages) break;
    const next: Layer = new Map();
    for (const st of states(layer)) {
      const { S, v, val } = st;
      let any = false;
      for (let q = 1; q < n; q++) if (val[q]! < Infinity) { any = true; break; }
      if (!any) continue;
      for (let w = 0; w < N; w++) {
        if (has(S, w) || I.bw[v * N + w] === 0) continue;
        if (I.wire[w]! > 0) {
          // wire CPU makes a stage's time depend on the bytes at both of its ends, so the
          // feasible starts of an end are no window: try every start the memory and compute
          // window (jm) allows, each checked with its exact stage time
          let target: State | null = null;
          for (let q = 2; q <= n; q++) {
            let bestK = Infinity, bestP = -1;
            for (let p = q - 1; p >= 1; p--) {
              if (jm[w * n + p]! + 1 < q) break; // jm is non-decreasing in p
              if (val[p]! === Infinity) continue;
              const bytes = I.out[p - 1]!;
              if (hopBusy(I, v, w, bytes, p - 1) > T) continue;
              const t = stageTime(I, w, p, q - 1);
              if (t > T) continue;
              const kk = val[p]! + hopLat(I, v, w, bytes, p - 1) + t;
              if (kk < bestK) { bestK = kk; bestP = p; }
            }
            if (!spend(budget, q)) return 'stopped';
            if (bestP < 0) continue;
            target ??= get(next, S + P2[w]!, w);
            if (bestK < target.val[q]!) { target.val[q] = bestK; target.par[q] = bestP * 64 + v; }
          }
          continue;
        }
        if (!spend(budget, n)) return 'stopped';
        const pw = I.pre[w]!;
        let head = 0, tail = 0;
        let target: State | null = null;
        for (let q = 1; q <= n; q++) {
          const p = q - 1;
          if (p >= 1 && val[p]! < Infinity) {
            const e = jm[w * n + p]!;
            if (e >= p) {
              const bytes = I.out[p - 1]!;
              if (hopBusy(I, v, w, bytes, p - 1) <= T) {
                const kk = val[p]! + hopLat(I, v, w, bytes, p - 1) - pw[p]!;
                while (tail > head && dqKey[tail - 1]! >= kk) tail--;
                dqP[tail] = p; dqKey[tail] = kk; tail++;
              }
            }
          }
          while (tail > head && jm[w * n + dqP[head]!]! + 1 < q) head++;
          if (tail > head) {
            const nv = dqKey[head]! + pw[q]! + I.stageFixed[w]!;
            target ??= get(next, S + P2[w]!, w);
            if (nv < target.val[q]!) { target.val[q] = nv; target.par[q] = dqP[head]! * 64 + v; }
          }
        }
      }
    }
    layer = next;
  }
  if (!best) return null;
  // walk the parents back
  const segs: Seg[] = [];
  let st = best.st;
  let q = n;
  for (let k = best.layer; ; k--) {
    const par = st.par[q]!;
    if (par < 0) { segs.push({ node: st.v, first: 0, last: q - 1 }); break; }
    const p = par >> 6;
    const v = par & 63;
    segs.push({ node: st.v, first: p, last: q - 1 });
    st = layers[k - 1]!.get(st.S - P2[st.v]!)![v]!;
    q = p;
  }
  return segs.reverse();
}

export interface ExactResult {
  segs: Seg[] | null;
  /** true when `segs` is proven optimal (or proven that none exists, segs = null) */
  optimal: boolean;
  /** proven lower bound on the optimal bottleneck */
  lower: number;
  work: number;
}

/**
 * Binary search on the bottleneck over the candidate values, each step an exact check.
 * `seed` (a known feasible placement) and `lb` (a proven lower bound) narrow the search.
 * Stops with its best and the proven bound when the budget runs out.
 */
export function solveExact(I: Inst, seed: Seg[] | null, lb: number, budget: Budget): ExactResult {
  let best = seed;
  let hi = seed ? score(I, seed).bottleneck : Infinity;
  let fromSeed = seed !== null;
  // opt > loEx (strict) once a check fails at loEx; opt >= lb always
  let loEx = -Infinity;
  const lower = (): number => Math.max(lb, loEx);
  if (!best) {
    const r = exactCheck(I, Infinity, budget);
    if (r === 'stopped') return { segs: null, optimal: false, lower: lb, work: budget.work };
    if (r === null) return { segs: null, optimal: true, lower: Infinity, work: budget.work };
    best = r; hi = score(I, r).bottleneck; fromSeed = false;
  }
  const accept = (r: Seg[]): void => { best = r; hi = score(I, r).bottleneck; fromSeed = false; };
  for (;;) {
    // the optimum is a candidate value in [lb, hi]; test lb itself once
    const lo = Math.max(lb, loEx);
    const c = candidates(I, loEx >= lb ? loEx : lb - Math.max(1e-300, lb * 1e-15), hi, 100_000);
    if (c.count === 0) break;
    if (c.values) {
      const v = c.values;
      let a = 0, b = v.length;
      let stopped = false;
      while (a < b) {
        const m = (a + b) >> 1;
        const r = exactCheck(I, v[m]!, budget);
        if (r === 'stopped') { stopped = true; break; }
        if (r === null) { loEx = v[m]!; a = m + 1; } else {
          accept(r);
          b = m;
          while (b > a && v[b - 1]! >= hi) b--;
        }
      }
      if (stopped) return { segs: best, optimal: false, lower: loEx >= lb ? Math.min(hi, nextAbove(v, loEx)) : lb, work: budget.work };
      break;
    }
    const mid = (Math.max(lo, 0) + hi) / 2;
    const r = exactCheck(I, mid, budget);
    if (r === 'stopped') return { segs: best, optimal: false, lower: lower(), work: budget.work };
    if (r === null) loEx = mid; else accept(r);
  }
  if (fromSeed) {
    // the seed may be optimal in bottleneck but not in latency: one full check at hi
    const r = exactCheck(I, hi, budget);
    if (r !== 'stopped' && r !== null) best = r;
    if (r === 'stopped') return { segs: best, optimal: true, lower: hi, work: budget.work };
  }
  return { segs: best, optimal: true, lower: hi, work: budget.work };
}

function nextAbove(v: Float64Array, x: number): number {
  for (let i = 0; i < v.length; i++) if (v[i]! > x) return v[i]!;
  return x;
}
