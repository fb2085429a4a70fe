import { backTime, hopBusy, hopLat, type Inst, linkTime, segComp, segFits, stageTime } from './instance.js';

/**
 * For bottleneck T: jm[w*n + s] = the last block j such that blocks s..j fit node w's memory
 * and (objective throughput) compute within T on w; s - 1 when not even block s does.
 * Non-decreasing in s for each w, which the sliding windows of the solvers rely on.
 * Wire CPU is left out (it depends on the bytes at both ends, not monotone in j): a stage
 * within jm may still exceed T by its wire CPU, which the solvers check with `stageTime`.
 */
export function reachTable(I: Inst, T: number): Int32Array {
  const { n, N } = I;
  const jm = new Int32Array(N * n);
  const useComp = !I.comm && T !== Infinity;
  for (let w = 0; w < N; w++) {
    let j = -1;
    for (let s = 0; s < n; s++) {
      if (j < s - 1) j = s - 1;
      while (j + 1 < n && segFits(I, w, s, j + 1) && (!useComp || segComp(I, w, s, j + 1) <= T)) j++;
      jm[w * n + s] = j;
    }
  }
  return jm;
}

/** What must stay within a bottleneck when w runs the first stage: the entry hop's busy time
 * both ways and, when the entry runs no stage, its gateway; Infinity when w cannot be first. */
export function firstLink(I: Inst, w: number): number {
  if (I.entry < 0) return 0;
  const l = hopBusy(I, I.entry, w, I.inputBytes);
  return w === I.entry ? l : Math.max(l, I.gateway);
}

/** Seconds the start adds to the latency when w runs the first stage: the gateway (when the
 * entry runs no stage) and the entry hop both ways. */
export function firstLat(I: Inst, w: number): number {
  if (I.entry < 0 || w === I.entry) return 0;
  return I.gateway + hopLat(I, I.entry, w, I.inputBytes);
}

/** Adjacency: for each v, the nodes w with a direct link v → w, fastest link first, so a
 * scan for links within T can stop at the first whose bytes ÷ bandwidth alone exceeds T. */
export function adjacency(I: Inst): Int32Array[] {
  const adj: Int32Array[] = [];
  for (let v = 0; v < I.N; v++) {
    const a: number[] = [];
    for (let w = 0; w < I.N; w++) if (w !== v && I.bw[v * I.N + w]! > 0) a.push(w);
    a.sort((x, y) => I.bw[v * I.N + y]! - I.bw[v * I.N + x]!);
    adj.push(Int32Array.from(a));
  }
  return adj;
}

/**
 * Every value the bottleneck can take is a stage's time on a node or one link's
 * transfer time. Collect those strictly between lo and hi (sorted, deduplicated), or return
 * their count alone when more than `limit`. `wire` false: stage times without wire CPU (the
 * values of the walk relaxation, which ignores it).
 */
export function candidates(I: Inst, lo: number, hi: number, limit: number, wire = true): { count: number; values: Float64Array | null } {
  const { n, N } = I;
  const jmMem = reachTable(I, Infinity);
  let count = 0;
  const inRange = (x: number): boolean => x > lo && x < hi;
  // compute values: for each (w, s) they grow with j, so count by binary search
  const ranges: number[] = [];
  const wired: number[] = [];
  if (!I.comm) {
    for (let w = 0; w < N; w++) {
      for (let s = 0; s < n; s++) {
        const jEnd = jmMem[w * n + s]!;
        if (jEnd < s) continue;
        if (wire && I.wire[w]! > 0) {
          // with wire CPU a stage's time is not monotone in j: take every end
          for (let j = s; j <= jEnd; j++) {
            const t = stageTime(I, w, s, j);
            if (inRange(t)) { count++; if (count <= limit) wired.push(t); }
          }
          continue;
        }
        // first j with comp > lo, first j with comp >= hi
        let a = s, b = jEnd + 1;
        while (a < b) { const m = (a + b) >> 1; if (segComp(I, w, s, m) > lo) b = m; else a = m + 1; }
        const j0 = a;
        a = j0; b = jEnd + 1;
        while (a < b) { const m = (a + b) >> 1; if (segComp(I, w, s, m) >= hi) b = m; else a = m + 1; }
        if (a > j0) { count += a - j0; ranges.push(w, s, j0, a); }
      }
    }
  }
  const links: number[] = [];
  for (let v = 0; v < N; v++) {
    for (let w = 0; w < N; w++) {
      if (v === w || I.bw[v * N + w] === 0) continue;
      for (let p = 1; p < n; p++) {
        const t = linkTime(I, v, w, I.out[p - 1]!, p - 1);
        if (inRange(t)) { count++; if (count <= limit) links.push(t); }
      }
      const b = backTime(I, v, w);
      if (inRange(b)) { count++; if (count <= limit) links.push(b); }
    }
  }
  if (I.entry >= 0) {
    if (inRange(I.gateway)) { count++; links.push(I.gateway); }
    for (let w = 0; w < N; w++) {
      const a = linkTime(I, I.entry, w, I.inputBytes);
      if (inRange(a)) { count++; links.push(a); }
    }
  }
  if (count > limit) return { count, values: null };
  const vals = new Float64Array(count);
  let k = 0;
  for (let r = 0; r < ranges.length; r += 4) {
    const w = ranges[r]!, s = ranges[r + 1]!, j0 = ranges[r + 2]!, j1 = ranges[r + 3]!;
    for (let j = j0; j < j1; j++) vals[k++] = segComp(I, w, s, j);
  }
  for (const t of links) vals[k++] = t;
  for (const t of wired) vals[k++] = t;
  vals.sort();
  let u = 0;
  for (let i = 0; i < vals.length; i++) if (i === 0 || vals[i] !== vals[u - 1]) vals[u++] = vals[i]!;
  return { count: u, values: vals.slice(0, u) };
}

