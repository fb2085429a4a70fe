import { adjacency, firstLat, firstLink, reachTable } from './core.js';
import { backTime, better, checkStages, hopBusy, hopLat, type Inst, linkTime, score, type Score, type Seg, segFits, stageInBytes, stageOutBytes, stageTime } from './instance.js';

/**
 * Heuristic check for bottleneck T: the exact programme with the set of used nodes dropped,
 * so one state per (last node, blocks placed) keeps a single path (the least latency) and a
 * node already on that path is not used again. Polynomial: O(n · N · degree) per call.
 * A returned placement is valid; null does not prove that none exists.
 */
export function heuristicCheck(I: Inst, T: number, adj: Int32Array[]): Seg[] | null {
  // a missing link costs Infinity, which must fail even an unbounded T
  T = Math.min(T, Number.MAX_VALUE);
  const { n, N } = I;
  const W = (N + 31) >> 5;
  const jm = reachTable(I, T);
  const M = n + 1;
  const val = new Float64Array(N * M).fill(Infinity);
  const parV = new Int32Array(N * M).fill(-1);
  const parP = new Int32Array(N * M).fill(-1);
  const stages = new Int32Array(N * M);
  const path = new Uint32Array(N * M * W);
  // one sliding-window deque per node over entries (p, v, key)
  const dqP = new Int32Array(N * M);
  const dqV = new Int32Array(N * M);
  const dqK = new Float64Array(N * M);
  const order = new Int32Array(N);
  const head = new Int32Array(N);
  const tail = new Int32Array(N);
  const push = (w: number, p: number, v: number, k: number): void => {
    const base = w * M;
    let t = tail[w]!;
    while (t > head[w]! && dqK[base + t - 1]! >= k) t--;
    dqP[base + t] = p; dqV[base + t] = v; dqK[base + t] = k;
    tail[w] = t + 1;
  };
  for (let w = 0; w < N; w++) {
    const l0 = firstLink(I, w);
    if (l0 <= T && jm[w * n]! >= 0) push(w, 0, -1, firstLat(I, w) - I.pre[w]![0]! + I.wire[w]! * stageInBytes(I, w, 0));
  }
  for (let q = 1; q <= n; q++) {
    for (let w = 0; w < N; w++) {
      const base = w * M;
      let h = head[w]!;
      const t = tail[w]!;
      while (h < t && jm[w * n + dqP[base + h]!]! + 1 < q) h++;
      head[w] = h;
      // jm bounds compute only: the first entry whose stage time with wire CPU fits T
      let x = h;
      if (I.wire[w]! > 0) while (x < t && stageTime(I, w, dqP[base + x]!, q - 1) > T) x++;
      if (x === t) continue;
      const p = dqP[base + x]!, v = dqV[base + x]!;
      const s = w * M + q;
      val[s] = dqK[base + x]! + I.pre[w]![q]! + I.stageFixed[w]! + I.wire[w]! * stageOutBytes(I, w, q - 1);
      parV[s] = v; parP[s] = p;
      if (v >= 0) {
        const from = (v * M + p) * W;
        for (let k = 0; k < W; k++) path[s * W + k] = path[from + k]!;
        stages[s] = stages[v * M + p]! + 1;
      } else stages[s] = 1;
      path[s * W + (w >> 5)]! |= 1 << (w & 31);
    }
    if (q === n) break;
    const bytes = I.out[q - 1]!;
    // for each next node w a predecessor of low latency: scan the reached v in order of
    // latency and stop once a v's latency alone is no better than w's best so far
    let R = 0;
    for (let v = 0; v < N; v++) {
      const s = v * M + q;
      // a v whose fastest link cannot carry this cut within T sends nowhere
      if (val[s] !== Infinity && stages[s]! < I.maxStages && adj[v]!.length > 0 && bytes / I.maxRatio / I.bw[v * N + adj[v]![0]!]! <= T) order[R++] = v;
    }
    if (R === 0) continue;
    const ord = order.subarray(0, R).sort((x, y) => val[x * M + q]! - val[y * M + q]!);
    for (let w = 0; w < N; w++) {
      if (jm[w * n + q]! < q) continue;
      let bk = Infinity, bv = -1, extra = 4;
      for (let r = 0; r < R; r++) {
        const v = ord[r]!;
        const s = v * M + q;
        // after the first allowed v, look at a few more only: the exact least-latency choice
        // would cost N² per block and is a heuristic's tie-break anyway
        if (val[s]! >= bk || (bv >= 0 && extra-- <= 0)) break;
        const b = I.bw[v * N + w]!;
        if (b === 0 || bytes / I.maxRatio / b > T || ((path[s * W + (w >> 5)]! >>> (w & 31)) & 1)) continue;
        if (hopBusy(I, v, w, bytes, q - 1) > T) continue;
        const k = val[s]! + hopLat(I, v, w, bytes, q - 1);
        if (k < bk) { bk = k; bv = v; }
      }
      if (bv >= 0) push(w, q, bv, bk - I.pre[w]![q]! + I.wire[w]! * stageInBytes(I, w, q));
    }
  }
  let bestV = -1, bestT = Infinity;
  for (let v = 0; v < N; v++) {
    const s = v * M + n;
    if (val[s] === Infinity) continue;
    // the result's way back is priced on every hop already
    const tot = val[s]!;
    if (tot < bestT) { bestT = tot; bestV = v; }
  }
  if (bestV < 0) return null;
  const segs: Seg[] = [];
  let v = bestV, q = n;
  while (v >= 0) {
    const s = v * M + q;
    const p = parP[s]!;
    segs.push({ node: v, first: p, last: q - 1 });
    v = parV[s]!; q = p;
  }
  return segs.reverse();
}

