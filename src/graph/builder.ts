/**
 * A small typed ONNX model builder: tests and the model zoo make real models with it.
 * It writes protobuf through onnx-buf (int64 as bigint) and never touches a file or the clock.
 */
import { clearField, create, isFieldSet, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema, AttributeProto_AttributeType as AT, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema,
  OperatorSetIdProtoSchema, StringStringEntryProtoSchema, TensorProtoSchema, TensorProto_DataLocation,
  TensorShapeProtoSchema, TensorShapeProto_DimensionSchema, TypeProtoSchema, TypeProto_TensorSchema, ValueInfoProtoSchema,
  type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from 'onnx-buf';
import { kerfError } from '../errors.js';
import { dtypeSize, dtypeToOnnx, halfBits, type DType } from './dtypes.js';
import type { Dim } from './model.js';

/** Element types the builder can encode from JS values (the graph room's DType minus complex and sub-byte types). */
export type BuilderDType =
  | 'float32' | 'float16' | 'bfloat16' | 'float64'
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'bool' | 'string';

const ENCODABLE = new Set<DType>(['float32', 'float16', 'bfloat16', 'float64', 'int8', 'int16', 'int32', 'int64',
  'uint8', 'uint16', 'uint32', 'uint64', 'bool', 'string']);

function checkDType(dtype: DType, what: string): void {
  if (!ENCODABLE.has(dtype)) throw kerfError('KERF_ERR_GRAPH', `${what}: the builder cannot encode ${dtype} values`);
}

/** Element values of a tensor. Numbers for float and small int types, bigint or number for 64-bit ints. */
export type TensorData =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array
  | BigInt64Array | BigUint64Array
  | readonly number[] | readonly bigint[] | readonly boolean[] | readonly string[];

/** Data now, or a function producing it when the model is serialised (keeps big zoo models cheap to describe). */
export type TensorSource = TensorData | (() => TensorData);

/** Explicit attribute forms, for when a plain JS number would be ambiguous (1 as INT or FLOAT?). */
export type ExplicitAttr =
  | { i: number | bigint } | { f: number } | { s: string }
  | { ints: readonly (number | bigint)[] } | { floats: readonly number[] } | { strings: readonly string[] }
  | { t: TensorProto } | { g: GraphBuilder | GraphProto } | { graphs: readonly (GraphBuilder | GraphProto)[] };

/**
 * An attribute value. Plain numbers are INT when integral, FLOAT otherwise, except for names that are
 * FLOAT in the ONNX operator set (alpha, beta, epsilon, …) which are always FLOAT; use `attr.*` to be explicit.
 */
export type AttrValue =
  | number | bigint | string | readonly number[] | readonly bigint[] | readonly string[]
  | TensorProto | GraphBuilder | GraphProto | ExplicitAttr;

/** Helpers that make an attribute's type explicit. */
export const attr = Object.freeze({
  int: (v: number | bigint): ExplicitAttr => ({ i: v }),
  float: (v: number): ExplicitAttr => ({ f: v }),
  string: (v: string): ExplicitAttr => ({ s: v }),
  ints: (v: readonly (number | bigint)[]): ExplicitAttr => ({ ints: v }),
  floats: (v: readonly number[]): ExplicitAttr => ({ floats: v }),
  strings: (v: readonly string[]): ExplicitAttr => ({ strings: v }),
  tensor: (v: TensorProto): ExplicitAttr => ({ t: v }),
  graph: (v: GraphBuilder | GraphProto): ExplicitAttr => ({ g: v }),
});

// Attribute names whose ONNX type is FLOAT(S) wherever they occur in the default domain, so `alpha: 1` stays a float.
const FLOAT_ATTRS = new Set(['alpha', 'beta', 'gamma', 'epsilon', 'momentum', 'lambd', 'bias', 'ratio', 'scale',
  'spatial_scale', 'threshold', 'min', 'max', 'value_float', 'mean', 'high', 'low', 'seed', 'extrapolation_value',
  'cubic_coeff_a']);
const FLOATS_ATTRS = new Set(['value_floats', 'scales', 'coefficients']);

/** Highest IR version each opset needs (onnx/helper.py VERSION_TABLE). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 9) return 4;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** float32 → IEEE half bits, round to nearest even. */
export function toFloat16Bits(v: number): number {
  return halfBits(new Uint32Array(new Float32Array([v]).buffer)[0]!);
}

function toBFloat16Bits(v: number): number {
  const x = new Uint32Array(new Float32Array([v]).buffer)[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function checkDims(dims: readonly Dim[], what: string, allowSymbolic: boolean): void {
  for (const d of dims) {
    if (typeof d === 'number' ? !(Number.isInteger(d) && d >= 0) : !allowSymbolic) {
      throw kerfError('KERF_ERR_SHAPE', `${what}: dimension ${JSON.stringify(d)} must be a non-negative integer`);
    }
  }
}

/** Encodes tensor data as little-endian raw bytes (ONNX raw_data); strings are not raw and rejected here. */
export function encodeRaw(dtype: DType, data: TensorData, what = 'tensor', copy = true): Uint8Array {
  checkDType(dtype, what);
  if (dtype === 'string') throw kerfError('KERF_ERR_GRAPH', `${what}: string tensors have no raw_data`);
  const n = data.length;
  const size = dtypeSize(dtype);
  // Fast path: a typed array of exactly the element type on a little-endian host is already raw_data.
  if (LITTLE_ENDIAN && ArrayBuffer.isView(data)) {
    const same = (dtype === 'float32' && data instanceof Float32Array) || (dtype === 'float64' && data instanceof Float64Array) ||
      (dtype === 'int8' && data instanceof Int8Array) || (dtype === 'int16' && data instanceof Int16Array) ||
      (dtype === 'int32' && data instanceof Int32Array) || ((dtype === 'uint8' || dtype === 'bool') && data instanceof Uint8Array) ||
      (dtype === 'uint16' && data instanceof Uint16Array) || (dtype === 'uint32' && data instanceof Uint32Array) ||
      (dtype === 'int64' && data instanceof BigInt64Array) || (dtype === 'uint64' && data instanceof BigUint64Array);
    if (same) {
      const v = data as ArrayBufferView;
      return copy ? new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  const out = new Uint8Array(n * size);
  const dv = new DataView(out.buffer);
  const src = data as ArrayLike<number | bigint | boolean | string>;
  for (let k = 0; k < n; k++) {
    const v = src[k];
    if (typeof v === 'string') throw kerfError('KERF_ERR_GRAPH', `${what}: string value in a ${dtype} tensor`);
    const o = k * size;
    switch (dtype) {
      case 'float32': dv.setFloat32(o, Number(v), true); break;
      case 'float64': dv.setFloat64(o, Number(v), true); break;
      case 'float16': dv.setUint16(o, toFloat16Bits(Number(v)), true); break;
      case 'bfloat16': dv.setUint16(o, toBFloat16Bits(Number(v)), true); break;
      case 'int8': dv.setInt8(o, Number(v)); break;
      case 'uint8': dv.setUint8(o, Number(v)); break;
      case 'bool': dv.setUint8(o, v ? 1 : 0); break;
      case 'int16': dv.setInt16(o, Number(v), true); break;
      case 'uint16': dv.setUint16(o, Number(v), true); break;
      case 'int32': dv.setInt32(o, Number(v), true); break;
      case 'uint32': dv.setUint32(o, Number(v), true); break;
      case 'int64': dv.setBigInt64(o, BigInt(v as number | bigint), true); break;
      case 'uint64': dv.setBigUint64(o, BigInt(v as number | bigint), true); break;
    }
  }
  return out;
}

/** A TensorProto with raw_data (or string_data for strings); checks that data matches dims. */
export function tensorProto(name: string, dtype: DType, dims: readonly number[], data: TensorData, copy = true): TensorProto {
  checkDims(dims, `tensor '${name}'`, false);
  const n = elementCount(dims);
  if (data.length !== n) {
    throw kerfError('KERF_ERR_SHAPE', `tensor '${name}': ${data.length} values for dims [${dims.join(',')}] (${n} elements)`);
  }
  checkDType(dtype, `tensor '${name}'`);
  const t = create(TensorProtoSchema, { name, dataType: dtypeToOnnx(dtype), dims: dims.map((d) => BigInt(d)) });
  if (dtype === 'string') t.stringData = (data as readonly string[]).map((s) => new TextEncoder().encode(String(s)));
  else t.rawData = encodeRaw(dtype, data, `tensor '${name}'`, copy) as Uint8Array<ArrayBuffer>;
  return t;
}

/** A ValueInfoProto for a tensor; omit dims to leave the shape unknown. */
export function valueInfoProto(name: string, dtype: DType, dims?: readonly Dim[]): ValueInfoProto {
  const tensorType = create(TypeProto_TensorSchema, { elemType: dtypeToOnnx(dtype) });
  if (dims) {
    checkDims(dims, `value '${name}'`, true);
    tensorType.shape = create(TensorShapeProtoSchema, {
      dim: dims.map((d) => {
        const dim = create(TensorShapeProto_DimensionSchema);
        if (typeof d === 'number') dim.value = { case: 'dimValue', value: BigInt(d) };
        else if (typeof d === 'string') dim.value = { case: 'dimParam', value: d };
        return dim;
      }),
    });
  }
  return create(ValueInfoProtoSchema, { name, type: create(TypeProtoSchema, { value: { case: 'tensorType', value: tensorType } }) });
}

function isMessage(v: unknown, typeName: string): boolean {
  return typeof v === 'object' && v !== null && (v as { $typeName?: string }).$typeName === typeName;
}

function isIntegral(v: number | bigint): boolean {
  return typeof v === 'bigint' || Number.isInteger(v);
}

function toInt(v: number | bigint, what: string): bigint {
  if (!isIntegral(v)) throw kerfError('KERF_ERR_GRAPH', `${what}: ${v} is not an integer`);
  return BigInt(v);
}

function graphOf(g: GraphBuilder | GraphProto): GraphProto {
  return g instanceof GraphBuilder ? g.toGraphProto() : g;
}

/** Builds an AttributeProto from a JS value, inferring its type (see AttrValue). */
export function attributeProto(name: string, value: AttrValue, where = 'node'): AttributeProto {
  const what = `${where} attribute '${name}'`;
  const a = create(AttributeProtoSchema, { name });
  const v = value as unknown;
  if (typeof v === 'number') {
    if (FLOAT_ATTRS.has(name) || !Number.isInteger(v)) { a.type = AT.FLOAT; a.f = v; } else { a.type = AT.INT; a.i = BigInt(v); }
  } else if (typeof v === 'bigint') { a.type = AT.INT; a.i = v; }
  else if (typeof v === 'string') { a.type = AT.STRING; a.s = new TextEncoder().encode(v) as Uint8Array<ArrayBuffer>; }
  else if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) {
      a.type = AT.STRINGS; a.strings = (v as string[]).map((s) => new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>);
    } else if (v.every((x) => typeof x === 'number' || typeof x === 'bigint')) {
      const nums = v as (number | bigint)[];
      if (!FLOATS_ATTRS.has(name) && nums.every(isIntegral)) { a.type = AT.INTS; a.ints = nums.map((x) => BigInt(x)); }
      else if (nums.every((x) => typeof x === 'number')) { a.type = AT.FLOATS; a.floats = nums as number[]; }
      else throw kerfError('KERF_ERR_GRAPH', `${what}: mixes bigint and fractional numbers`);
    } else throw kerfError('KERF_ERR_GRAPH', `${what}: arrays must hold only numbers, bigints or strings`);
  } else if (v instanceof GraphBuilder || isMessage(v, 'onnx.GraphProto')) { a.type = AT.GRAPH; a.g = graphOf(v as GraphBuilder | GraphProto); }
  else if (isMessage(v, 'onnx.TensorProto')) { a.type = AT.TENSOR; a.t = v as TensorProto; }
  else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length !== 1) throw kerfError('KERF_ERR_GRAPH', `${what}: explicit form needs exactly one key (i, f, s, ints, floats, strings, t, g, graphs)`);
    const e = o as Partial<Record<string, unknown>>;
    switch (keys[0]) {
      case 'i': a.type = AT.INT; a.i = toInt(e.i as number | bigint, what); break;
      case 'f': a.type = AT.FLOAT; a.f = Number(e.f); break;
      case 's': a.type = AT.STRING; a.s = new TextEncoder().encode(String(e.s)) as Uint8Array<ArrayBuffer>; break;
      case 'ints': a.type = AT.INTS; a.ints = (e.ints as (number | bigint)[]).map((x) => toInt(x, what)); break;
      case 'floats': a.type = AT.FLOATS; a.floats = (e.floats as number[]).map(Number); break;
      case 'strings': a.type = AT.STRINGS; a.strings = (e.strings as string[]).map((s) => new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>); break;
      case 't': a.type = AT.TENSOR; a.t = e.t as TensorProto; break;
      case 'g': a.type = AT.GRAPH; a.g = graphOf(e.g as GraphBuilder | GraphProto); break;
      case 'graphs': a.type = AT.GRAPHS; a.graphs = (e.graphs as (GraphBuilder | GraphProto)[]).map(graphOf); break;
      default: throw kerfError('KERF_ERR_GRAPH', `${what}: unknown explicit form '${keys[0]}'`);
    }
  } else throw kerfError('KERF_ERR_GRAPH', `${what}: unsupported value ${String(v)}`);
  return a;
}

/** Whether a proto carries initializer data (default) or only the structure. */
export interface StructureOptions { data?: boolean }

/** Options of one node. */
export interface NodeOptions { name?: string; domain?: string; docString?: string }

interface NodeSpec { opType: string; inputs: string[]; outputs: string[]; attrs: Record<string, AttrValue>; name: string; domain: string; docString?: string }
interface InitSpec { name: string; dtype: DType; dims: number[]; source: TensorSource }

export { mulberry32 } from '../util/prng.js';
import { mulberry32 } from '../util/prng.js';

/** FNV-1a of a string mixed with a seed: gives each named tensor its own stream, independent of build order. */
export function seedFor(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let k = 0; k < name.length; k++) h = Math.imul(h ^ name.charCodeAt(k), 0x01000193) >>> 0;
  return Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
}

