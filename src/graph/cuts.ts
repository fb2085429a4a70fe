import { kerfError } from '../errors.js';
import { tensorBytes, type DType } from './dtypes.js';
import { initializerNumel, initializerBytes, type Model } from './model.js';

/** Dtype and concrete dims of one tensor for a given input shape. */
export interface TensorInfo { dtype: DType; dims: number[] }
export type TensorInfos = ReadonlyMap<string, TensorInfo>;

/** One place the graph can be cut: after position `id` of the analysis order. */
export interface Cut {
  /** cut id: the cut falls after position `id` of `Analysis.order` (0-based) */
  id: number;
  /** the last node before the cut */
  after: string;
  /** tensors crossing the cut (activations and graph inputs still needed, graph outputs already made) */
  tensors: string[];
  /** total bytes of the crossing tensors */
  bytes: number;
  /** Scission's rule: exactly one tensor crosses */
  single: boolean;
  paramsBefore: number;
  paramsAfter: number;
  flopsBefore: number;
  flopsAfter: number;
}

export interface Block {
  index: number;
  /** first and last position in the analysis order */
  first: number;
  last: number;
  /** cut at the block's end (absent on the last block) */
  cutId?: number;
  nodes: string[];
  flops: number;
  params: number;
  paramBytes: number;
  /** bytes this block hands on: its end cut's crossing bytes, or the model outputs for the last block */
  outputBytes: number;
  outputTensors: string[];
}

export interface Analysis {
  /** indices into model.nodes of the non-constant nodes, in the chosen topological order */
  order: number[];
  /** how the order was chosen */
  orderStrategy: string;
  cuts: Cut[];
  /** per position in `order` */
  nodeFlops: number[];
  totals: { nodes: number; params: number; paramBytes: number; flops: number; inputBytes: number; outputBytes: number };
  tensors: TensorInfos;
}

export type Granularity = 'single' | 'all';

/** FLOPs (2 × multiply-accumulates) of Conv, ConvTranspose, Gemm and MatMul; 0 for other ops. */
export function nodeFlops(model: Model, nodeIndex: number, info: TensorInfos): number {
  const n = model.nodes[nodeIndex]!;
  const dimsOf = (t: string | undefined): number[] | undefined => {
    if (!t) return undefined;
    const i = info.get(t);
    if (i) return i.dims;
    const init = model.initializers.get(t);
    return init ? init.dims.map(Number) : undefined;
  };
  const out = dimsOf(n.outputs[0]);
  const prod = (a: number[]) => a.reduce((x, y) => x * y, 1);
  switch (n.opType) {
    case 'Conv': {
      const w = dimsOf(n.inputs[1]);
      if (!w || !out) return 0;
      return 2 * prod(out) * prod(w.slice(1)); // out elements × (Cin/g × kh × kw)
    }
    case 'ConvTranspose': {
      const w = dimsOf(n.inputs[1]);
      const x = dimsOf(n.inputs[0]);
      if (!w || !x) return 0;
      return 2 * prod(x) * prod(w.slice(1));
    }
    case 'Gemm': {
      const a = dimsOf(n.inputs[0]);
      if (!a || !out) return 0;
      const transA = n.proto.attribute.find((x) => x.name === 'transA')?.i ?? 0n;
      const k = transA ? a[0]! : a[1]!;
      return 2 * prod(out) * k;
    }
    case 'MatMul': {
      const a = dimsOf(n.inputs[0]);
      if (!a || !out) return 0;
      return 2 * prod(out) * a[a.length - 1]!;
    }
    default:
      return 0;
  }
}

/** Bytes of a tensor for the resolved shapes; throws naming it when unknown. */
function bytesOf(model: Model, info: TensorInfos, t: string): number {
  const i = info.get(t);
  if (!i) throw kerfError('KERF_ERR_SHAPE', `${model.source}: the shape of tensor '${t}' is unknown; pass --input-shape`);
  return tensorBytes(i.dtype, i.dims);
}

interface Span { name: string; from: number; to: number; bytes: number }

