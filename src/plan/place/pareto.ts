/**
 * The Pareto front of a model's placements on a cluster (`kerf place --pareto`): every chain of
 * distinct linked nodes and every segmentation that fits memory, with each codec the entry's hop
 * may take, priced by the placer's cost (src/plan/cost.ts) and kept when no other placement is
 * at least as good on latency, bottleneck and bytes leaving the entry (the device) and better on
 * one. Exact, by enumeration: refused beyond PLACE_PARETO_MAX placements. Pure.
 */
import { kerfError } from '../../errors.js';
import { paretoFront } from '../pareto.js';
import { buildInstance, checkStages, type Inst, linkChoice, score, type Seg, segFits, toPlacement } from './instance.js';
import type { Cluster, Placement, PlaceModel, PlaceOptions } from './types.js';

/** Placements (codec variants of the entry's hop included) `placePareto` prices at most. */
export const PLACE_PARETO_MAX = 1_000_000;

/** The front, ranked by latency, and how many placements were priced. */
export interface PlaceParetoResult {
  front: Placement[];
  priced: number;
}

/** Bytes leaving the entry in a placement: its output to stage 1 as coded, the raw input when the
 * entry runs no stage, 0 when it runs everything. */
export function deviceBytes(p: Placement): number {
  if (p.entry === null) return NaN;
  const l = p.links.find((x) => x.kind !== 'return' && x.from === p.entry);
  return l ? l.wireBytes ?? l.bytes : 0;
}

export function placePareto(model: PlaceModel, cluster: Cluster, opts: PlaceOptions = {}): PlaceParetoResult {
  if (cluster.entry === undefined) throw kerfError('KERF_ERR_USAGE', 'a Pareto front needs the cluster\'s entry (the device whose bytes it counts): add entry: to the cluster file');
  const base = buildInstance(model, cluster, opts);
  const { n, N, entry } = base;
  const codecs = ['none', ...(opts.codecs ?? []).filter((c) => c !== 'none')];
  const variants: Inst[] = codecs.map((c) => ({ ...base, entryCodec: c }));
  type Pt = { segs: Seg[]; v: number; k: number[] };
  const pts: Pt[] = [];
  let priced = 0;
  const segs: Seg[] = [];
  const used = new Uint8Array(N);
  const record = (): void => {
    // the entry's hop carries a cut only when the entry runs stage 0 and another stage follows
    const coded = segs[0]!.node === entry && segs.length > 1;
    for (let v = 0; v < (coded ? variants.length : 1); v++) {
      if (++priced > PLACE_PARETO_MAX) {
        throw kerfError('KERF_ERR_PLACE', `model '${model.name}': more than ${PLACE_PARETO_MAX} placements to price for a Pareto front; lower --max-stages or place on fewer nodes`);
      }
      const I = variants[v]!;
      const sc = score(I, segs);
      if (sc.bottleneck === Infinity) continue;
      const dev = !coded ? (segs[0]!.node === entry ? 0 : I.inputBytes)
        : linkChoice(I, entry, segs[1]!.node, I.out[segs[0]!.last]!, segs[0]!.last).wireBytes;
      pts.push({ segs: segs.map((s) => ({ ...s })), v, k: [sc.latency, sc.bottleneck, dev] });
    }
  };
  const grow = (pos: number, prev: number): void => {
    if (segs.length >= base.maxStages) return;
    for (let w = 0; w < N; w++) {
      if (used[w]) continue;
      if (prev >= 0 ? base.bw[prev * N + w] === 0 : w !== entry && base.bw[entry * N + w] === 0) continue;
      used[w] = 1;
      for (let j = pos; j < n; j++) {
        if (!segFits(base, w, pos, j)) break;
        segs.push({ node: w, first: pos, last: j });
        if (j === n - 1) record(); else grow(j + 1, w);
        segs.pop();
      }
      used[w] = 0;
    }
  };
  grow(0, -1);
  const front = paretoFront(pts, (p) => p.k).map((p) => {
    const why = checkStages(variants[p.v]!, p.segs);
    if (why) throw new Error(`internal: Pareto enumeration made an invalid placement: ${why}`);
    return Object.freeze(toPlacement(variants[p.v]!, p.segs, 'given', false, 0, opts.objective ?? 'throughput'));
  });
  return { front, priced };
}
