import { kerfError } from '../../errors.js';
import type { Profile } from '../../profile/types.js';
import type { Cluster, Objective, Placement, PlacementLink, PlacementStage, PlaceModel, PlaceOptions } from './types.js';

const MB = 1 << 20;
export const DEFAULT_MARGIN = 1.1;
/** Resident memory of a kerf worker before its segment: Node.js 20, kerf's serving modules,
 * onnxruntime-node and one trivial session run once (VmRSS 87.8 MB on linux x64, measured
 * with /proc/self/status; docs/place.md). */
export const DEFAULT_OVERHEAD_MB = 88;
/** CPU a kerf worker spends per MB it receives or sends over TCP (kernel loopback, framing,
 * tensor copies), ms on one whole core of the profiled system; measured by `kerf bench
 * pipeline` at N = 1 (docs/cluster-runtime.md). */
export const DEFAULT_WIRE_CPU_MS_PER_MB = 2.95;
export const DEFAULT_MESSAGE_OVERHEAD_MS = 0.1;

/** A stage as the solvers see it: node index and inclusive block range. */
export interface Seg { node: number; first: number; last: number }

/**
 * The numeric form of one placement problem: prefix sums and matrices the solvers share.
 * Built once by `buildInstance`; never mutated.
 */
export interface Inst {
  n: number;
  N: number;
  names: string[];
  /** per node: prefix sums of compute seconds, length n + 1 */
  pre: Float64Array[];
  /** prefix sums of weight bytes, length n + 1 */
  wpre: Float64Array;
  /** peak activation bytes per block */
  act: Float64Array;
  /** sparse table for range max of act: st[k][i] = max act[i .. i + 2^k - 1] */
  st: Float64Array[];
  /** bytes after block i */
  out: Float64Array;
  inputBytes: number;
  /** bytes a segment's weights + activations may take on each node */
  memCap: Float64Array;
  memLimit: Float64Array;
  /** bytes/s of the direct link v→w at v*N+w (0: no link) */
  bw: Float64Array;
  /** per-message overhead seconds, and one-way latency seconds (rtt / 2) */
  ovh: Float64Array;
  hop: Float64Array;
  /** entry node index, -1 when the pipeline ends are free */
  entry: number;
  speed: Float64Array;
  /** per node: CPU seconds per byte received or sent (already divided by speed) */
  wire: Float64Array;
  systems: (string | undefined)[];
  maxStages: number;
  comm: boolean;
  margin: number;
  overheadBytes: number;
  activations: 'profiled' | 'estimated';
  model: PlaceModel;
}

/** Reduce one or more profiles of the same model to a PlaceModel. The first profile is the
 * reference (nodes with a speed factor scale its times); the others are available to nodes
 * that name their system. */
export function placeModelFromProfiles(profiles: Profile[]): PlaceModel {
  if (profiles.length === 0) throw kerfError('KERF_ERR_PROFILE', 'no profile given');
  const ref = profiles[0]!;
  if (ref.blocks.length === 0) throw kerfError('KERF_ERR_PROFILE', `profile of '${ref.model.name}' has no blocks`);
  const blocks = ref.blocks.map((b, i) => {
    if (!(b.latency?.median >= 0)) throw kerfError('KERF_ERR_PROFILE', `profile of '${ref.model.name}': block ${i} has no latency.median`);
    const pb: PlaceModel['blocks'][number] = { seconds: b.latency.median, outputBytes: b.outputBytes ?? 0, paramBytes: b.paramBytes ?? 0 };
    if (b.flops !== undefined) pb.flops = b.flops;
    if (b.cutId !== undefined) pb.cutId = b.cutId;
    return pb;
  });
  const systems: Record<string, number[]> = {};
  for (const p of profiles) {
    if (p.blocks.length !== blocks.length) {
      throw kerfError('KERF_ERR_PROFILE', `profile of system '${p.system.name}' has ${p.blocks.length} blocks, the reference '${ref.system.name}' has ${blocks.length}`);
    }
    systems[p.system.name] = p.blocks.map((b) => b.latency.median);
  }
  // Without a measured input size, the first block's input is taken as large as its output.
  const inputBytes = ref.model.inputBytes ?? blocks[0]!.outputBytes;
  const m: PlaceModel = { name: ref.model.name, inputBytes, blocks, systems };
  if (ref.whole?.memoryBytes !== undefined) m.wholeMemoryBytes = ref.whole.memoryBytes;
  return m;
}

/** Peak activation of block i: as given, else its input plus its output (both live while it
 * runs; tensors inside the block are assumed no larger). */
export function blockActivation(m: PlaceModel, i: number): number {
  const b = m.blocks[i]!;
  if (b.activationBytes !== undefined) return b.activationBytes;
  const input = i === 0 ? m.inputBytes : m.blocks[i - 1]!.outputBytes;
  return input + b.outputBytes;
}