/** Live ranges of shipped tensors for an order: tensor crosses cuts from..to-1 (positions). */
function liveSpans(model: Model, order: number[], info: TensorInfos): Span[] {
  const pos = new Int32Array(model.nodes.length).fill(-2);
  order.forEach((k, p) => { pos[k] = p; });
  const n = order.length;
  const outputs = new Set(model.outputs.map((o) => o.name));
  const spans: Span[] = [];
  const consider = (name: string, from: number) => {
    let to = from;
    for (const c of model.consumers.get(name) ?? []) to = Math.max(to, pos[c]!);
    if (outputs.has(name)) to = n;
    if (to > from) spans.push({ name, from, to, bytes: bytesOf(model, info, name) });
  };
  for (const v of model.inputs) consider(v.name, -1);
  for (let p = 0; p < n; p++) for (const o of model.nodes[order[p]!]!.outputs) if (o) consider(o, p);
  return spans;
}

/** Sum over all cuts of crossing bytes: the quantity the order is chosen to keep small. */
function orderCost(spans: Span[], n: number): number {
  let s = 0;
  for (const sp of spans) s += sp.bytes * (Math.min(sp.to, n - 1) - Math.max(sp.from, 0));
  return s;
}

/** Memory-aware greedy schedule: among ready nodes run the one that adds the fewest live bytes. */
function greedyOrder(model: Model, main: number[], info: TensorInfos): number[] {
  const isMain = new Uint8Array(model.nodes.length);
  for (const k of main) isMain[k] = 1;
  const remaining = new Map<string, number>();
  const indeg = new Int32Array(model.nodes.length);
  const succ: number[][] = model.nodes.map(() => []);
  for (const k of main) {
    const node = model.nodes[k]!;
    const preds = new Set<number>();
    for (const t of new Set([...node.inputs, ...node.implicitInputs])) {
      if (!t) continue;
      const p = model.producer.get(t);
      if (p !== undefined && isMain[p]) preds.add(p);
      remaining.set(t, (remaining.get(t) ?? 0) + 1);
    }
    for (const p of preds) { succ[p]!.push(k); indeg[k]!++; }
  }
  const outputs = new Set(model.outputs.map((o) => o.name));
  const size = (t: string) => { const i = info.get(t); return i ? tensorBytes(i.dtype, i.dims) : 0; };
  const ready: number[] = main.filter((k) => indeg[k] === 0);
  const order: number[] = [];
  while (ready.length > 0) {
    let best = 0, bestScore = Infinity;
    for (let r = 0; r < ready.length; r++) {
      const node = model.nodes[ready[r]!]!;
      let score = 0;
      for (const o of node.outputs) if (o) score += size(o);
      for (const t of new Set([...node.inputs, ...node.implicitInputs])) {
        if (t && remaining.get(t) === 1 && !outputs.has(t) && !model.initializers.has(t)) {
          const p = model.producer.get(t);
          if (p === undefined || !model.nodes[p]!.constant) score -= size(t);
        }
      }
      if (score < bestScore || (score === bestScore && ready[r]! < ready[best]!)) { best = r; bestScore = score; }
    }
    const k = ready[best]!;
    ready.splice(best, 1);
    order.push(k);
    const node = model.nodes[k]!;
    for (const t of new Set([...node.inputs, ...node.implicitInputs])) if (t) remaining.set(t, remaining.get(t)! - 1);
    for (const s of succ[k]!) if (--indeg[s]! === 0) ready.push(s);
  }
  return order;
}

/** Depth-first schedule: finish the branch just started before starting another
 * (what exporters of sequential code usually produce, and what leaves single-tensor cuts). */
