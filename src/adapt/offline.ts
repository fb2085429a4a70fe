/**
 * Offline evaluation of the adaptation policies on AdaptiveDNN's measurements. Pure: the data
 * come in as values (see adaptivednn.ts for the reader).
 *
 * For every operating condition ABCDE the policies see only
 *  - the unloaded profile, condition 00000: per cut edge_s, cloud_s and transfer = total − edge − cloud;
 *  - the network rate class A (50/25/10 Mbps), as a bandwidth monitor would report it;
 *  - load samples: execution times on edge and cloud of the cut in use plus a few probe cuts,
 *    taken from the conditions with the SAME load settings BCDE but another network A'. Those
 *    are independent single measurements under the same load; the evaluated file itself is never
 *    read by a policy, so no policy sees any part of the answer or its noise.
 * The cut in use before the decision is the bandwidth-only choice (what ran before the load was
 * noticed). Regret = (measured total of the chosen cut − measured best total) / measured best.
 */
import { kerfError } from '../errors.js';
import type { MeasuredCut, MeasuredNetwork } from './adaptivednn.js';
import { Decider, SplitSearch, splitCostModelFromPrefix, type AdaptConditions, type SplitModel } from './decide.js';
import { loadFactor, type ExecSample, type LoadFactorOptions } from './estimators.js';

export type OfflinePolicy = 'bandwidth' | 'load-aware' | 'load-aware-naive' | 'load-oracle';

/** Policies compared; 'load-oracle' is a diagnostic that reads the evaluated condition's
 * execution times (never a total) to show what perfect load knowledge would bring. */
export const OFFLINE_POLICIES: readonly OfflinePolicy[] = ['bandwidth', 'load-aware', 'load-aware-naive', 'load-oracle'];

export interface OfflineOptions extends LoadFactorOptions {
  /** hysteresis of the load-aware decision (default 0.1) */
  minGain?: number;
  /** probe cuts per tier in addition to the cut in use (default 3) */
  probes?: number;
  /** Mbps of network classes 0, 1, 2 (default 50, 25, 10) */
  rateMbps?: readonly [number, number, number];
  /** include one record per condition in the report */
  details?: boolean;
}

export interface PolicyStats {
  /** mean regret over conditions, as a fraction (0.1 = 10 % slower than the measured best) */
  meanRegret: number;
  worstRegret: number;
  worstCondition: string;
}

export interface ConditionRecord {
  condition: string;
  bestCut: number;
  bestS: number;
  cuts: Record<OfflinePolicy, number>;
  regret: Record<OfflinePolicy, number>;
  edgeFactor: number;
  cloudFactor: number;
}

export interface NetworkReport {
  network: string;
  conditions: number;
  cuts: number;
  policies: Record<OfflinePolicy, PolicyStats>;
  /** conditions where load-aware picked another cut than bandwidth-only, and how that went */
  loadAwareMoved: number;
  loadAwareBetter: number;
  loadAwareWorse: number;
  details?: ConditionRecord[];
}

export interface OfflineReport {
  schema: 'kerf.adapt-offline/v1';
  options: { minGain: number; probes: number; estimator: string; trim: number; minProfiledFraction: number; rateMbps: number[] };
  networks: NetworkReport[];
  /** every condition of every network pooled */
  all: { conditions: number; policies: Record<OfflinePolicy, PolicyStats> };
}

interface Accum { sum: number; n: number; worst: number; worstCondition: string }
const newAccum = (): Accum => ({ sum: 0, n: 0, worst: -Infinity, worstCondition: '' });
function add(a: Accum, v: number, cond: string): void {
  a.sum += v; a.n++;
  if (v > a.worst) { a.worst = v; a.worstCondition = cond; }
}
const stats = (a: Accum): PolicyStats => ({ meanRegret: a.n ? a.sum / a.n : NaN, worstRegret: a.worst, worstCondition: a.worstCondition });

/** Evenly spread picks from a list (k of them, first and last included). */
function spread<T>(xs: readonly T[], k: number): T[] {
  if (k <= 0 || xs.length === 0) return [];
  if (k >= xs.length) return [...xs];
  if (k === 1) return [xs[Math.floor((xs.length - 1) / 2)]!];
  return Array.from({ length: k }, (_, i) => xs[Math.round((i * (xs.length - 1)) / (k - 1))]!);
}