/** Seeded random numbers and weight initialisers. */
export class Rng {
  private state: number;
  constructor(seed: number) { this.state = seed >>> 0; }
  /** Uniform in [0, 1): mulberry32, the same sequence as `mulberry32(seed)`. */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  private next(): number { return this.uniform(); }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  /** n normal values with the given standard deviation and mean. */
  normals(n: number, std = 1, mean = 0): Float32Array {
    const out = new Float32Array(n);
    for (let k = 0; k < n; k++) out[k] = mean + std * this.normal();
    return out;
  }
  /** n uniform values in [lo, hi) (the loop inlines mulberry32: VGG's 138 M weights are made in about a second). */
  uniforms(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    const w = (hi - lo) / 4294967296;
    let s = this.state;
    for (let k = 0; k < n; k++) {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = Math.imul(s ^ (s >>> 15), s | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      out[k] = lo + w * ((t ^ (t >>> 14)) >>> 0);
    }
    this.state = s;
    return out;
  }
  /**
   * Kaiming/He-uniform weights for dims [out, in/groups, ...kernel] (or a Gemm weight [out, in] with transB):
   * variance gain/fan_in, so gain 2 keeps the second moment of activations through Conv→ReLU stacks,
   * gain 1 through linear layers.
   */
  he(dims: readonly number[], gain = 2): Float32Array {
    const a = Math.sqrt(3 * gain / fanIn(dims));
    return this.uniforms(elementCount(dims), -a, a);
  }
}

/** Fan-in of a weight with dims [out, in, ...kernel]: the product of all dims but the first. */
export function fanIn(dims: readonly number[]): number {
  return Math.max(1, elementCount(dims.slice(1)));
}

/**
 * Builds one ONNX graph: inputs, outputs, initializers and nodes, in any order (nodes need not be sorted).
 * Subgraphs for If/Loop/Scan are GraphBuilders passed as attribute values.
 */
export class GraphBuilder {
  readonly name: string;
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: { name: string; dtype?: DType; dims?: readonly Dim[] }[] = [];
  private readonly valueInfos = new Map<string, ValueInfoProto>();
  private readonly inits: InitSpec[] = [];
  private nodes: NodeSpec[] = [];
  private readonly produced = new Map<string, string>();
  private readonly types = new Map<string, { dtype: DType; dims: readonly Dim[] | undefined }>();
  private readonly nodeNames = new Set<string>();
  private auto = 0;