function depthFirstOrder(model: Model, main: number[]): number[] {
  const isMain = new Uint8Array(model.nodes.length);
  for (const k of main) isMain[k] = 1;
  const indeg = new Int32Array(model.nodes.length);
  const succ: number[][] = model.nodes.map(() => []);
  for (const k of main) {
    const preds = new Set<number>();
    const node = model.nodes[k]!;
    for (const t of [...node.inputs, ...node.implicitInputs]) {
      const p = t ? model.producer.get(t) : undefined;
      if (p !== undefined && isMain[p]) preds.add(p);
    }
    for (const p of preds) { succ[p]!.push(k); indeg[k]!++; }
  }
  const stack = main.filter((k) => indeg[k] === 0).reverse();
  const order: number[] = [];
  while (stack.length > 0) {
    const k = stack.pop()!;
    order.push(k);
    const ready = succ[k]!.filter((s) => --indeg[s]! === 0);
    ready.sort((a, b) => b - a);
    stack.push(...ready);
  }
  return order;
}

/**
 * Every cut of the model for the given tensor shapes. Constant nodes are left out of the
 * order (they are recomputed wherever consumed). Three topological orders are tried (file
 * order, depth-first, memory-greedy) and the one with the fewest crossing bytes summed over
 * all cuts is kept.
 */
export function analyzeCuts(model: Model, info: TensorInfos, opts: { order?: 'auto' | 'file' | 'depth' | 'greedy' } = {}): Analysis {
  const main = model.nodes.filter((n) => !n.constant).map((n) => n.index);
  const n = main.length;
  const which = opts.order ?? 'auto';
  const candidates: [string, number[]][] = [];
  if (which === 'auto' || which === 'file') candidates.push(['file', main]);
  if (which === 'auto' || which === 'depth') candidates.push(['depth', depthFirstOrder(model, main)]);
  if (which === 'auto' || which === 'greedy') candidates.push(['greedy', greedyOrder(model, main, info)]);
  let best: { name: string; order: number[]; spans: Span[]; cost: number } | null = null;
  for (const [name, order] of candidates) {
    const spans = liveSpans(model, order, info);
    const cost = orderCost(spans, n);
    if (!best || cost < best.cost) best = { name, order, spans, cost };
  }
  const { order, spans } = best!;

  // Crossing tensors per cut: sweep spans sorted by start.
  const crossing: string[][] = Array.from({ length: Math.max(0, n - 1) }, () => []);
  const bytes = new Float64Array(Math.max(0, n - 1));
  for (const sp of spans) {
    for (let c = Math.max(sp.from, 0); c < Math.min(sp.to, n - 1); c++) { crossing[c]!.push(sp.name); bytes[c]! += sp.bytes; }
  }

  // FLOPs per position and params: an initializer counts on each side that needs it.
  const flops = order.map((k) => nodeFlops(model, k, info));
  const pos = new Int32Array(model.nodes.length).fill(-1);
  order.forEach((k, p) => { pos[k] = p; });
  const initSpan = new Map<string, [number, number]>();
  const needs = constInitializers(model);
  for (let p = 0; p < n; p++) {
    for (const name of needs(order[p]!)) {
      const s = initSpan.get(name);
      if (!s) initSpan.set(name, [p, p]);
      else s[1] = p;
    }
  }
  const firstAt = new Float64Array(n + 1), lastAt = new Float64Array(n + 1);
  let totalParams = 0, totalParamBytes = 0;
  for (const [name, [f, l]] of initSpan) {
    const t = model.initializers.get(name)!;
    const cnt = initializerNumel(t);
    totalParams += cnt; totalParamBytes += initializerBytes(t);
    firstAt[f]! += cnt; lastAt[l]! += cnt;
  }
  const cuts: Cut[] = [];
  let flopsBefore = 0, paramsBefore = 0, paramsEndedBefore = 0;
  const totalFlops = flops.reduce((a, b) => a + b, 0);
  for (let c = 0; c < n - 1; c++) {
    flopsBefore += flops[c]!;
    paramsBefore += firstAt[c]!;
    paramsEndedBefore += lastAt[c]!;
    cuts.push({
      id: c, after: model.nodes[order[c]!]!.name, tensors: crossing[c]!, bytes: bytes[c]!, single: crossing[c]!.length === 1,
      paramsBefore, paramsAfter: totalParams - paramsEndedBefore, flopsBefore, flopsAfter: totalFlops - flopsBefore,
    });
  }
  const inputBytes = model.inputs.reduce((s, v) => s + bytesOf(model, info, v.name), 0);
  const outputBytes = model.outputs.reduce((s, v) => s + (info.has(v.name) ? bytesOf(model, info, v.name) : 0), 0);
  return {
    order, orderStrategy: best!.name, cuts, nodeFlops: flops,
    totals: { nodes: n, params: totalParams, paramBytes: totalParamBytes, flops: totalFlops, inputBytes, outputBytes },
    tensors: info,
  };
}

