import { kerfError } from '../../errors.js';
import type { Profile } from '../../profile/types.js';
import { hopBusyS } from '../cost.js';
import { chooseCodec, codecChoice, codecPairs, codedHopFields, transferS, type HopChoice, type SystemCodecs } from '../codec-cost.js';
import { systemCodecs } from '../problem.js';
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
  /** per node: what a stage on it pays once per request beyond its blocks: the call overhead
   * (÷ speed) plus its fixed time (src/plan/cost.ts tierServiceS) */
  stageFixed: Float64Array;
  /** the entry's gateway when it runs no stage: its fixed time + wire CPU for the input and the
   * result (0 without an entry) */
  gateway: number;
  /** per node: its codec measurements (encode and decode ÷ speed), when the model has them */
  nodeCodecs: (SystemCodecs | undefined)[];
  /** per link v*N+w: codec pairs the hop may use (kerf place --codecs), and the lossless ones
   * the result's return may use; null when no codec is allowed */
  fwdPairs: Int32Array[] | null;
  backPairs: Int32Array[] | null;
  /** the largest ratio any allowed codec reaches (1 without codecs): bytes ÷ maxRatio ÷ bandwidth
   * bounds a hop's busy time from below */
  maxRatio: number;
  /** set by Pareto fronts: the codec every hop leaving the entry takes ('none': raw) */
  entryCodec?: string;
  /** whether the result comes back (an entry exists): it travels back along the chain, each
   * hop's reverse direction carrying it, as kerf's workers reply to their caller */
  ret: boolean;
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
  if (ref.callOverheadS !== undefined) m.callOverheadS = ref.callOverheadS;
  const calls: Record<string, number> = {};
  for (const p of profiles) if (p.callOverheadS !== undefined) calls[p.system.name] = p.callOverheadS;
  if (Object.keys(calls).length) m.systemCallOverheadS = calls;
  const codecs: Record<string, SystemCodecs> = {};
  for (const p of profiles) { const c = systemCodecs(p, blocks.length, 1); if (c) codecs[p.system.name] = c; }
  if (Object.keys(codecs).length) { m.codecs = codecs; m.referenceSystem = ref.system.name; }
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
  const entry = cluster.entry !== undefined ? idx.get(cluster.entry)! : -1;
  const wire = Float64Array.from(cluster.nodes.map((c) =>
    (c.wireCpuMsPerMB ?? cluster.wireCpuMsPerMB ?? DEFAULT_WIRE_CPU_MS_PER_MB) / 1000 / MB / (c.speed ?? 1)));
  // tierServiceS's per-request terms: the call overhead scales with the node's speed like its
  // blocks, the fixed time (wall, as measured) does not
  const fixedOf = (c: Cluster['nodes'][number]): number => (c.fixedMs ?? 0) / 1000;
  const stageFixed = Float64Array.from(cluster.nodes.map((c) => {
    const call = (c.system !== undefined ? model.systemCallOverheadS?.[c.system] : undefined) ?? model.callOverheadS ?? 0;
    return call / (c.speed ?? 1) + fixedOf(c);
  }));
  const result = out[n - 1]!;
  // codecs: each node's measurements (its system's, else the reference's), encode and decode
  // on a node of speed s taking 1/s of the profiled time, like its blocks
  const nodeCodecs = cluster.nodes.map((c): SystemCodecs | undefined => {
    const src = model.codecs?.[c.system ?? model.referenceSystem ?? ''];
    const sp = c.speed ?? 1;
    if (!src || sp === 1) return src;
    const div = (a: Float64Array): Float64Array => a.map((x) => x / sp);
    return { names: src.names, lossy: src.lossy, ratio: src.ratio, encodeS: src.encodeS.map(div), decodeS: src.decodeS.map(div) };
  });
  const fwdSet = new Set((opts.codecs ?? []).filter((c) => c !== 'none'));
  const lossySet = new Set(opts.lossyCodecs ?? []);
  const backSet = new Set([...fwdSet].filter((c) => !lossySet.has(c)));
  let fwdPairs: Int32Array[] | null = null, backPairs: Int32Array[] | null = null, maxRatio = 1;
  if (fwdSet.size > 0 && nodeCodecs.some((c) => c)) {
    fwdPairs = []; backPairs = [];
    for (let v = 0; v < N; v++) {
      for (let w = 0; w < N; w++) {
        fwdPairs.push(codecPairs(nodeCodecs[v], nodeCodecs[w], fwdSet));
        backPairs.push(codecPairs(nodeCodecs[v], nodeCodecs[w], backSet));
      }
    }
    for (const c of nodeCodecs) c?.names.forEach((name, k) => { if (fwdSet.has(name)) for (const r of c.ratio[k]!) if (r > maxRatio) maxRatio = r; });
  }
  const gateway = entry >= 0 ? fixedOf(cluster.nodes[entry]!) + wire[entry]! * (model.inputBytes + result) : 0;
  return {
    n, N, names, pre, wpre, act, st, out, inputBytes: model.inputBytes, memCap, memLimit, bw, ovh, hop,
    entry,
    speed: Float64Array.from(cluster.nodes.map((c) => c.speed ?? 1)),
    wire, stageFixed, gateway, ret: entry >= 0, nodeCodecs, fwdPairs, backPairs, maxRatio,
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

/** compute seconds of blocks s..j on node w (their profiled times ÷ speed) */
export function segBlocks(I: Inst, w: number, s: number, j: number): number {
  const p = I.pre[w]!;
  return p[j + 1]! - p[s]!;
}

/** a stage's time on w without wire CPU: its blocks plus the node's per-request terms (call
 * overhead, fixed time); non-decreasing in j, which the solvers' windows rely on */
export function segComp(I: Inst, w: number, s: number, j: number): number {
  const p = I.pre[w]!;
  return p[j + 1]! - p[s]! + I.stageFixed[w]!;
}

/** bytes node w moves for a stage starting at block s: the input it receives (none from itself
 * as the entry) and the result it sends back to its caller */
export function stageInBytes(I: Inst, w: number, s: number): number {
  const first = s === 0 && (I.entry < 0 || I.entry === w);
  const input = s > 0 ? I.out[s - 1]! : first ? 0 : I.inputBytes;
  return I.ret && !first ? input + I.out[I.n - 1]! : input;
}

/** bytes node w moves for a stage ending at block j: its output to the next stage and the
 * result it receives back from there */
export function stageOutBytes(I: Inst, w: number, j: number): number {
  if (j >= I.n - 1) return 0;
  return I.ret ? I.out[j]! + I.out[I.n - 1]! : I.out[j]!;
}

/** CPU seconds node w spends moving a stage's input and output (s..j) */
export function segWire(I: Inst, w: number, s: number, j: number): number {
  const c = I.wire[w]!;
  return c === 0 ? 0 : c * (stageInBytes(I, w, s) + stageOutBytes(I, w, j));
}

/** a stage's time on node w: tierServiceS of src/plan/cost.ts (blocks, call overhead, fixed
 * time) plus the CPU for the bytes it moves */
export function stageTime(I: Inst, w: number, s: number, j: number): number {
  return segComp(I, w, s, j) + segWire(I, w, s, j);
}

/** seconds `bytes` keep the link v → w busy (src/plan/cost.ts hopBusyS; 0 when v = w,
 * Infinity without a link) */
export function linkTime(I: Inst, v: number, w: number, bytes: number, block = -1): number {
  if (v === w) return 0;
  const k = v * I.N + w;
  const b = I.bw[k]!;
  if (b === 0) return Infinity;
  if (I.entryCodec !== undefined && v === I.entry && block >= 0) {
    const ch = codecChoice(bytes, b, block, I.nodeCodecs[v], I.nodeCodecs[w], I.entryCodec, I.ovh[k]!);
    return ch ? ch.seconds : Infinity;
  }
  // with codecs (kerf place --codecs): the cheapest allowed one for this block's output
  if (block >= 0 && I.fwdPairs) return transferS(bytes, b, block, I.nodeCodecs[v], I.nodeCodecs[w], I.fwdPairs[k]!, I.ovh[k]!);
  return hopBusyS(bytes, b, undefined, I.ovh[k]!);
}

/** The codec the hop v → w uses for `bytes`, the output of `block`, and what it costs. */
export function linkChoice(I: Inst, v: number, w: number, bytes: number, block: number, back = false): HopChoice {
  const k = v * I.N + w;
  if (!back && I.entryCodec !== undefined && v === I.entry && block >= 0) {
    const ch = codecChoice(bytes, I.bw[k]!, block, I.nodeCodecs[v], I.nodeCodecs[w], I.entryCodec, I.ovh[k]!);
    if (ch) return ch;
  }
  const pairs = (back ? I.backPairs : I.fwdPairs)?.[k];
  return chooseCodec(bytes, I.bw[k]!, pairs ? block : -1, I.nodeCodecs[v], I.nodeCodecs[w], pairs ?? new Int32Array(0), I.ovh[k]!);
}

/** busy time of the result crossing the hop v → w backwards (0 when nothing comes back) */
export function backTime(I: Inst, v: number, w: number): number {
  if (!I.ret || v === w) return 0;
  const k = w * I.N + v;
  const b = I.bw[k]!;
  if (b === 0) return Infinity;
  const res = I.out[I.n - 1]!;
  if (I.backPairs) return transferS(res, b, I.n - 1, I.nodeCodecs[w], I.nodeCodecs[v], I.backPairs[k]!, I.ovh[k]!);
  return hopBusyS(res, b, undefined, I.ovh[k]!);
}

/** the larger busy time of the hop v → w's two directions: what must stay within a bottleneck */
export function hopBusy(I: Inst, v: number, w: number, bytes: number, block = -1): number {
  return Math.max(linkTime(I, v, w, bytes, block), backTime(I, v, w));
}

/** seconds the hop v → w adds to a request: `bytes` out and the result back, each direction
 * with half the round trip (src/plan/cost.ts hopS with hopLatencyS) */
export function hopLat(I: Inst, v: number, w: number, bytes: number, block = -1): number {
  if (v === w) return 0;
  const out = linkTime(I, v, w, bytes, block) + I.hop[v * I.N + w]!;
  return I.ret ? out + backTime(I, v, w) + I.hop[w * I.N + v]! : out;
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
  // the result comes back along the same links (each link carries both directions)
  if (I.entry >= 0 && segs[0]!.node !== I.entry && I.bw[I.entry * I.N + segs[0]!.node] === 0) return `no link from the entry to ${I.names[segs[0]!.node]}`;
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
  // a hop: the bytes out, and the result crossing it back
  const hop = (v: number, w: number, bytes: number, block: number): void => {
    if (v === w) return;
    lat += hopLat(I, v, w, bytes, block);
    consider(linkTime(I, v, w, bytes, block), 'link', () => `${I.names[v]} -> ${I.names[w]}`, true);
    if (I.ret) consider(backTime(I, v, w), 'link', () => `${I.names[w]} -> ${I.names[v]} (result)`, true);
  };
  if (I.entry >= 0) {
    const v = segs[0]!.node;
    if (v !== I.entry) {
      lat += I.gateway;
      consider(I.gateway, 'compute', () => `gateway on ${I.names[I.entry]}`, !I.comm);
    }
    hop(I.entry, v, I.inputBytes, -1);
  }
  for (let k = 0; k < K; k++) {
    const s = segs[k]!;
    const c = stageTime(I, s.node, s.first, s.last);
    lat += c;
    consider(c, 'compute', () => `stage ${k} on ${I.names[s.node]}`, !I.comm);
    if (k + 1 < K) hop(s.node, segs[k + 1]!.node, I.out[s.last]!, s.last);
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
    // the last stage sends the result back to its caller
    const caller = k > 0 ? segs[k - 1]!.node : I.entry >= 0 && I.entry !== s.node ? I.entry : -1;
    const to = k + 1 < K ? segs[k + 1]!.node : I.ret ? caller : -1;
    const sends = k + 1 < K ? I.out[s.last]! : I.out[I.n - 1]!;
    const extra = I.stageFixed[s.node]!;
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
      computeSeconds: segBlocks(I, s.node, s.first, s.last),
      ...(extra > 0 ? { overheadSeconds: extra } : {}),
      wireSeconds: segWire(I, s.node, s.first, s.last),
      speed: I.speed[s.node]!,
      ...(I.systems[s.node] !== undefined ? { system: I.systems[s.node]! } : {}),
      sendTo: to >= 0 ? I.names[to]! : null,
      sendSeconds: to < 0 ? 0 : k + 1 < K ? linkTime(I, s.node, to, sends, s.last) : backTime(I, to, s.node),
    };
  });
  const links: PlacementLink[] = [];
  const link = (v: number, w: number, bytes: number, kind: 'forward' | 'return', block: number): void => {
    if (v === w) return;
    const ch = linkChoice(I, v, w, bytes, block, kind === 'return');
    links.push({
      from: I.names[v]!, to: I.names[w]!, bytes, seconds: ch.seconds,
      bandwidthMbps: (I.bw[v * I.N + w]! * 8) / 1e6, rttMs: I.hop[v * I.N + w]! * 2000, kind,
      ...codedHopFields(ch),
    });
  };
  // forward hops in pipeline order, then the result's way back along them
  const chain = I.entry >= 0 ? [I.entry, ...segs.map((s) => s.node)] : segs.map((s) => s.node);
  const ends = I.entry >= 0 ? [-1, ...segs.map((s) => s.last)] : segs.map((s) => s.last);
  for (let i = 0; i + 1 < chain.length; i++) link(chain[i]!, chain[i + 1]!, ends[i]! < 0 ? I.inputBytes : I.out[ends[i]!]!, 'forward', ends[i]!);
  if (I.ret) for (let i = chain.length - 1; i > 0; i--) link(chain[i]!, chain[i - 1]!, I.out[I.n - 1]!, 'return', I.n - 1);
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
    ...(I.entry >= 0 && segs[0]!.node !== I.entry ? { gateway: { node: I.names[I.entry]!, seconds: I.gateway } } : {}),
    memoryModel: { margin: I.margin, overheadBytes: I.overheadBytes, activations: I.activations },
  };
}
