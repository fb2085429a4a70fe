/**
 * Pareto fronts (ParetoPipe's view of a split): the placements no other placement beats on every
 * one of end-to-end latency, throughput (the bottleneck stage, smaller is better) and bytes
 * leaving the device (cost, privacy), with the codec of the device's hop as one more choice.
 * Pure: no I/O, no clock.
 *
 * Only the device's hop needs its codec enumerated: every other hop's codec changes its own busy
 * time alone (encode, bytes ÷ bandwidth and decode are all priced on the hop), so its cheapest
 * codec is at least as good on latency and bottleneck and leaves the device's bytes unchanged;
 * any other choice there is dominated or tied.
 */
import { kerfError } from '../errors.js';
import { describePlacement, searchPlacements } from './search.js';
import type { Network, PlanCriteria, PlanProblem, PlanSearchOptions, RankedPlacement } from './types.js';

/** The objectives of a point of a front: all smaller-is-better. */
export interface ParetoObjectives {
  latencyS: number;
  bottleneckS: number;
  deviceBytes: number;
}

/** a dominates b: no worse on every objective and better on at least one. */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let better = false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]! > b[i]!) return false;
    if (a[i]! < b[i]!) better = true;
  }
  return better;
}

/**
 * The non-dominated items of `items` under `key` (every component smaller-is-better), ordered
 * by the key lexicographically, ties in input order. Items with equal keys dominate neither
 * other and are all kept; NaN keys are dropped. O(n log n + n·f) for a front of f.
 */
export function paretoFront<T>(items: readonly T[], key: (t: T) => readonly number[]): T[] {
  const keyed = items.map((t, i) => ({ t, k: key(t), i })).filter((e) => e.k.every((x) => x === x));
  keyed.sort((a, b) => {
    for (let j = 0; j < a.k.length; j++) if (a.k[j] !== b.k[j]) return a.k[j]! - b.k[j]!;
    return a.i - b.i;
  });
  // in lexicographic order a point can only be dominated by one before it, which is on the front
  // itself when not dominated (dominance is transitive)
  const front: typeof keyed = [];
  for (const e of keyed) if (!front.some((f) => dominates(f.k, e.k))) front.push(e);
  return front.map((e) => e.t);
}

/** The three objectives of a plan's placement. */
export function planObjectives(p: RankedPlacement): ParetoObjectives {
  const first = p.transfers.find((t) => t.kind === 'forward');
  return { latencyS: p.totalS, bottleneckS: p.bottleneckS, deviceBytes: first ? first.wireBytes ?? first.bytes : 0 };
}

/** Placements `planPareto` enumerates at most (each with every codec of its device's hop). */
export const PARETO_MAX_PLACEMENTS = 2_000_000;

/**
 * The Pareto front of every placement of `problem` the criteria allow, over latency, bottleneck
 * and bytes leaving the device, the device's hop taking raw or any codec of `opts.codecs` the
 * profiles measured on that block (lossy ones only when listed). Ranked 1.. by latency.
 */
export function planPareto(problem: PlanProblem, net: Network, criteria?: PlanCriteria, opts: PlanSearchOptions = {}): RankedPlacement[] {
  const L = problem.blocks, nd = problem.device.length, ne = problem.edge.length, nc = problem.cloud.length;
  const count = nd * (1 + (ne + nc) * (L + 1) + ne * nc * (L * (L + 1)) / 2);
  if (count > PARETO_MAX_PLACEMENTS) {
    throw kerfError('KERF_ERR_PLAN', `model '${problem.model}': ${count} placements are too many for a Pareto front (at most ${PARETO_MAX_PLACEMENTS}); profile at single granularity or name fewer systems`);
  }
  const all = searchPlacements(problem, net, criteria, { ...opts, objective: 'latency', topK: Math.max(1, Math.ceil(count)) });
  const codecs = ['none', ...(opts.codecs ?? []).filter((c) => c !== 'none')];
  const points: RankedPlacement[] = [];
  for (const r of all) {
    const base = describePlacement(problem, net, r, 0, opts);
    points.push(base);
    const first = base.transfers[0];
    // the device's hop: every codec it may take, not only the cheapest
    if (!first || r.x < 0 || codecs.length === 1) continue;
    for (const c of codecs) {
      if (c === (first.codec ?? 'none')) continue;
      try {
        points.push(describePlacement(problem, net, r, 0, opts, c));
      } catch (e) {
        if ((e as { code?: string }).code !== 'KERF_ERR_PLAN') throw e;
      }
    }
  }
  const obj = (p: RankedPlacement): number[] => { const o = planObjectives(p); return [o.latencyS, o.bottleneckS, o.deviceBytes]; };
  return paretoFront(points, obj).map((p, i) => ({ ...p, rank: i + 1 }));
}

const ms = (s: number): string => (s * 1000 < 10 ? (s * 1000).toFixed(2) : (s * 1000).toFixed(1));

/** A table of a front for people: latency, bottleneck (and req/s), bytes leaving the device and
 * its codec, then where the blocks run. */
export function formatParetoTable(front: readonly RankedPlacement[]): string {
  const head = ['#', 'latency ms', 'bottleneck ms', 'req/s', 'device sends', 'device hop codec', 'device', 'edge', 'cloud'];
  const rows = front.map((p) => {
    const o = planObjectives(p);
    const first = p.transfers.find((t) => t.kind === 'forward');
    const tier = (i: number): string => {
      const t = p.tiers[i]!;
      return t.blocks ? `${t.system} b${t.blocks[0] === t.blocks[1] ? t.blocks[0] : `${t.blocks[0]}-${t.blocks[1]}`}` : '-';
    };
    const codec = !first ? '-' : first.codec ? `${first.codec}${first.lossy ? ' (lossy)' : ''} ${first.ratio!.toFixed(2)}×` : 'none';
    return [String(p.rank), ms(o.latencyS), ms(o.bottleneckS), o.bottleneckS > 0 ? (1 / o.bottleneckS).toFixed(1) : 'inf', `${(o.deviceBytes / 1000).toFixed(1)} kB`, codec, tier(0), tier(1), tier(2)];
  });
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd()).join('\n');
}
