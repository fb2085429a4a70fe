import { clone, create, fromBinary } from '@bufbuild/protobuf';
import {
  ModelProtoSchema, TensorProtoSchema, TensorProto_DataLocation, TensorProto_DataType,
  type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from 'onnx-buf';
import { kerfError } from '../errors.js';
import { dtypeFromOnnx, dtypeSize, type DType } from './dtypes.js';

/** A dimension as declared in the model: a size, a symbolic name, or unknown (null). */
export type Dim = number | string | null;

export interface TensorType { dtype: DType; dims: Dim[] | null }

export interface ValueRef { name: string; type: TensorType | null }

/** One node of the normalised graph. */
export interface GraphNode {
  /** position in the normalised topological order */
  index: number;
  name: string;
  opType: string;
  domain: string;
  /** input tensor names ('' marks an omitted optional input) */
  inputs: string[];
  outputs: string[];
  /** tensors of the enclosing graph read inside this node's subgraphs (If, Loop, Scan bodies) */
  implicitInputs: string[];
  /** true when the node computes from initializers alone: such values are recomputed on the
   * consuming side of a cut, never shipped */
  constant: boolean;
  proto: NodeProto;
}

/** The graph IR: normalised (Constant nodes folded into initializers, nodes topologically
 * sorted, unused initializers dropped), with the original protobuf kept for exact output. */
export interface Model {
  name: string;
  /** where the model came from, for error messages */
  source: string;
  proto: ModelProto;
  nodes: GraphNode[];
  inputs: ValueRef[];
  outputs: ValueRef[];
  initializers: Map<string, TensorProto>;
  /** tensor name → index of the node producing it */
  producer: Map<string, number>;
  /** tensor name → indices of nodes reading it (directly or from a subgraph) */
  consumers: Map<string, number[]>;
  opsets: Map<string, number>;
  /** some weights were read from external data files (now inlined) */
  externalData: boolean;
}

export interface ParseOptions {
  /** model name (default: the graph's name) */
  name?: string;
  /** shown in errors, usually the file path */
  source?: string;
  /** resolves a tensor's external data file (relative `location`) to its bytes */
  externalData?: (location: string) => Uint8Array;
}

const NONDETERMINISTIC = new Set(['RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

/** Parse ONNX bytes into the normalised IR. Throws KERF_ERR_ONNX_PARSE / KERF_ERR_GRAPH naming `source`. */
export function parseModel(bytes: Uint8Array, opts: ParseOptions = {}): Model {
  const source = opts.source ?? opts.name ?? 'model';
  if (bytes.length === 0) throw kerfError('KERF_ERR_ONNX_PARSE', `${source}: the file is empty (0 bytes), not an ONNX model`);
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    throw kerfError('KERF_ERR_ONNX_PARSE', `${source}: not a valid ONNX model (${(e as Error).message})`);
  }
  const g = proto.graph;
  if (!g || proto.irVersion <= 0n || (g.node.length === 0 && g.output.length === 0)) {
    const missing = !g ? 'it has no graph' : proto.irVersion <= 0n ? 'it has no IR version' : 'its graph has no nodes and no outputs';
    throw kerfError('KERF_ERR_ONNX_PARSE', `${source}: not an ONNX model (${missing}; ${bytes.length} bytes read)`);
  }
  const opsets = new Map<string, number>();
  for (const o of proto.opsetImport) opsets.set(o.domain === 'ai.onnx' ? '' : o.domain, Number(o.version));

  // Initializers, external data inlined so every part written later is standalone.
  const initializers = new Map<string, TensorProto>();
  let externalData = false;
  for (const t of g.initializer) {
    if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) { inlineExternal(t, source, opts.externalData); externalData = true; }
    initializers.set(t.name, t);
  }
  // Constant nodes become initializers.
  const kept: NodeProto[] = [];
  for (const n of g.node) {
    const t = n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx') ? constantToTensor(n) : null;
    if (t) {
      if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) inlineExternal(t, source, opts.externalData);
      initializers.set(t.name, t);
    } else kept.push(n);
  }

  const inputs: ValueRef[] = g.input.filter((v) => !initializers.has(v.name)).map(valueRef);
  const outputs: ValueRef[] = g.output.map(valueRef);
  const graphInputs = new Set(inputs.map((v) => v.name));

  // Producers; names must be unique.
  const producerOf = new Map<string, number>();
  kept.forEach((n, i) => {
    for (const o of n.output) {
      if (!o) continue;
      if (producerOf.has(o) || graphInputs.has(o) || initializers.has(o)) {
        throw kerfError('KERF_ERR_GRAPH', `${source}: tensor '${o}' is produced twice (node '${nodeLabel(n, i)}')`);
      }
      producerOf.set(o, i);
    }
  });
  const implicit = kept.map((n) => subgraphOuterNames(n));
  const known = (t: string) => producerOf.has(t) || graphInputs.has(t) || initializers.has(t);
  kept.forEach((n, i) => {
    for (const t of n.input) {
      if (t && !known(t)) throw kerfError('KERF_ERR_GRAPH', `${source}: node '${nodeLabel(n, i)}' input '${t}' has no producer and no initializer`);
    }
    for (const t of implicit[i]!) {
      if (!known(t)) throw kerfError('KERF_ERR_GRAPH', `${source}: node '${nodeLabel(n, i)}' subgraph reads '${t}', which has no producer and no initializer`);
    }
  });
  for (const o of outputs) {
    if (!known(o.name)) throw kerfError('KERF_ERR_GRAPH', `${source}: graph output '${o.name}' is produced by no node`);
  }

  // Topological sort, stable: among ready nodes the earliest in the file goes first.
  const order = topoOrder(kept.length, (i) => [...kept[i]!.input, ...implicit[i]!], producerOf, (stuck) => {
    throw kerfError('KERF_ERR_GRAPH', `${source}: the graph has a cycle through node '${nodeLabel(kept[stuck]!, stuck)}'`);
  });

  const nodes: GraphNode[] = order.map((k, index) => {
    const n = kept[k]!;
    return {
      index, name: n.name || `${n.opType}_${k}`, opType: n.opType, domain: n.domain === 'ai.onnx' ? '' : n.domain,
      inputs: [...n.input], outputs: [...n.output], implicitInputs: implicit[k]!, constant: false, proto: n,
    };
  });
  const producer = new Map<string, number>();
  for (const n of nodes) for (const o of n.outputs) if (o) producer.set(o, n.index);
  const consumers = new Map<string, number[]>();
  for (const n of nodes) {
    for (const t of new Set([...n.inputs, ...n.implicitInputs])) {
      if (!t) continue;
      let list = consumers.get(t);
      if (!list) consumers.set(t, (list = []));
      list.push(n.index);
    }
  }
  // Constant propagation over the sorted order.
  const isConst = (t: string) => !t || initializers.has(t) || (producer.has(t) && nodes[producer.get(t)!]!.constant);
  for (const n of nodes) {
    const hasSubgraph = n.proto.attribute.some((a) => a.g || a.graphs.length > 0);
    n.constant = !hasSubgraph && !NONDETERMINISTIC.has(n.opType) && n.inputs.some((t) => t !== '') &&
      n.inputs.every(isConst) && n.implicitInputs.length === 0;
  }
  // Drop unused initializers.
  const outputNames = new Set(outputs.map((o) => o.name));
  for (const name of [...initializers.keys()]) {
    if (!consumers.has(name) && !outputNames.has(name)) initializers.delete(name);
  }
  return {
    name: opts.name ?? (g.name || 'model'), source, proto, nodes, inputs, outputs, initializers, producer, consumers, opsets, externalData,
  };
}