export function buildInstance(model: PlaceModel, cluster: Cluster, opts: PlaceOptions = {}): Inst {
  const n = model.blocks.length;
  const N = cluster.nodes.length;
  if (n === 0) throw kerfError('KERF_ERR_PLACE', `model '${model.name}' has no blocks`);
  const names = cluster.nodes.map((c) => c.name);
  const idx = new Map(names.map((s, i) => [s, i]));
  const pre: Float64Array[] = cluster.nodes.map((node) => {
    let base = model.blocks.map((b) => b.seconds);
    if (node.system !== undefined) {
      const sys = model.systems?.[node.system];
      if (!sys) {
        const have = Object.keys(model.systems ?? {});
        throw kerfError('KERF_ERR_PLACE', `node '${node.name}' names system '${node.system}' but no profile of it was given (have: ${have.join(', ') || 'none'})`);
      }
      base = sys;
    }
    const speed = node.speed ?? 1;
    const p = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) p[i + 1] = p[i]! + base[i]! / speed;
    return p;
  });
  const wpre = new Float64Array(n + 1);
  const act = new Float64Array(n);
  const out = new Float64Array(n);
  let profiled = true;
  for (let i = 0; i < n; i++) {
    const b = model.blocks[i]!;
    wpre[i + 1] = wpre[i]! + b.paramBytes;
    act[i] = blockActivation(model, i);
    if (b.activationBytes === undefined) profiled = false;
    out[i] = b.outputBytes;
  }
  const st: Float64Array[] = [act];
  for (let k = 1; (1 << k) <= n; k++) {
    const prev = st[k - 1]!;
    const cur = new Float64Array(n - (1 << k) + 1);
    for (let i = 0; i < cur.length; i++) cur[i] = Math.max(prev[i]!, prev[i + (1 << (k - 1))]!);
    st.push(cur);
  }
  const mem = { ...(cluster.memory ?? {}), ...(opts.memory ?? {}) };
  const margin = mem.margin ?? DEFAULT_MARGIN;
  let maxAct = 0;
  for (let i = 0; i < n; i++) maxAct = Math.max(maxAct, act[i]!);
  let overheadBytes: number;
  if (mem.overheadMB !== undefined) overheadBytes = mem.overheadMB * MB;
  // The profile's whole-model memory is what loading the session added to the process: beyond
  // weights and activations it is the session's own overhead, on top of the process baseline.
  else if (model.wholeMemoryBytes !== undefined) overheadBytes = DEFAULT_OVERHEAD_MB * MB + Math.max(0, model.wholeMemoryBytes - wpre[n]! - maxAct);
  else overheadBytes = DEFAULT_OVERHEAD_MB * MB;
  const memLimit = new Float64Array(N);
  const memCap = new Float64Array(N);
  cluster.nodes.forEach((node, j) => {
    memLimit[j] = node.memoryMB * MB;
    memCap[j] = (memLimit[j]! - overheadBytes) / margin;
  });
  const bw = new Float64Array(N * N);
  const ovh = new Float64Array(N * N);
  const hop = new Float64Array(N * N);
  const defOvh = (cluster.messageOverheadMs ?? DEFAULT_MESSAGE_OVERHEAD_MS) / 1000;
  const explicit = new Set(cluster.links.map((l) => `${l.from}\u0000${l.to}`));
  for (const l of cluster.links) {
    const a = idx.get(l.from)!;
    const b = idx.get(l.to)!;
    const set = (v: number, w: number): void => {
      bw[v * N + w] = (l.bandwidthMbps * 1e6) / 8;
      ovh[v * N + w] = l.overheadMs !== undefined ? l.overheadMs / 1000 : defOvh;
      hop[v * N + w] = (l.rttMs ?? 0) / 2000;
    };
    set(a, b);
    if (!explicit.has(`${l.to}\u0000${l.from}`)) set(b, a);
  }
  const maxStages = Math.max(1, Math.min(N, opts.maxStages ?? N));
  return {
    n, N, names, pre, wpre, act, st, out, inputBytes: model.inputBytes, memCap, memLimit, bw, ovh, hop,
    entry: cluster.entry !== undefined ? idx.get(cluster.entry)! : -1,
    speed: Float64Array.from(cluster.nodes.map((c) => c.speed ?? 1)),
    wire: Float64Array.from(cluster.nodes.map((c) =>
      (c.wireCpuMsPerMB ?? cluster.wireCpuMsPerMB ?? DEFAULT_WIRE_CPU_MS_PER_MB) / 1000 / MB / (c.speed ?? 1))),
    systems: cluster.nodes.map((c) => c.system),
    maxStages, comm: (opts.objective ?? 'throughput') === 'comm', margin, overheadBytes,
    activations: profiled ? 'profiled' : 'estimated', model,
  };
}