  constructor(name: string) { this.name = name; }

  private claim(name: string, by: string): void {
    if (!name) throw kerfError('KERF_ERR_GRAPH', `graph '${this.name}': ${by} has an empty tensor name`);
    const prev = this.produced.get(name);
    if (prev) throw kerfError('KERF_ERR_GRAPH', `graph '${this.name}': tensor '${name}' produced twice (${prev} and ${by})`);
    this.produced.set(name, by);
  }

  /** A graph input; dims may hold strings for dynamic dimensions. Returns the name. */
  input(name: string, dtype: DType, dims?: readonly Dim[]): string {
    const vi = valueInfoProto(name, dtype, dims);
    this.claim(name, `input '${name}'`);
    this.inputs.push(vi);
    this.types.set(name, { dtype, dims });
    return name;
  }

  /** A graph output. Without dtype, the type comes from an input, initializer, Constant or valueInfo of that name, else is left for the runtime to infer. */
  output(name: string, dtype?: DType, dims?: readonly Dim[]): string {
    if (this.outputs.some((o) => o.name === name)) throw kerfError('KERF_ERR_GRAPH', `graph '${this.name}': output '${name}' declared twice`);
    const o: { name: string; dtype?: DType; dims?: readonly Dim[] } = { name };
    if (dtype !== undefined) o.dtype = dtype;
    if (dims !== undefined) o.dims = dims;
    this.outputs.push(o);
    return name;
  }

