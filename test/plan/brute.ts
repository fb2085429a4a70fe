/**
 * A naive reference planner for property tests: enumerates every scenario the way
 * scission_predict.py does (all system triples × all splits, de-duplicated by config),
 * sums block times one by one and checks each criterion literally. Slow on purpose.
 */
import { findNetworkLink } from '../../src/plan/network.js';
import type { Network, PlanCriteria, PlanProblem, PlanSearchOptions, TierCriteria } from '../../src/plan/types.js';

export interface BruteResult { value: number; d: number; e: number; c: number; x: number; y: number }

function inRange(n: number, lo: number, hi: number): boolean { return n >= lo && n <= hi; }

function tierPasses(t: TierCriteria | undefined, name: string | null, used: boolean, lo: number, hi: number): boolean {
  if (!t) return true;
  if (t.includeSystems.length && !(used && name !== null && t.includeSystems.includes(name))) return false;
  if (t.excludeSystems.length && !(used && name !== null && !t.excludeSystems.includes(name))) return false;
  const [a, b] = used ? [lo, hi] : [-1, -1];
  for (const n of t.includeLayers) if (!inRange(n, a, b)) return false;
  for (const n of t.excludeLayers) if (inRange(n, a, b)) return false;
  return true;
}

export function bruteForce(p: PlanProblem, net: Network, crit: PlanCriteria | undefined, opts: PlanSearchOptions): BruteResult[] {
  const L = p.blocks;
  const K = opts.topK ?? 5;
  const res: BruteResult[] = [];
  const seen = new Set<string>();
  const sum = (a: Float64Array, i: number, j: number): number => { let t = 0; for (let k = i; k <= j; k++) t += a[k]!; return t; };
  const edges = p.edge.length ? p.edge.map((_, i) => i) : [-1];
  const clouds = p.cloud.length ? p.cloud.map((_, i) => i) : [-1];
  for (let d = 0; d < p.device.length; d++) for (const e0 of edges) for (const c0 of clouds) {
    for (let x = -1; x < L; x++) for (let yy = -1; yy < L; yy++) {
      if (!(yy > x || yy === -1)) continue;
      const z = x !== L - 1 && yy !== L - 1 ? L - 1 : -1;
      const eUsed = yy !== -1;
      const cUsed = z !== -1;
      if ((eUsed && e0 < 0) || (cUsed && c0 < 0)) continue;
      const e = eUsed ? e0 : -1;
      const c = cUsed ? c0 : -1;
      const y = eUsed ? yy : x;
      const key = `${d}|${e}|${c}|${x}|${y}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const D = p.device[d]!, E = eUsed ? p.edge[e]! : null, C = cUsed ? p.cloud[c]! : null;
      const dt = x >= 0 ? sum(D.time, 0, x) : 0;
      const et = E ? sum(E.time, x + 1, y) : 0;
      const ct = C ? sum(C.time, y + 1, L - 1) : 0;
      let devOut = x >= 0 ? D.out[x]! : p.inputBytes;
      let edgeOut = E ? E.out[y]! : 0;
      if (opts.scissionQuirks) {
        if (et === 0 && ct === 0) devOut = 0; else if (ct === 0) edgeOut = 0;
      } else {
        if (!E && !C) devOut = 0;
        if (!C) edgeOut = 0;
      }
      const tpt = dt + et + ct;
      const lay = (a: number, b: number): [number, number] => [p.firstLayer[a]!, p.lastLayer[b]!];
      if (!tierPasses(crit?.device, D.name, x >= 0, ...(x >= 0 ? lay(0, x) : [-1, -1] as [number, number]))) continue;
      if (!tierPasses(crit?.edge, E?.name ?? null, !!E, ...(E ? lay(x + 1, y) : [-1, -1] as [number, number]))) continue;
      if (!tierPasses(crit?.cloud, C?.name ?? null, !!C, ...(C ? lay(y + 1, L - 1) : [-1, -1] as [number, number]))) continue;
      if (crit?.device.maxUploadBytes !== undefined && !(devOut <= crit.device.maxUploadBytes)) continue;
      if (crit?.edge.maxUploadBytes !== undefined && !(edgeOut <= crit.edge.maxUploadBytes)) continue;
      const tl = (t: TierCriteria | undefined, v: number): boolean =>
        !t || ((t.maxTimeS === undefined || v <= t.maxTimeS) && (t.maxTimePct === undefined || (v / tpt) * 100 <= t.maxTimePct));
      if (!tl(crit?.device, dt) || !tl(crit?.edge, et) || !tl(crit?.cloud, ct)) continue;
      if ((crit?.minDeviceBlocks ?? 0) > x + 1) continue;
      const mem = (t: TierCriteria | undefined, s: { mem: Float64Array } | null, a: number, b: number): boolean =>
        !t || t.maxMemoryBytes === undefined || !s || sum(s.mem, a, b) <= t.maxMemoryBytes;
      if (!(x < 0 || mem(crit?.device, D, 0, x)) || !mem(crit?.edge, E, x + 1, y) || !mem(crit?.cloud, C, y + 1, L - 1)) continue;
      // A hop's round trip is paid once per request: all on the way out (Scission), or half out
      // and half back when the result's return (back along the chain) is priced.
      const hops: number[] = [];
      const busy: number[] = [];
      const ret = opts.returnResult ?? false;
      const hop = (a: string, b: string, bytes: number): boolean => {
        const l = findNetworkLink(net, a, b);
        if (!l) return false;
        hops.push((ret ? l.rttS / 2 : l.rttS) + bytes / l.bytesPerS);
        busy.push(bytes / l.bytesPerS);
        return true;
      };
      let ok = true;
      if (E) { ok = hop(D.name, E.name, devOut) && (!C || hop(E.name, C.name, edgeOut)); } else if (C) ok = hop(D.name, C.name, devOut);
      if (ok && ret && (E || C)) {
        const res = (C ?? E)!.out[L - 1]!;
        if (C && E) ok = hop(C.name, E.name, res) && hop(E.name, D.name, res);
        else ok = hop((C ?? E)!.name, D.name, res);
      }
      if (!ok) continue;
      const value = opts.objective === 'throughput' ? Math.max(dt, et, ct, ...busy) : tpt + hops.reduce((s, h) => s + h, 0);
      res.push({ value, d, e, c, x, y });
    }
  }
  res.sort((a, b) => a.value - b.value || a.d - b.d || a.e - b.e || a.c - b.c || a.x - b.x || a.y - b.y);
  return K === Infinity ? res : res.slice(0, K);
}