/** max act[s..j] in O(1) */
export function maxAct(I: Inst, s: number, j: number): number {
  const len = j - s + 1;
  const k = 31 - Math.clz32(len);
  const t = I.st[k]!;
  return Math.max(t[s]!, t[j - (1 << k) + 1]!);
}

/** weights + peak activation of blocks s..j (before margin and overhead) */
export function segNeed(I: Inst, s: number, j: number): number {
  return I.wpre[j + 1]! - I.wpre[s]! + maxAct(I, s, j);
}

export function segFits(I: Inst, w: number, s: number, j: number): boolean {
  return segNeed(I, s, j) <= I.memCap[w]!;
}

export function segComp(I: Inst, w: number, s: number, j: number): number {
  const p = I.pre[w]!;
  return p[j + 1]! - p[s]!;
}

/** bytes node w receives for a stage starting at block s (none from itself as the entry) */
export function stageInBytes(I: Inst, w: number, s: number): number {
  if (s > 0) return I.out[s - 1]!;
  return I.entry >= 0 && I.entry !== w ? I.inputBytes : 0;
}

/** bytes node w sends for a stage ending at block j (the result goes back to the entry) */
export function stageOutBytes(I: Inst, w: number, j: number): number {
  if (j < I.n - 1) return I.out[j]!;
  return I.entry >= 0 && I.entry !== w ? I.out[j]! : 0;
}

/** CPU seconds node w spends moving a stage's input and output (s..j) */
export function segWire(I: Inst, w: number, s: number, j: number): number {
  const c = I.wire[w]!;
  return c === 0 ? 0 : c * (stageInBytes(I, w, s) + stageOutBytes(I, w, j));
}

/** a stage's time on node w: compute of blocks s..j plus the CPU for its input and output */
export function stageTime(I: Inst, w: number, s: number, j: number): number {
  return segComp(I, w, s, j) + segWire(I, w, s, j);
}

/** seconds to send `bytes` from v to w (0 when v = w, Infinity without a link) */
export function linkTime(I: Inst, v: number, w: number, bytes: number): number {
  if (v === w) return 0;
  const b = I.bw[v * I.N + w]!;
  if (b === 0) return Infinity;
  return bytes / b + I.ovh[v * I.N + w]!;
}

export function hopLatency(I: Inst, v: number, w: number): number {
  return v === w ? 0 : I.hop[v * I.N + w]!;
}

/** bytes entering block s */
export function bytesBefore(I: Inst, s: number): number {
  return s === 0 ? I.inputBytes : I.out[s - 1]!;
}

export interface Score {
  /** bottleneck seconds (Infinity when infeasible) */
  bottleneck: number;
  latency: number;
  kind: 'compute' | 'link';
  where: string;
}

/** Is this list of stages a valid placement (covers all blocks in order, distinct linked
 * nodes, fits memory, within maxStages)? Returns the reason when not. */
export function checkStages(I: Inst, segs: Seg[]): string | null {
  if (segs.length === 0) return 'no stages';
  if (segs.length > I.maxStages) return `${segs.length} stages exceed the maximum ${I.maxStages}`;
  const used = new Set<number>();
  let next = 0;
  for (const s of segs) {
    if (s.first !== next || s.last < s.first) return `stage on ${I.names[s.node]} does not continue at block ${next}`;
    if (used.has(s.node)) return `node ${I.names[s.node]} used twice`;
    used.add(s.node);
    if (!segFits(I, s.node, s.first, s.last)) return `blocks ${s.first}-${s.last} do not fit ${I.names[s.node]}`;
    next = s.last + 1;
  }
  if (next !== I.n) return `blocks ${next}.. are not placed`;
  for (let k = 0; k + 1 < segs.length; k++) {
    if (I.bw[segs[k]!.node * I.N + segs[k + 1]!.node] === 0) return `no link ${I.names[segs[k]!.node]} -> ${I.names[segs[k + 1]!.node]}`;
  }
  if (I.entry >= 0) {
    if (linkTime(I, I.entry, segs[0]!.node, 0) === Infinity) return `no link from the entry to ${I.names[segs[0]!.node]}`;
    const last = segs[segs.length - 1]!.node;
    if (linkTime(I, last, I.entry, 0) === Infinity) return `no link from ${I.names[last]} back to the entry`;
  }
  return null;
}

/** Bottleneck and latency of a stage list (assumed valid except for links, which may be
 * missing: then the bottleneck is Infinity). */