  /** Shape annotation of an intermediate tensor (graph.value_info). */
  valueInfo(name: string, dtype: DType, dims?: readonly Dim[]): string {
    this.valueInfos.set(name, valueInfoProto(name, dtype, dims));
    this.types.set(name, { dtype, dims });
    return name;
  }

  /** A weight stored as raw little-endian data; `data` may be a function called at serialisation. Returns the name. */
  initializer(name: string, dtype: DType, dims: readonly number[], data: TensorSource): string {
    checkDims(dims, `initializer '${name}'`, false);
    checkDType(dtype, `initializer '${name}'`);
    if (typeof data !== 'function' && data.length !== elementCount(dims)) {
      throw kerfError('KERF_ERR_SHAPE', `initializer '${name}': ${data.length} values for dims [${dims.join(',')}]`);
    }
    this.claim(name, `initializer '${name}'`);
    this.inits.push({ name, dtype, dims: [...dims], source: data });
    this.types.set(name, { dtype, dims });
    return name;
  }

  /**
   * A node. `outputs` is a list of names, or a count for generated names. Inputs may be '' for an omitted
   * optional input. Returns the output names.
   */
  node(opType: string, inputs: readonly string[], outputs: readonly string[] | number, attrs: Record<string, AttrValue> = {}, opts: NodeOptions = {}): string[] {
    const index = this.auto++;
    const name = opts.name ?? `${opType}_${index}`;
    if (this.nodeNames.has(name)) throw kerfError('KERF_ERR_GRAPH', `graph '${this.name}': node name '${name}' used twice`);
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, k) => `${name}_output_${k}`) : [...outputs];
    for (const o of outs) if (o !== '') this.claim(o, `node '${name}'`);
    this.nodeNames.add(name);
    const spec: NodeSpec = { opType, inputs: [...inputs], outputs: outs, attrs: { ...attrs }, name, domain: opts.domain ?? '' };
    if (opts.docString !== undefined) spec.docString = opts.docString;
    this.nodes.push(spec);
    return outs;
  }

  /** A Constant node holding a tensor; returns its output name. */
  constant(name: string, dtype: DType, dims: readonly number[], data: TensorData, opts: NodeOptions = {}): string {
    const t = tensorProto('', dtype, dims, data);
    this.types.set(name, { dtype, dims });
    return this.node('Constant', [], [name], { value: t }, { name: opts.name ?? `Constant_${name}`, ...(opts.domain ? { domain: opts.domain } : {}) })[0]!;
  }

  /** A fresh graph for an If/Loop/Scan body; pass it as an attribute value. */
  subgraph(name: string): GraphBuilder { return new GraphBuilder(name); }

  /** Reorders the nodes by a seeded permutation (for testing loaders against unsorted graphs). */
  shuffleNodes(seed: number): this {
    const rng = mulberry32(seed);
    const a = this.nodes;
    for (let k = a.length - 1; k > 0; k--) {
      const j = Math.floor(rng() * (k + 1));
      [a[k], a[j]] = [a[j]!, a[k]!];
    }
    return this;
  }

  /** Number of nodes in this graph (not counting subgraphs). */
  get nodeCount(): number { return this.nodes.length; }
  /** Op types and how often each occurs in this graph. */
  opCounts(): Record<string, number> {
    const c: Record<string, number> = {};
    for (const n of this.nodes) c[n.opType] = (c[n.opType] ?? 0) + 1;
    return c;
  }
  /** Initializer names, dtypes and dims, without materialising data. */
  initializerInfo(): { name: string; dtype: DType; dims: readonly number[] }[] {
    return this.inits.map((i) => ({ name: i.name, dtype: i.dtype, dims: i.dims }));
  }
  /** Total element count of all initializers. */
  get initializerElements(): number { return this.inits.reduce((s, i) => s + elementCount(i.dims), 0); }

  /**
   * The GraphProto (materialises lazy initializer data). With `{ data: false }` initializers carry only
   * name, type and dims: a structure-only graph for analysis, not a runnable model.
   */
  toGraphProto(opts: StructureOptions = {}): GraphProto {
    const g = create(GraphProtoSchema, { name: this.name });
    g.input = [...this.inputs];
    g.initializer = this.inits.map((i) => {
      if (opts.data === false) return create(TensorProtoSchema, { name: i.name, dataType: dtypeToOnnx(i.dtype), dims: i.dims.map((d) => BigInt(d)) });
      // Data a source function just made is ours alone: raw_data may view it without a copy.
      if (typeof i.source === 'function') return tensorProto(i.name, i.dtype, i.dims, i.source(), false);
      return tensorProto(i.name, i.dtype, i.dims, i.source);
    });
    g.node = this.nodes.map((n) => this.nodeProto(n));
    g.output = this.outputs.map((o) => {
      const known = o.dtype === undefined ? this.types.get(o.name) : undefined;
      const dtype = o.dtype ?? known?.dtype;
      // ONNX Runtime infers an output's type when the ValueInfo carries only a name.
      if (dtype === undefined) return create(ValueInfoProtoSchema, { name: o.name });
      return valueInfoProto(o.name, dtype, o.dims ?? known?.dims);
    });
    g.valueInfo = [...this.valueInfos.values()];
    return g;
  }

  private nodeProto(n: NodeSpec): NodeProto {
    const p = create(NodeProtoSchema, { opType: n.opType, name: n.name, input: n.inputs, output: n.outputs });
    if (n.domain) p.domain = n.domain;
    if (n.docString !== undefined) p.docString = n.docString;
    p.attribute = Object.entries(n.attrs).map(([k, v]) => attributeProto(k, v, `node '${n.name}'`));
    return p;
  }
}