/**
 * Scalable solver: binary search on the bottleneck with the heuristic check, seeded by the
 * given placements, then local search (move boundaries, change, swap, split and merge nodes).
 * Never returns worse than its best seed.
 */
export function solveScalable(I: Inst, seeds: (Seg[] | null)[], lb: number): Seg[] | null {
  const adj = adjacency(I);
  let best: Seg[] | null = null;
  let bestScore: Score | null = null;
  const offer = (s: Seg[] | null): void => {
    if (!s || checkStages(I, s) !== null) return;
    const sc = score(I, s);
    if (sc.bottleneck === Infinity) return;
    if (!bestScore || better(sc, bestScore)) { best = s; bestScore = sc; }
  };
  for (const s of seeds) offer(s);
  if (!best) offer(heuristicCheck(I, Infinity, adj));
  if (!best) return null;
  // bisection on the bottleneck; a success lowers hi to the bottleneck actually reached
  let lo = lb;
  let hi = bestScore!.bottleneck;
  for (let it = 0; it < 40 && hi > lo * (1 + 1e-3); it++) {
    const mid = lo > 0 ? Math.max((lo + hi) / 2, lo * (1 + 1e-7)) : hi / 2;
    const r = heuristicCheck(I, mid, adj);
    if (r) { offer(r); hi = bestScore!.bottleneck; } else lo = mid;
  }
  // a heuristic "no" can hide feasible T; the one at the found bottleneck is re-run for latency
  offer(heuristicCheck(I, bestScore!.bottleneck, adj));
  return improve(I, best!);
}

/** Local search on (bottleneck, latency). */
export function improve(I: Inst, start: Seg[], maxRounds = 60): Seg[] {
  let cur = start.map((s) => ({ ...s }));
  let cs = score(I, cur);
  const { N } = I;
  const tryIt = (cand: Seg[]): boolean => {
    if (checkStages(I, cand) !== null) return false;
    const sc = score(I, cand);
    if (better(sc, cs)) { cur = cand; cs = sc; return true; }
    return false;
  };
  for (let round = 0; round < maxRounds; round++) {
    let improved = false;
    // 1. move each boundary to its best position
    for (let k = 0; k + 1 < cur.length; k++) {
      const cut = bestBoundary(I, cur, k);
      if (cut >= 0) {
        const cand = cur.slice();
        cand[k] = { ...cur[k]!, last: cut };
        cand[k + 1] = { ...cur[k + 1]!, first: cut + 1 };
        if (tryIt(cand)) improved = true;
      }
    }
    const used = new Set(cur.map((s) => s.node));
    // on long pipelines only the stages at the bottleneck are worth moving
    const focus = cur.length * N > 2000 ? new Set(splitTargets(I, cur)) : null;
    // 2. move a stage to an unused node
    for (let k = 0; k < cur.length; k++) {
      if (focus && !focus.has(k)) continue;
      for (let u = 0; u < N; u++) {
        if (used.has(u) || !segFits(I, u, cur[k]!.first, cur[k]!.last)) continue;
        const cand = cur.slice();
        cand[k] = { ...cur[k]!, node: u };
        if (tryIt(cand)) { improved = true; break; }
      }
      used.clear(); for (const st of cur) used.add(st.node);
    }
    // 3. swap the nodes of two stages
    for (let k = 0; k < cur.length; k++) {
      for (let l = k + 1; l < cur.length; l++) {
        if (focus && !focus.has(k) && !focus.has(l)) continue;
        const cand = cur.slice();
        cand[k] = { ...cur[k]!, node: cur[l]!.node };
        cand[l] = { ...cur[l]!, node: cur[k]!.node };
        if (tryIt(cand)) improved = true;
      }
    }
    // 4. split the bottleneck stage (or a stage beside the bottleneck link) onto an unused node
    if (cur.length < I.maxStages) {
      used.clear(); for (const s of cur) used.add(s.node);
      const targets = splitTargets(I, cur);
      outer: for (const k of targets) {
        const s = cur[k]!;
        if (s.first === s.last) continue;
        const cuts = splitCuts(I, s);
        for (let u = 0; u < N; u++) {
          if (used.has(u)) continue;
          for (const cut of cuts) {
            const left = { node: s.node, first: s.first, last: cut };
            const right = { node: u, first: cut + 1, last: s.last };
            const c1 = [...cur.slice(0, k), left, right, ...cur.slice(k + 1)];
            if (tryIt(c1)) { improved = true; break outer; }
            const c2 = [...cur.slice(0, k), { ...left, node: u }, { ...right, node: s.node }, ...cur.slice(k + 1)];
            if (tryIt(c2)) { improved = true; break outer; }
          }
        }
      }
    }
    // 5. merge two neighbouring stages onto one of their nodes
    for (let k = 0; k + 1 < cur.length; k++) {
      const a = cur[k]!, b = cur[k + 1]!;
      for (const node of [a.node, b.node]) {
        const cand = [...cur.slice(0, k), { node, first: a.first, last: b.last }, ...cur.slice(k + 2)];
        if (tryIt(cand)) { improved = true; break; }
      }
    }
    if (!improved) break;
  }
  return cur;
}