/** Evaluate all policies on one network. */
export function evaluateNetwork(net: MeasuredNetwork, opts: OfflineOptions = {}): NetworkReport {
  const minGain = opts.minGain ?? 0.1;
  const probes = opts.probes ?? 3;
  const rates = opts.rateMbps ?? [50, 25, 10];
  const lf: LoadFactorOptions = { estimator: opts.estimator ?? 'trimmed', trim: opts.trim ?? 0.1, minProfiledFraction: opts.minProfiledFraction ?? 0.2 };
  const base = net.conditions.get('00000');
  if (!base) throw kerfError('KERF_ERR_IMPORT', `network '${net.name}': condition 00000 (the unloaded profile) is missing`);

  // Unloaded profile as a two-tier cost model: cut i (sorted) is boundary b = i + 1 of n = K + 1
  // blocks, so each cut is a boundary strictly inside the chain and always sends its tensor.
  const cuts = base.map((r) => r.cut);
  const K = cuts.length, n = K + 1;
  const e0 = base.map((r) => r.edgeS), c0 = base.map((r) => r.cloudS);
  const t0 = base.map((r) => Math.max(0, r.totalS - r.edgeS - r.cloudS));
  const rtt0 = Math.max(0, Math.min(...t0));
  const bytesPerS0 = (rates[0] * 1e6) / 8;
  const cloudTop = Math.max(...c0);
  const Pe = new Float64Array(n + 1), Pc = new Float64Array(n + 1), bytes = new Float64Array(n + 1);
  for (let i = 0; i < K; i++) {
    Pe[i + 1] = e0[i]!;
    Pc[i + 1] = cloudTop - c0[i]!;
    bytes[i + 1] = (t0[i]! - rtt0) * bytesPerS0;
  }
  Pe[n] = Pe[K]!;
  Pc[n] = cloudTop;
  const fullModel = splitCostModelFromPrefix(['edge', 'cloud'], [Pe, Pc], bytes, Array.from({ length: n + 1 }, (_, b) => b >= 1 && b <= K));

  const eligible = (t: number[]) => {
    const top = Math.max(...t);
    return t.map((_, i) => i).filter((i) => t[i]! >= (lf.minProfiledFraction ?? 0.2) * top);
  };
  const probeEdge = spread(eligible(e0), probes), probeCloud = spread(eligible(c0), probes);

  const acc: Record<OfflinePolicy, Accum> = { bandwidth: newAccum(), 'load-aware': newAccum(), 'load-aware-naive': newAccum(), 'load-oracle': newAccum() };
  let moved = 0, better = 0, worse = 0;
  const details: ConditionRecord[] = [];
  const codes = [...net.conditions.keys()].sort();

  for (const code of codes) {
    const rows = new Map<number, MeasuredCut>(net.conditions.get(code)!.map((r) => [r.cut, r]));
    const A = Number(code[0]);
    const link = { bytesPerS: (rates[A as 0 | 1 | 2] * 1e6) / 8, rttS: rtt0 };
    // A cut absent from this condition's file was not measured: it cannot be chosen.
    const model: SplitModel = cuts.every((c) => rows.has(c))
      ? fullModel
      : splitCostModelFromPrefix(['edge', 'cloud'], [Pe, Pc], bytes, Array.from({ length: n + 1 }, (_, b) => b >= 1 && b <= K && rows.has(cuts[b - 1]!)));
    const unit: AdaptConditions = { links: [link], tiers: [{ factor: 1, queueS: 0 }, { factor: 1, queueS: 0 }] };
    const bw = new SplitSearch(model).best(unit).boundaries[0]!;
    const cur = bw - 1; // index of the cut in use

    const siblings = codes.filter((c) => c !== code && c.slice(1) === code.slice(1)).map((c) => new Map(net.conditions.get(c)!.map((r) => [r.cut, r])));
    const observe = (idx: readonly number[], sibs: Map<number, MeasuredCut>[], tier: 'edgeS' | 'cloudS', prof: number[]): ExecSample[] => {
      const out: ExecSample[] = [];
      for (const s of sibs) for (const i of idx) {
        const r = s.get(cuts[i]!);
        if (r) out.push({ observedS: r[tier], profiledS: prof[i]! });
      }
      return out;
    };
    const uniq = (xs: number[]) => [...new Set(xs)];
    const robustE = loadFactor(observe(uniq([cur, ...probeEdge]), siblings, 'edgeS', e0), lf) ?? 1;
    const robustC = loadFactor(observe(uniq([cur, ...probeCloud]), siblings, 'cloudS', c0), lf) ?? 1;
    // naive: one probe = the cut in use, measured once
    const one = siblings.slice(0, 1);
    const naiveE = loadFactor(observe([cur], one, 'edgeS', e0), { ...lf, minProfiledFraction: 0 }) ?? 1;
    const naiveC = loadFactor(observe([cur], one, 'cloudS', c0), { ...lf, minProfiledFraction: 0 }) ?? 1;
    // diagnostic: execution times of every cut in the evaluated condition itself
    const self = [rows];
    const all = cuts.map((_, i) => i);
    const oracleE = loadFactor(observe(all, self, 'edgeS', e0), lf) ?? 1;
    const oracleC = loadFactor(observe(all, self, 'cloudS', c0), lf) ?? 1;

    const pick = (fe: number, fc: number): number => {
      const d = new Decider(model, { mode: 'load-aware', minGain, minDwellS: 0 }, { boundaries: [bw], atS: 0 });
      return d.decide({ links: [link], tiers: [{ factor: fe, queueS: 0 }, { factor: fc, queueS: 0 }] }, 0).chosen[0]! - 1;
    };
    const chosen: Record<OfflinePolicy, number> = {
      bandwidth: cur,
      'load-aware': pick(robustE, robustC),
      'load-aware-naive': pick(naiveE, naiveC),
      'load-oracle': pick(oracleE, oracleC),
    };
    let bestS = Infinity, bestCut = -1;
    for (const r of rows.values()) if (r.totalS < bestS) { bestS = r.totalS; bestCut = r.cut; }
    const regret = {} as Record<OfflinePolicy, number>;
    const chosenCut = {} as Record<OfflinePolicy, number>;
    for (const p of OFFLINE_POLICIES) {
      chosenCut[p] = cuts[chosen[p]]!;
      regret[p] = (rows.get(chosenCut[p])!.totalS - bestS) / bestS;
      add(acc[p], regret[p], code);
    }
    if (chosen['load-aware'] !== cur) {
      moved++;
      if (regret['load-aware'] < regret.bandwidth) better++;
      else if (regret['load-aware'] > regret.bandwidth) worse++;
    }
    if (opts.details) details.push({ condition: code, bestCut, bestS, cuts: chosenCut, regret, edgeFactor: robustE, cloudFactor: robustC });
  }
  const policies = Object.fromEntries(OFFLINE_POLICIES.map((p) => [p, stats(acc[p])])) as Record<OfflinePolicy, PolicyStats>;
  const report: NetworkReport = { network: net.name, conditions: codes.length, cuts: K, policies, loadAwareMoved: moved, loadAwareBetter: better, loadAwareWorse: worse };
  if (opts.details) report.details = details;
  return report;
}