/** Options of a ModelBuilder. */
export interface ModelOptions {
  /** Default-domain opset (default 13). */
  opset?: number;
  /** Graph name (default 'kerf'). */
  name?: string;
  /** IR version; default the lowest one the opset needs. */
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
}

/** Options of toBytesWithExternalData. */
export interface ExternalDataOptions {
  /** Initializers with fewer raw bytes stay inside the model (default 1024, as onnx's convert_model_to_external_data). */
  threshold?: number;
  /** Each tensor starts at a multiple of this many bytes in the data file (default 64). */
  align?: number;
}

/** Builds a whole ONNX model: a main graph plus opset imports and metadata. */
export class ModelBuilder extends GraphBuilder {
  private readonly opsets = new Map<string, number>();
  private readonly irVersion: number;
  private readonly producerName: string;
  private readonly producerVersion: string;
  private readonly docString: string | undefined;
  private readonly metadata: [string, string][] = [];

  constructor(opts: ModelOptions = {}) {
    super(opts.name ?? 'kerf');
    const opset = opts.opset ?? 13;
    if (!Number.isInteger(opset) || opset < 1) throw kerfError('KERF_ERR_GRAPH', `model '${this.name}': opset ${opset} is not a positive integer`);
    this.opsets.set('', opset);
    this.irVersion = opts.irVersion ?? irVersionForOpset(opset);
    this.producerName = opts.producerName ?? 'kerf';
    this.producerVersion = opts.producerVersion ?? '';
    this.docString = opts.docString;
  }