/** Kahn's algorithm; ties broken by index (stable). Calls onCycle with a node left over. */
export function topoOrder(
  count: number, inputsOf: (i: number) => string[], producerOf: Map<string, number>, onCycle: (stuck: number) => never,
): number[] {
  const indeg = new Int32Array(count);
  const succ: number[][] = Array.from({ length: count }, () => []);
  for (let i = 0; i < count; i++) {
    const seen = new Set<number>();
    for (const t of inputsOf(i)) {
      const p = t ? producerOf.get(t) : undefined;
      if (p === undefined || seen.has(p)) continue;
      seen.add(p);
      succ[p]!.push(i);
      indeg[i]!++;
    }
  }
  const heap = new MinHeap();
  for (let i = 0; i < count; i++) if (indeg[i] === 0) heap.push(i);
  const order: number[] = [];
  while (heap.size > 0) {
    const i = heap.pop();
    order.push(i);
    for (const s of succ[i]!) if (--indeg[s]! === 0) heap.push(s);
  }
  if (order.length !== count) {
    for (let i = 0; i < count; i++) if (indeg[i]! > 0) onCycle(i);
  }
  return order;
}

class MinHeap {
  private a: number[] = [];
  get size() { return this.a.length; }
  push(v: number) {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!; i = p;
    }
    a[i] = v;
  }
  pop(): number {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i, mv = last;
        if (l < a.length && a[l]! < mv) { m = l; mv = a[l]!; }
        if (r < a.length && a[r]! < mv) { m = r; mv = a[r]!; }
        if (m === i) break;
        a[i] = a[m]!; i = m;
      }
      a[i] = last;
    }
    return top;
  }
}

function nodeLabel(n: NodeProto, i: number): string { return n.name || `${n.opType} #${i}`; }

