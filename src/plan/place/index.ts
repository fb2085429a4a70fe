/**
 * Throughput placement of a DNN over a cluster of edge nodes: N-stage pipelines whose
 * bottleneck (slowest stage or link) is minimised. Pure: no I/O, no clock; a time limit
 * reaches the exact solver as a `shouldStop` callback or a work budget.
 */
import { kerfError } from '../../errors.js';
import { greedy, randomPlacement } from './baselines.js';
import { lowerBound } from './core.js';
import { explainInfeasible } from './diagnose.js';
import { EXACT_MAX_NODES, solveExact } from './exact.js';
import { buildInstance, checkStages, type Inst, type Seg, toPlacement } from './instance.js';
import { solveScalable } from './scalable.js';
import type { Cluster, Placement, PlaceModel, PlaceOptions } from './types.js';

export * from './types.js';
export { validateCluster, CLUSTER_SCHEMA } from './cluster.js';
export { placeModelFromProfiles, blockActivation, DEFAULT_MARGIN, DEFAULT_OVERHEAD_MB, DEFAULT_MESSAGE_OVERHEAD_MS, DEFAULT_WIRE_CPU_MS_PER_MB } from './instance.js';
export { rng } from './baselines.js';
export { zooPlaceModel, PLACE_MODELS, type PlaceModelName } from './models.js';
export { anchorCluster, type AnchorOptions } from './generator.js';

export const PLACEMENT_SCHEMA = 'kerf.placement/v1' as const;
/** `auto` uses the exact solver up to this many nodes. */
export const AUTO_EXACT_NODES = 12;
const DEFAULT_MAX_WORK = 2e8;

/** Whether the exact solver's tables fit a modest memory budget for this size. */
function exactAffordable(I: Inst): boolean {
  return I.N <= AUTO_EXACT_NODES && 2 ** I.N * I.N * (I.n + 1) * 12 <= 4e8;
}

/** The lower bound `place` reports: exported so callers placing one model with several
 * solvers compute it once and pass it as `opts.lowerBound`. */
export function placementLowerBound(model: PlaceModel, cluster: Cluster, opts: PlaceOptions = {}): number {
  return lowerBound(buildInstance(model, cluster, opts));
}

/**
 * Price a placement given as stages in pipeline order (node names and block ranges) with the
 * placer's cost (src/plan/cost.ts: the same per-tier and per-hop price as the planner and the
 * adapt controller). `solver` is 'given'; `optimal` false. Throws KERF_ERR_PLACE when the stages
 * are no valid placement of `model` on `cluster`.
 */
export function pricePlacement(model: PlaceModel, cluster: Cluster, stages: readonly { node: string; first: number; last: number }[], opts: PlaceOptions = {}): Placement {
  const I = buildInstance(model, cluster, { maxStages: cluster.nodes.length, ...opts });
  const segs: Seg[] = stages.map((s) => {
    const node = I.names.indexOf(s.node);
    if (node < 0) throw kerfError('KERF_ERR_PLACE', `stage on '${s.node}': the cluster has no such node`);
    return { node, first: s.first, last: s.last };
  });
  const why = checkStages(I, segs);
  if (why) throw kerfError('KERF_ERR_PLACE', `model '${model.name}': ${why}`);
  return Object.freeze(toPlacement(I, segs, 'given', false, 0, opts.objective ?? 'throughput'));
}

/**
 * Place `model` on `cluster`. Throws KERF_ERR_PLACE, naming the cause, when no placement
 * exists (or the chosen baseline finds none).
 */
export function place(model: PlaceModel, cluster: Cluster, opts: PlaceOptions & { lowerBound?: number } = {}): Placement {
  const I = buildInstance(model, cluster, opts);
  const objective = opts.objective ?? 'throughput';
  let solver = opts.solver ?? 'auto';
  if (solver === 'auto') solver = exactAffordable(I) ? 'exact' : 'scalable';
  if (solver === 'exact' && I.N > EXACT_MAX_NODES) {
    throw kerfError('KERF_ERR_USAGE', `the exact solver handles at most ${EXACT_MAX_NODES} nodes; the cluster has ${I.N} (use --solver scalable)`);
  }
  const lb = opts.lowerBound ?? lowerBound(I);
  if (lb === Infinity) throw kerfError('KERF_ERR_PLACE', explainInfeasible(I, true));
  let segs: Seg[] | null;
  let optimal = false;
  let bound = lb;
  switch (solver) {
    case 'greedy': segs = greedy(I); break;
    case 'random': segs = randomPlacement(I, opts.seed ?? 1); break;
    case 'scalable': segs = solveScalable(I, [greedy(I)], lb); break;
    case 'exact': {
      const seed = solveScalable(I, [greedy(I)], lb);
      const budget = { maxWork: opts.maxWork ?? DEFAULT_MAX_WORK, work: 0, stopped: false, ...(opts.shouldStop ? { shouldStop: opts.shouldStop } : {}) };
      const r = solveExact(I, seed, lb, budget);
      segs = r.segs;
      optimal = r.optimal;
      bound = Math.max(lb, r.lower);
      if (!segs && r.optimal) throw kerfError('KERF_ERR_PLACE', explainInfeasible(I, true));
      break;
    }
    default: throw kerfError('KERF_ERR_USAGE', `unknown solver '${String(solver)}' (exact, scalable, greedy, random, auto)`);
  }
  if (!segs) {
    if (solver === 'greedy' || solver === 'random') {
      throw kerfError('KERF_ERR_PLACE', `model '${model.name}': the ${solver} baseline found no placement`);
    }
    throw kerfError('KERF_ERR_PLACE', explainInfeasible(I, false));
  }
  const why = checkStages(I, segs);
  if (why) throw new Error(`internal: ${solver} returned an invalid placement: ${why}`);
  return Object.freeze(toPlacement(I, segs, solver, optimal, bound, objective));
}
export { placePareto, deviceBytes, PLACE_PARETO_MAX, type PlaceParetoResult } from './pareto.js';