  /** Default-domain opset version. */
  get opset(): number { return this.opsets.get('')!; }

  /** Imports (or re-versions) an operator set domain, e.g. ('com.microsoft', 1). */
  opsetImport(domain: string, version: number): this { this.opsets.set(domain, version); return this; }

  /** A metadata_props entry. */
  meta(key: string, value: string): this { this.metadata.push([key, value]); return this; }

  /** The ModelProto (materialises lazy initializer data; `{ data: false }` gives the structure only). */
  toProto(opts: StructureOptions = {}): ModelProto {
    const m = create(ModelProtoSchema, { irVersion: BigInt(this.irVersion), producerName: this.producerName, graph: this.toGraphProto(opts) });
    if (this.producerVersion) m.producerVersion = this.producerVersion;
    if (this.docString !== undefined) m.docString = this.docString;
    m.opsetImport = [...this.opsets].map(([domain, version]) => create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) }));
    m.metadataProps = this.metadata.map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
    return m;
  }

  /** The serialised model. */
  toBytes(): Uint8Array { return serializeModel(this.toProto()); }

  /**
   * The model with its large main-graph initializers moved to one external data file named `location`
   * (relative to the model file, as ONNX requires). Write `model` and `data` side by side.
   */
  toBytesWithExternalData(location: string, opts: ExternalDataOptions = {}): { model: Uint8Array; data: Uint8Array } {
    if (!location || location.includes('..') || location.startsWith('/')) {
      throw kerfError('KERF_ERR_FILE', `external data location '${location}' must be a relative file name beside the model`);
    }
    const threshold = opts.threshold ?? 1024;
    const align = Math.max(1, opts.align ?? 64);
    const m = this.toProto();
    const chunks: { offset: number; bytes: Uint8Array }[] = [];
    let size = 0;
    m.graph!.initializer = m.graph!.initializer.map((t) => {
      if (t.rawData.length < threshold || t.rawData.length === 0) return t;
      const offset = Math.ceil(size / align) * align;
      chunks.push({ offset, bytes: t.rawData });
      size = offset + t.rawData.length;
      const entry = (key: string, value: string) => create(StringStringEntryProtoSchema, { key, value });
      return create(TensorProtoSchema, {
        name: t.name, dataType: t.dataType, dims: t.dims, dataLocation: TensorProto_DataLocation.EXTERNAL,
        externalData: [entry('location', location), entry('offset', String(offset)), entry('length', String(t.rawData.length))],
      });
    });
    const data = new Uint8Array(size);
    for (const c of chunks) data.set(c.bytes, c.offset);
    return { model: serializeModel(m), data };
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80); }
  out.push(n);
  return out;
}