/**
 * The best position for the boundary between stages k and k+1 (the last block of stage k),
 * or -1 when the current one is best. Only the two stages and the link between them change,
 * so each position costs O(1) against the maxima of the fixed parts.
 */
function bestBoundary(I: Inst, segs: Seg[], k: number): number {
  const K = segs.length;
  const a = segs[k]!, b = segs[k + 1]!;
  // the largest stage or link time other than stage k, link k and stage k+1
  let rest = 0, restLat = 0;
  const add = (t: number, counts: boolean): void => { restLat += t; if (counts && t > rest) rest = t; };
  if (I.entry >= 0) {
    const v = segs[0]!.node;
    if (v !== I.entry) add(I.gateway, !I.comm);
    restLat += hopLat(I, I.entry, v, I.inputBytes);
    rest = Math.max(rest, hopBusy(I, I.entry, v, I.inputBytes));
  }
  for (let i = 0; i < K; i++) {
    const s = segs[i]!;
    if (i !== k && i !== k + 1) add(stageTime(I, s.node, s.first, s.last), !I.comm);
    if (i + 1 < K && i !== k) {
      const to = segs[i + 1]!.node;
      restLat += hopLat(I, s.node, to, I.out[s.last]!, s.last);
      rest = Math.max(rest, hopBusy(I, s.node, to, I.out[s.last]!, s.last));
    }
  }
  const back = backTime(I, a.node, b.node);
  let bestCut = -1;
  let bestB = Infinity, bestL = Infinity;
  for (let cut = a.first; cut < b.last; cut++) {
    if (!segFits(I, a.node, a.first, cut) || !segFits(I, b.node, cut + 1, b.last)) continue;
    const ca = stageTime(I, a.node, a.first, cut);
    const cb = stageTime(I, b.node, cut + 1, b.last);
    const l = linkTime(I, a.node, b.node, I.out[cut]!, cut);
    const bn = Math.max(rest, l, back, I.comm ? 0 : Math.max(ca, cb));
    const lat = restLat + ca + cb + hopLat(I, a.node, b.node, I.out[cut]!, cut);
    const tol = 1e-12 * Math.max(1, bestB);
    if (bn < bestB - tol || (bn <= bestB + tol && lat < bestL)) { bestB = bn; bestL = lat; bestCut = cut; }
  }
  return bestCut === a.last ? -1 : bestCut;
}

/** Stages worth splitting: the slowest compute stage and the stages around the slowest link. */
function splitTargets(I: Inst, segs: Seg[]): number[] {
  let kc = 0, bc = -1;
  for (let k = 0; k < segs.length; k++) {
    const c = stageTime(I, segs[k]!.node, segs[k]!.first, segs[k]!.last);
    if (c > bc) { bc = c; kc = k; }
  }
  const out = new Set<number>([kc]);
  let kl = -1, bl = -1;
  for (let k = 0; k + 1 < segs.length; k++) {
    const to = segs[k + 1]!.node;
    const t = hopBusy(I, segs[k]!.node, to, I.out[segs[k]!.last]!, segs[k]!.last);
    if (t > bl) { bl = t; kl = k; }
  }
  if (kl >= 0) { out.add(kl); if (kl + 1 < segs.length) out.add(kl + 1); }
  return [...out];
}

/** Cut positions inside a stage to try when splitting it: all when few, else the
 * compute-balanced point and its neighbours plus the cuts with the smallest transfers. */
function splitCuts(I: Inst, s: Seg): number[] {
  const all: number[] = [];
  for (let c = s.first; c < s.last; c++) all.push(c);
  if (all.length <= 24) return all;
  const p = I.pre[s.node]!;
  const half = (p[s.first]! + p[s.last + 1]!) / 2;
  let mid = s.first;
  while (mid < s.last - 1 && p[mid + 1]! < half) mid++;
  const pick = new Set<number>();
  for (let d = -2; d <= 2; d++) if (mid + d >= s.first && mid + d < s.last) pick.add(mid + d);
  const bySize = all.slice().sort((a, b) => I.out[a]! - I.out[b]!);
  for (let i = 0; i < 8; i++) pick.add(bySize[i]!);
  return [...pick];
}
