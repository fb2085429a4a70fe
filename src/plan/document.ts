import { kerfError } from '../errors.js';
import { findNetworkLink } from './network.js';
import type { Network, PlanObjective, RankedPlacement, PlanDocument } from './types.js';
import { PLAN_SCHEMA } from './types.js';

export interface PlanMeta {
  model: string;
  /** the model file relative to the plan file, and its sha256 (recorded so the plan is portable) */
  modelPath?: string | undefined;
  modelSha256?: string | undefined;
  objective: PlanObjective;
  returnResult: boolean;
  inputBytes: number;
  /** the network file's name, for the record */
  networkSource?: string | undefined;
  criteria?: Record<string, unknown> | undefined;
  /** the Pareto front (planPareto), when asked for */
  pareto?: readonly RankedPlacement[] | undefined;
}

/** The plan document (`kerf.plan/v1`): the best placement on top, all ranked below; frozen. */
export function planDocument(ranked: readonly RankedPlacement[], net: Network, meta: PlanMeta): PlanDocument {
  const best = ranked[0];
  if (!best) throw kerfError('KERF_ERR_PLAN', `model '${meta.model}': no placement satisfies the criteria`);
  const links = best.transfers.map((t) => {
    const l = findNetworkLink(net, t.from, t.to)!;
    return { from: l.from, to: l.to, rttMs: l.rttMs, bandwidthMbps: l.bandwidthMbps };
  });
  const { rank: _rank, ...top } = best;
  const doc: PlanDocument = {
    schema: PLAN_SCHEMA,
    model: meta.model,
    ...(meta.modelPath !== undefined ? { modelPath: meta.modelPath } : {}),
    ...(meta.modelSha256 !== undefined ? { modelSha256: meta.modelSha256 } : {}),
    objective: meta.objective,
    returnResult: meta.returnResult,
    inputBytes: meta.inputBytes,
    ...top,
    network: { ...(meta.networkSource !== undefined ? { source: meta.networkSource } : {}), links },
    criteria: meta.criteria ?? {},
    ranked: [...ranked],
    ...(meta.pareto ? { pareto: [...meta.pareto] } : {}),
  };
  return deepFreeze(doc);
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

const ms = (s: number): string => (s * 1000 < 10 ? (s * 1000).toFixed(2) : (s * 1000).toFixed(1));
const mb = (b: number): string => (b / 1e6).toFixed(4);

/** A ranked table for people: total, MB sent, then per tier system, blocks, layers, compute; then transfers. */
export function formatPlanTable(ranked: readonly RankedPlacement[], objective: PlanObjective = 'latency'): string {
  const head = ['#', objective === 'throughput' ? 'bottleneck ms' : 'total ms', 'MB sent', 'device', 'edge', 'cloud', 'transfer ms'];
  const rows = ranked.map((p) => {
    const tier = (i: number): string => {
      const t = p.tiers[i]!;
      if (!t.blocks) return '-';
      const b = t.blocks[0] === t.blocks[1] ? `${t.blocks[0]}` : `${t.blocks[0]}-${t.blocks[1]}`;
      const l = t.layers![0] === t.layers![1] ? `${t.layers![0]}` : `${t.layers![0]}-${t.layers![1]}`;
      return `${t.system} b${b} L${l} ${ms(t.computeS)}ms`;
    };
    const tr = p.transfers.map((t) => ms(t.seconds) + (t.codec ? ` ${t.codec}${t.lossy ? ' (lossy)' : ''} ${t.ratio!.toFixed(1)}×` : '')).join(' + ') || '0';
    return [String(p.rank), ms(p.objectiveS), mb(p.bytesSent), tier(0), tier(1), tier(2), tr];
  });
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i < 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}