/**
 * toBinary(ModelProtoSchema, m) with each initializer's raw_data copied once. The generic writer copies
 * nested message bytes at every level (model → graph → tensor), which costs seconds on VGG's 553 MB.
 * Field values are unchanged; only graph (7), initializer (5) and raw_data (9) move to the end of their
 * message in the byte stream, which protobuf readers accept.
 */
export function serializeModel(m: ModelProto): Uint8Array {
  const g = m.graph;
  // (Fields may be absent, not just empty: protos that crossed threads lose their defaults.)
  if (!g || g.initializer.every((t) => (t.rawData?.length ?? 0) < 1 << 20)) return toBinary(ModelProtoSchema, m);
  const parts: Uint8Array[] = [];
  const push = (b: Uint8Array | number[]) => { parts.push(b instanceof Uint8Array ? b : Uint8Array.from(b)); };
  const inits = g.initializer;
  // Serialise each message with its big field detached, then restore it: the caller's proto is unchanged.
  const tensors = inits.map((t) => {
    const data = t.rawData;
    const had = data !== undefined && isFieldSet(t, TensorProtoSchema.field.rawData);
    clearField(t, TensorProtoSchema.field.rawData);
    const body = toBinary(TensorProtoSchema, t);
    if (had) t.rawData = data;
    const raw = had ? [0x4a, ...varint(data.length)] : [];
    return { body, raw, data, size: body.length + raw.length + (had ? data.length : 0) };
  });
  g.initializer = [];
  const graphHead = toBinary(GraphProtoSchema, g);
  g.initializer = inits;
  clearField(m, ModelProtoSchema.field.graph);
  const modelHead = toBinary(ModelProtoSchema, m);
  m.graph = g;
  const graphSize = graphHead.length + tensors.reduce((a, t) => a + 1 + varint(t.size).length + t.size, 0);
  push(modelHead);
  push([0x3a, ...varint(graphSize)]);
  push(graphHead);
  for (const t of tensors) {
    push([0x2a, ...varint(t.size)]);
    push(t.body);
    if (t.raw.length) { push(t.raw); push(t.data); }
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