/** Evaluate every network and pool the conditions. */
export function evaluateOffline(nets: readonly MeasuredNetwork[], opts: OfflineOptions = {}): OfflineReport {
  const networks = nets.map((n) => evaluateNetwork(n, opts));
  const pooled = {} as Record<OfflinePolicy, PolicyStats>;
  let total = 0;
  for (const r of networks) total += r.conditions;
  for (const p of OFFLINE_POLICIES) {
    let sum = 0, worst = -Infinity, worstCondition = '';
    for (const r of networks) {
      const s = r.policies[p];
      sum += s.meanRegret * r.conditions;
      if (s.worstRegret > worst) { worst = s.worstRegret; worstCondition = `${r.network}/${s.worstCondition}`; }
    }
    pooled[p] = { meanRegret: sum / total, worstRegret: worst, worstCondition };
  }
  return {
    schema: 'kerf.adapt-offline/v1',
    options: {
      minGain: opts.minGain ?? 0.1, probes: opts.probes ?? 3, estimator: opts.estimator ?? 'trimmed', trim: opts.trim ?? 0.1,
      minProfiledFraction: opts.minProfiledFraction ?? 0.2, rateMbps: [...(opts.rateMbps ?? [50, 25, 10])],
    },
    networks,
    all: { conditions: total, policies: pooled },
  };
}

/** The report as a plain-text table (percentages). */
export function formatOfflineReport(r: OfflineReport): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const cell = (s: PolicyStats) => `${pct(s.meanRegret).padStart(6)} / ${pct(s.worstRegret).padStart(6)}`;
  const head = ['network', 'conds', 'bandwidth-only', 'load-aware', 'naive one-probe', 'load-oracle*', 'moved better/worse'];
  const lines = [
    'regret vs the measured best cut, mean / worst',
    head[0]!.padEnd(10) + head[1]!.padStart(6) + '  ' + head.slice(2, 6).map((h) => h.padEnd(17)).join('  ') + head[6],
  ];
  for (const n of r.networks) {
    lines.push(n.network.padEnd(10) + String(n.conditions).padStart(6) + '  ' +
      OFFLINE_POLICIES.map((p) => cell(n.policies[p]).padEnd(17)).join('  ') + `${n.loadAwareMoved} ${n.loadAwareBetter}/${n.loadAwareWorse}`);
  }
  lines.push('all'.padEnd(10) + String(r.all.conditions).padStart(6) + '  ' + OFFLINE_POLICIES.map((p) => cell(r.all.policies[p]).padEnd(17)).join('  '));
  lines.push(`* load-oracle reads the evaluated condition's own execution times: a diagnostic bound, not a policy.`);
  lines.push(`options: min gain ${pct(r.options.minGain)}, ${r.options.probes} probes/tier, ${r.options.estimator} (trim ${r.options.trim}), ` +
    `min profiled fraction ${r.options.minProfiledFraction}, rates ${r.options.rateMbps.join('/')} Mbps`);
  return lines.join('\n');
}