/**
 * Relaxation of the placement problem: a walk of linked nodes (a node may come back after
 * others) whose stages and links all stay within T. Every real placement is such a walk, so
 * "no walk within T" proves the optimum exceeds T. Returns the furthest number of blocks any
 * walk places (n when feasible).
 */
export function relaxedReach(I: Inst, T: number, jm: Int32Array, adj: Int32Array[]): number {
  // a missing link costs Infinity, which must fail even an unbounded T
  T = Math.min(T, Number.MAX_VALUE);
  const { n, N } = I;
  const reach = new Uint8Array(N * (n + 1));
  const until = new Int32Array(N).fill(-1);
  let furthest = 0;
  for (let w = 0; w < N; w++) {
    if (firstLink(I, w) <= T && jm[w * n]! >= 0) until[w] = Math.max(until[w]!, jm[w * n]! + 1);
  }
  for (let q = 1; q <= n; q++) {
    for (let w = 0; w < N; w++) {
      if (until[w]! >= q) { reach[w * (n + 1) + q] = 1; furthest = q; }
    }
    if (q === n) break;
    const bytes = I.out[q - 1]!;
    for (let v = 0; v < N; v++) {
      if (!reach[v * (n + 1) + q]) continue;
      const a = adj[v]!;
      for (let k = 0; k < a.length; k++) {
        const w = a[k]!;
        if (bytes / I.maxRatio / I.bw[v * N + w]! > T) break;
        const e = jm[w * n + q]!;
        if (e + 1 <= until[w]!) continue;
        if (e >= q && hopBusy(I, v, w, bytes, q - 1) <= T) until[w] = e + 1;
      }
    }
  }
  for (let v = 0; v < N; v++) {
    if (reach[v * (n + 1) + n]) return n;
  }
  return furthest === n ? n - 1 : furthest;
}

/** Compute-capacity bound: the busiest of K stages carries at least total work / total speed. */
export function computeBound(I: Inst): number {
  if (I.comm) return 0;
  const { n, N } = I;
  const ref = I.model.blocks.map((b) => b.seconds);
  let W = 0;
  for (const x of ref) W += x;
  if (W === 0) return 0;
  const R: number[] = [];
  for (let j = 0; j < N; j++) {
    let r = 0;
    for (let i = 0; i < n; i++) {
      const c = I.pre[j]![i + 1]! - I.pre[j]![i]!;
      if (ref[i]! > 0) r = Math.max(r, c > 0 ? ref[i]! / c : Infinity);
    }
    R.push(r);
  }
  R.sort((a, b) => b - a);
  let S = 0;
  for (let k = 0; k < I.maxStages && k < R.length; k++) S += R[k]!;
  return S === Infinity ? 0 : W / S;
}

/**
 * A proven lower bound on the optimal bottleneck: the larger of the compute-capacity bound and
 * the optimum of the walk relaxation (found exactly over candidate values when they are few,
 * else by bisection, which keeps the largest value proven infeasible).
 */
export function lowerBound(I: Inst): number {
  const adj = adjacency(I);
  const cb = computeBound(I);
  const feasible = (T: number): boolean => relaxedReach(I, T, reachTable(I, T), adj) === I.n;
  if (!feasible(Infinity)) return Infinity;
  let lo = cb; // relaxation optimum > lo is not yet known; test lo itself first
  if (feasible(lo)) return lo;
  // find some feasible hi
  let hi = Math.max(lo * 2, 1e-9);
  while (!feasible(hi)) { lo = hi; hi *= 2; if (hi > 1e12) return lo; }
  // listing candidates costs N²·n; on large instances bisect instead (to 0.01%, keeping the
  // largest value proven infeasible, so the bound stays valid)
  const c = I.N * I.N * I.n <= 4e6 ? candidates(I, lo, hi, 200_000, false) : { count: Infinity, values: null };
  if (c.values) {
    const v = c.values;
    let a = 0, b = v.length; // answer among v[a..b) or hi
    while (a < b) {
      const m = (a + b) >> 1;
      if (feasible(v[m]!)) b = m; else a = m + 1;
    }
    return a < v.length ? v[a]! : hi;
  }
  for (let it = 0; it < 40 && hi - lo > 1e-4 * hi; it++) {
    const m = (lo + hi) / 2;
    if (feasible(m)) hi = m; else lo = m;
  }
  return lo;
}