export function score(I: Inst, segs: Seg[]): Score {
  let bn = 0;
  let kind: 'compute' | 'link' = 'compute';
  let where = '';
  let lat = 0;
  const consider = (t: number, k: 'compute' | 'link', w: () => string, counts: boolean): void => {
    if (counts && t > bn) { bn = t; kind = k; where = w(); }
  };
  const K = segs.length;
  if (I.entry >= 0) {
    const v = segs[0]!.node;
    const t = linkTime(I, I.entry, v, I.inputBytes);
    lat += t + hopLatency(I, I.entry, v);
    consider(t, 'link', () => `${I.names[I.entry]} -> ${I.names[v]}`, true);
  }
  for (let k = 0; k < K; k++) {
    const s = segs[k]!;
    const c = stageTime(I, s.node, s.first, s.last);
    lat += c;
    consider(c, 'compute', () => `stage ${k} on ${I.names[s.node]}`, !I.comm);
    const to = k + 1 < K ? segs[k + 1]!.node : I.entry;
    if (to >= 0) {
      const t = linkTime(I, s.node, to, I.out[s.last]!);
      lat += t + hopLatency(I, s.node, to);
      consider(t, 'link', () => `${I.names[s.node]} -> ${I.names[to]}`, true);
    }
  }
  if (!where) where = K > 0 ? `stage 0 on ${I.names[segs[0]!.node]}` : '';
  return { bottleneck: bn, latency: lat, kind, where };
}

/** Lexicographic (bottleneck, latency) comparison with a relative tolerance on ties. */
export function better(a: Score, b: Score): boolean {
  const tol = 1e-12 * Math.max(1, Math.abs(b.bottleneck));
  if (a.bottleneck < b.bottleneck - tol) return true;
  if (a.bottleneck > b.bottleneck + tol) return false;
  return a.latency < b.latency - 1e-12 * Math.max(1, b.latency);
}

/** Turn solver stages into the documented Placement. */
export function toPlacement(
  I: Inst, segs: Seg[], solver: Placement['solver'], optimal: boolean, lowerBound: number, objective: Objective,
): Placement {
  const sc = score(I, segs);
  const K = segs.length;
  const cut = (i: number): number | null => {
    if (i < 0 || i >= I.n - 1) return null;
    return I.model.blocks[i]!.cutId ?? i;
  };
  const stages: PlacementStage[] = segs.map((s, k) => {
    const to = k + 1 < K ? segs[k + 1]!.node : I.entry;
    const weights = I.wpre[s.last + 1]! - I.wpre[s.first]!;
    const a = maxAct(I, s.first, s.last);
    return {
      index: k,
      node: I.names[s.node]!,
      blocks: { first: s.first, last: s.last },
      cutIn: cut(s.first - 1),
      cutOut: cut(s.last),
      inputBytes: bytesBefore(I, s.first),
      outputBytes: I.out[s.last]!,
      memoryBytes: Math.ceil(I.margin * (weights + a) + I.overheadBytes),
      memoryLimitBytes: I.memLimit[s.node]!,
      weightBytes: weights,
      activationBytes: a,
      computeSeconds: segComp(I, s.node, s.first, s.last),
      wireSeconds: segWire(I, s.node, s.first, s.last),
      speed: I.speed[s.node]!,
      ...(I.systems[s.node] !== undefined ? { system: I.systems[s.node]! } : {}),
      sendTo: to >= 0 ? I.names[to]! : null,
      sendSeconds: to >= 0 ? linkTime(I, s.node, to, I.out[s.last]!) : 0,
    };
  });
  const links: PlacementLink[] = [];
  const link = (v: number, w: number, bytes: number): void => {
    if (v === w) return;
    links.push({
      from: I.names[v]!, to: I.names[w]!, bytes, seconds: linkTime(I, v, w, bytes),
      bandwidthMbps: (I.bw[v * I.N + w]! * 8) / 1e6, rttMs: I.hop[v * I.N + w]! * 2000,
    });
  };
  if (I.entry >= 0) link(I.entry, segs[0]!.node, I.inputBytes);
  segs.forEach((s, k) => {
    const to = k + 1 < K ? segs[k + 1]!.node : I.entry;
    if (to >= 0) link(s.node, to, I.out[s.last]!);
  });
  const lb = Math.min(lowerBound, sc.bottleneck);
  return {
    schema: 'kerf.placement/v1',
    model: { name: I.model.name, blocks: I.n, inputBytes: I.inputBytes },
    entry: I.entry >= 0 ? I.names[I.entry]! : null,
    objective,
    solver,
    optimal,
    bottleneck: { seconds: sc.bottleneck, kind: sc.kind, where: sc.where },
    throughput: sc.bottleneck > 0 ? 1 / sc.bottleneck : Infinity,
    latency: sc.latency,
    lowerBound: lb,
    gap: lb > 0 ? sc.bottleneck / lb - 1 : 0,
    stages,
    links,
    memoryModel: { margin: I.margin, overheadBytes: I.overheadBytes, activations: I.activations },
  };
}