export function valueRef(v: ValueInfoProto): ValueRef {
  return { name: v.name, type: tensorTypeOf(v) };
}

export function tensorTypeOf(v: ValueInfoProto): TensorType | null {
  const t = v.type?.value;
  if (!t || v.type?.value.case !== 'tensorType') return null;
  const tt = t.value as { elemType: number; shape?: { dim: { value: { case?: string; value?: unknown } }[] } };
  const dtype = dtypeFromOnnx(tt.elemType);
  if (!dtype) return null;
  const dims = tt.shape ? tt.shape.dim.map((d): Dim =>
    d.value.case === 'dimValue' ? Number(d.value.value as bigint) : d.value.case === 'dimParam' ? String(d.value.value) : null) : null;
  return { dtype, dims };
}

/** Names read inside a node's subgraphs that the subgraphs do not define themselves. */
function subgraphOuterNames(n: NodeProto): string[] {
  const out = new Set<string>();
  for (const a of n.attribute) {
    for (const sg of a.g ? [a.g, ...a.graphs] : a.graphs) collectOuter(sg, new Set(), out);
  }
  return [...out];
}

function collectOuter(g: GraphProto, outerDefined: Set<string>, out: Set<string>): void {
  const defined = new Set(outerDefined);
  for (const v of g.input) defined.add(v.name);
  for (const t of g.initializer) defined.add(t.name);
  for (const n of g.node) for (const o of n.output) if (o) defined.add(o);
  for (const n of g.node) {
    for (const t of n.input) if (t && !defined.has(t)) out.add(t);
    for (const a of n.attribute) for (const sg of a.g ? [a.g, ...a.graphs] : a.graphs) collectOuter(sg, defined, out);
  }
  for (const v of g.output) if (!defined.has(v.name)) out.add(v.name);
}

function inlineExternal(t: TensorProto, source: string, read: ParseOptions['externalData']): void {
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = kv.get('location');
  if (!location) throw kerfError('KERF_ERR_ONNX_PARSE', `${source}: initializer '${t.name}' has external data without a location`);
  if (!read) throw kerfError('KERF_ERR_FILE', `${source}: initializer '${t.name}' keeps its data in '${location}', which cannot be read here`);
  const file = read(location);
  const offset = Number(kv.get('offset') ?? '0');
  const length = kv.has('length') ? Number(kv.get('length')) : file.length - offset;
  if (offset + length > file.length) {
    throw kerfError('KERF_ERR_ONNX_PARSE', `${source}: initializer '${t.name}' wants bytes ${offset}..${offset + length} of '${location}', which has ${file.length}`);
  }
  t.rawData = file.subarray(offset, offset + length) as Uint8Array<ArrayBuffer>;
  t.dataLocation = TensorProto_DataLocation.DEFAULT;
  t.externalData = [];
}

/** A Constant node's value as an initializer named after its output, or null when kept as a node. */
function constantToTensor(n: NodeProto): TensorProto | null {
  const name = n.output[0];
  if (!name) return null;
  const a: AttributeProto | undefined = n.attribute[0];
  if (!a || n.attribute.length !== 1) return null;
  const T = TensorProto_DataType;
  const make = (dataType: number, dims: number[], fill: Pick<Partial<TensorProto>, 'floatData' | 'int64Data' | 'stringData'>) =>
    create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), ...fill } as Parameters<typeof create<typeof TensorProtoSchema>>[1]);
  switch (a.name) {
    case 'value': {
      if (!a.t) return null;
      const t = clone(TensorProtoSchema, a.t);
      t.name = name;
      return t;
    }
    case 'value_float': return make(T.FLOAT, [], { floatData: [a.f] });
    case 'value_floats': return make(T.FLOAT, [a.floats.length], { floatData: [...a.floats] });
    case 'value_int': return make(T.INT64, [], { int64Data: [a.i] });
    case 'value_ints': return make(T.INT64, [a.ints.length], { int64Data: [...a.ints] });
    case 'value_string': return make(T.STRING, [], { stringData: [a.s] });
    case 'value_strings': return make(T.STRING, [a.strings.length], { stringData: [...a.strings] });
    default: return null;
  }
}

/** Bytes of weight data an initializer holds. */
export function initializerBytes(t: TensorProto): number {
  if (t.rawData.length > 0) return t.rawData.length;
  const dtype = dtypeFromOnnx(t.dataType);
  if (!dtype) return 0;
  if (dtype === 'string') return t.stringData.reduce((s, b) => s + b.length, 0);
  return Math.ceil(initializerNumel(t) * dtypeSize(dtype));
}

export function initializerNumel(t: TensorProto): number {
  let n = 1;
  for (const d of t.dims) n *= Number(d);
  return n;
}