/** For a node, the initializers it needs directly or through constant nodes (memoised). */
export function constInitializers(model: Model): (nodeIndex: number) => string[] {
  const memo = new Map<number, string[]>();
  const ofTensor = (t: string, acc: Set<string>) => {
    if (!t) return;
    if (model.initializers.has(t)) { acc.add(t); return; }
    const p = model.producer.get(t);
    if (p !== undefined && model.nodes[p]!.constant) for (const x of ofNode(p)) acc.add(x);
  };
  const ofNode = (k: number): string[] => {
    let r = memo.get(k);
    if (r) return r;
    const acc = new Set<string>();
    const node = model.nodes[k]!;
    for (const t of node.inputs) ofTensor(t, acc);
    for (const t of node.implicitInputs) ofTensor(t, acc);
    r = [...acc];
    memo.set(k, r);
    return r;
  };
  return ofNode;
}

/** The cuts that bound blocks at a granularity: Scission's single-tensor cuts, or every cut. */
export function blockCuts(analysis: Analysis, granularity: Granularity): Cut[] {
  return granularity === 'all' ? analysis.cuts : analysis.cuts.filter((c) => c.single);
}

/** Blocks = spans between consecutive chosen cuts. */
export function blocksOf(model: Model, analysis: Analysis, cutIds: readonly number[]): Block[] {
  const ids = checkCutIds(model, analysis, cutIds);
  const n = analysis.order.length;
  const bounds = [-1, ...ids, n - 1];
  const needs = constInitializers(model);
  const blocks: Block[] = [];
  for (let b = 0; b + 1 < bounds.length; b++) {
    const first = bounds[b]! + 1, last = bounds[b + 1]!;
    const inits = new Set<string>();
    let flops = 0;
    const names: string[] = [];
    for (let p = first; p <= last; p++) {
      flops += analysis.nodeFlops[p]!;
      names.push(model.nodes[analysis.order[p]!]!.name);
      for (const i of needs(analysis.order[p]!)) inits.add(i);
    }
    let params = 0, paramBytes = 0;
    for (const i of inits) { const t = model.initializers.get(i)!; params += initializerNumel(t); paramBytes += initializerBytes(t); }
    const isLast = b + 2 === bounds.length;
    const cut = isLast ? undefined : analysis.cuts[last]!;
    blocks.push({
      index: b, first, last, ...(cut ? { cutId: cut.id } : {}), nodes: names, flops, params, paramBytes,
      outputBytes: cut ? cut.bytes : analysis.totals.outputBytes,
      outputTensors: cut ? cut.tensors : model.outputs.map((o) => o.name),
    });
  }
  return blocks;
}

/** Validates cut ids (known, strictly increasing) and returns them. */
export function checkCutIds(model: Model, analysis: Analysis, cutIds: readonly number[]): number[] {
  const max = analysis.cuts.length - 1;
  let prev = -1;
  for (const id of cutIds) {
    if (!Number.isInteger(id) || id < 0 || id > max) {
      throw kerfError('KERF_ERR_CUT', `${model.source}: unknown cut id ${id} (valid ids are 0..${max}; see \`kerf inspect\`)`);
    }
    if (id <= prev) throw kerfError('KERF_ERR_CUT', `${model.source}: cut ids must be strictly increasing (got ${cutIds.join(',')})`);
    prev = id;
  }
  return [...cutIds];
}
