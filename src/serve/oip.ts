/**
 * The Open Inference Protocol (KServe v2) REST body, with the binary tensor data extension:
 * JSON tensors, or a JSON header of `Inference-Header-Content-Length` bytes followed by raw
 * little-endian tensor data in input order. No I/O here: bytes in, tensors out, and back.
 */
import { Buffer } from 'node:buffer';
import { kerfError } from '../errors.js';
import type { WireDType, WireTensor } from './frames.js';

/** OIP datatype names of the dtypes kerf carries. */
export const OIP_DATATYPE: Readonly<Partial<Record<WireDType, string>>> = Object.freeze({
  bool: 'BOOL', uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64',
  int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64',
  float16: 'FP16', float32: 'FP32', float64: 'FP64', string: 'BYTES',
});
const FROM_OIP = new Map(Object.entries(OIP_DATATYPE).map(([k, v]) => [v, k as WireDType]));

const CTORS: Partial<Record<WireDType, { new(n: number): ArrayBufferView & ArrayLike<number | bigint>; new(b: ArrayBufferLike, o: number, n: number): ArrayBufferView; BYTES_PER_ELEMENT: number }>> = {
  bool: Uint8Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
  float16: Uint16Array, float32: Float32Array, float64: Float64Array,
} as never;

/** [min, max, integer only] a JSON number must lie in for each element type (FP64: any finite). */
const F32_MAX = 3.4028234663852886e38;
const RANGES: Partial<Record<WireDType, readonly [number, number, boolean]>> = {
  float32: [-F32_MAX, F32_MAX, false], uint8: [0, 255, true], int8: [-128, 127, true], uint16: [0, 65535, true],
  int16: [-32768, 32767, true], uint32: [0, 4294967295, true], int32: [-2147483648, 2147483647, true],
};

/** Header name of the binary extension. */
export const HEADER_LENGTH = 'inference-header-content-length';

/** A tensor a client sends: any typed array view (HostTensor and WireTensor both fit). */
export interface RequestTensor { name: string; dtype: string; dims: readonly number[]; data: ArrayBufferView }

/** An infer request with the binary tensor data extension: the JSON header, then each input's raw bytes. */
export interface EncodedRequest {
  /** the JSON header; its length goes in the Inference-Header-Content-Length header */
  head: Buffer;
  /** the inputs' bytes, in order, as views (no copy) */
  data: Buffer[];
  /** head + data */
  length: number;
}

/** Encode an infer request with binary inputs; `binaryOutput` asks for binary outputs too. */
export function encodeInferRequest(inputs: readonly RequestTensor[], opts: { id?: string; binaryOutput?: boolean } = {}): EncodedRequest {
  const data = inputs.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  const head = Buffer.from(JSON.stringify({
    ...(opts.id !== undefined ? { id: opts.id } : {}),
    inputs: inputs.map((t, i) => ({
      name: t.name, shape: t.dims, datatype: OIP_DATATYPE[t.dtype as WireDType] ?? t.dtype, parameters: { binary_data_size: data[i]!.length },
    })),
    ...(opts.binaryOutput ? { parameters: { binary_data_output: true } } : {}),
  }));
  return { head, data, length: data.reduce((n, b) => n + b.length, head.length) };
}

/** A model tensor as the gateway expects it. */
export interface TensorMeta { name: string; dtype: WireDType; shape: number[] }

/** A parsed infer request: tensors in model-input order, and what the client wants back. */
export interface InferRequest {
  id?: string;
  inputs: WireTensor[];
  /** output names asked for (all when absent), and which of them as binary */
  outputs: { name: string; binary: boolean }[] | null;
  /** request-level `binary_data_output` */
  binaryOutput: boolean;
}

const bad = (msg: string): never => { throw kerfError('KERF_ERR_SHAPE', msg); };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Flatten nested JSON arrays (row-major), checking the element count. */
function flatten(data: unknown, what: string): unknown[] {
  if (!Array.isArray(data)) return [data];
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown): void => { if (Array.isArray(v)) for (const x of v) walk(x); else out.push(v); };
  walk(data);
  void what;
  return out;
}

function fromJson(dtype: WireDType, flat: unknown[], what: string): WireTensor['data'] {
  if (dtype === 'string') {
    return flat.map((v, i) => (typeof v === 'string' ? v : bad(`${what}: element ${i} is not a string (datatype BYTES)`)));
  }
  if (dtype === 'float16') bad(`${what}: FP16 has no JSON form; send it with the binary tensor data extension`);
  const C = CTORS[dtype]!;
  const out = new C(flat.length);
  const big = dtype === 'int64' || dtype === 'uint64';
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (dtype === 'bool') {
      if (typeof v !== 'boolean' && v !== 0 && v !== 1) bad(`${what}: element ${i} is not a boolean`);
      (out as Uint8Array)[i] = v ? 1 : 0;
    } else if (big) {
      if (typeof v !== 'number' || !Number.isInteger(v)) bad(`${what}: element ${i} (${JSON.stringify(v)}) is not an integer`);
      if (dtype === 'uint64' && (v as number) < 0) bad(`${what}: element ${i} (${v}) does not fit ${OIP_DATATYPE[dtype]} (no negative values)`);
      (out as unknown as BigInt64Array)[i] = BigInt(v as number);
    } else {
      if (typeof v !== 'number') bad(`${what}: element ${i} (${JSON.stringify(v)}) is not a number`);
      // A value the element type cannot hold would be stored as ±Infinity or wrapped around.
      const r = RANGES[dtype];
      if (r && (!(v as number >= r[0] && v as number <= r[1]) || (r[2] && !Number.isInteger(v)))) {
        bad(`${what}: element ${i} (${v}) does not fit ${OIP_DATATYPE[dtype]} (${r[2] ? 'integers ' : ''}${r[0]}..${r[1]})`);
      }
      (out as unknown as Float64Array)[i] = v as number;
    }
  }
  return out as WireTensor['data'];
}

/**
 * Parse an infer request body against the model's inputs. Unknown, missing or duplicate
 * inputs, a wrong datatype, shape or data length → KERF_ERR_SHAPE naming the tensor.
 * `jsonLength`: the Inference-Header-Content-Length header, when present.
 */
export function parseInferRequest(body: Uint8Array, jsonLength: number | string | null, model: readonly TensorMeta[], outputNames: readonly string[]): InferRequest {
  const text = typeof jsonLength === 'string' ? jsonLength.trim() : null;
  if (text !== null && !/^\d+$/.test(text)) {
    throw kerfError('KERF_ERR_USAGE', `header Inference-Header-Content-Length ${JSON.stringify(jsonLength)}: expected the JSON header's length in bytes (an integer ≥ 0)`, { field: 'Inference-Header-Content-Length' });
  }
  const hlen = text !== null ? Number(text) : jsonLength as number | null ?? body.length;
  if (!Number.isInteger(hlen) || hlen < 0 || hlen > body.length) {
    throw kerfError('KERF_ERR_USAGE', `header Inference-Header-Content-Length ${jsonLength}: the JSON header cannot be longer than the ${body.length}-byte body`, { field: 'Inference-Header-Content-Length' });
  }
  let doc: unknown;
  try { doc = JSON.parse(Buffer.from(body.buffer, body.byteOffset, hlen).toString('utf8')); } catch (e) {
    throw kerfError('KERF_ERR_USAGE', `request body is not JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc) || !Array.isArray(doc.inputs)) throw kerfError('KERF_ERR_USAGE', 'request must be a JSON object with an "inputs" array');
  const want = new Map(model.map((m) => [m.name, m]));
  const got = new Map<string, WireTensor>();
  let offset = hlen;
  for (const [i, x] of doc.inputs.entries()) {
    if (!isObject(x) || typeof x.name !== 'string') throw kerfError('KERF_ERR_USAGE', `inputs[${i}] must be an object with a "name"`);
    const name = x.name;
    const what = `input '${name}'`;
    const m = want.get(name) ?? bad(`${what} is not an input of the model (inputs: ${model.map((t) => t.name).join(', ')})`);
    if (got.has(name)) bad(`${what} is given twice`);
    const dt = FROM_OIP.get(String(x.datatype));
    if (dt !== m.dtype) bad(`${what}: datatype ${JSON.stringify(x.datatype)}, the model expects ${OIP_DATATYPE[m.dtype] ?? m.dtype}`);
    const shape = x.shape;
    if (!Array.isArray(shape) || shape.length !== m.shape.length || shape.some((d, k) => d !== m.shape[k])) {
      bad(`${what}: shape ${JSON.stringify(shape)}, the model expects [${m.shape.join(',')}]`);
    }
    const count = m.shape.reduce((a, b) => a * b, 1);
    const params = isObject(x.parameters) ? x.parameters : {};
    let data: WireTensor['data'];
    if (params.binary_data_size !== undefined) {
      const size = params.binary_data_size;
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) bad(`${what}: binary_data_size must be a byte count`);
      if (offset + (size as number) > body.length) bad(`${what}: binary_data_size ${size} overruns the body (${body.length - offset} bytes left)`);
      data = fromBinary(m.dtype, body, offset, size as number, count, what);
      offset += size as number;
    } else {
      if (x.data === undefined) bad(`${what}: no "data" and no binary_data_size`);
      const flat = flatten(x.data, what);
      if (flat.length !== count) bad(`${what}: ${flat.length} elements, shape [${m.shape.join(',')}] needs ${count}`);
      data = fromJson(m.dtype, flat, what);
    }
    got.set(name, { name, dtype: m.dtype, dims: [...m.shape], data } as WireTensor);
  }
  for (const m of model) if (!got.has(m.name)) bad(`input '${m.name}' is missing`);
  if (offset !== body.length) bad(`${body.length - offset} bytes of binary data follow the last binary input`);
  const params = isObject(doc.parameters) ? doc.parameters : {};
  let outputs: InferRequest['outputs'] = null;
  if (Array.isArray(doc.outputs)) {
    outputs = doc.outputs.map((o, i) => {
      if (!isObject(o) || typeof o.name !== 'string') throw kerfError('KERF_ERR_USAGE', `outputs[${i}] must be an object with a "name"`);
      if (!outputNames.includes(o.name)) bad(`output '${o.name}' is not an output of the model (outputs: ${outputNames.join(', ')})`);
      const p = isObject(o.parameters) ? o.parameters : {};
      return { name: o.name, binary: p.binary_data === true };
    });
  }
  return {
    ...(doc.id !== undefined ? { id: String(doc.id) } : {}),
    inputs: model.map((m) => got.get(m.name)!),
    outputs,
    binaryOutput: params.binary_data_output === true,
  };
}

function fromBinary(dtype: WireDType, body: Uint8Array, offset: number, size: number, count: number, what: string): WireTensor['data'] {
  if (dtype === 'string') {
    const out: string[] = [];
    const b = Buffer.from(body.buffer, body.byteOffset + offset, size);
    let o = 0;
    while (o < size) {
      if (o + 4 > size) bad(`${what}: truncated BYTES element length`);
      const n = b.readUInt32LE(o);
      if (o + 4 + n > size) bad(`${what}: BYTES element ${out.length} overruns its data`);
      out.push(b.toString('utf8', o + 4, o + 4 + n));
      o += 4 + n;
    }
    if (out.length !== count) bad(`${what}: ${out.length} BYTES elements, the shape needs ${count}`);
    return out;
  }
  const C = CTORS[dtype]!;
  if (size !== count * C.BYTES_PER_ELEMENT) bad(`${what}: binary_data_size ${size}, ${OIP_DATATYPE[dtype]} of this shape needs ${count * C.BYTES_PER_ELEMENT} bytes`);
  const abs = body.byteOffset + offset;
  if (abs % C.BYTES_PER_ELEMENT === 0) return new C(body.buffer, abs, count) as unknown as WireTensor['data'];
  const out = new C(count);
  new Uint8Array(out.buffer, out.byteOffset, size).set(body.subarray(offset, offset + size));
  return out as unknown as WireTensor['data'];
}

/** A response body: either one JSON buffer, or a JSON header plus binary chunks. */
export interface EncodedResponse { chunks: Uint8Array[]; jsonLength: number; binary: boolean; length: number }

/** Encode outputs as OIP JSON, with binary data where asked for. */
export function encodeInferResponse(modelName: string, req: InferRequest | null, outputs: readonly WireTensor[], extra: Record<string, unknown> = {}): EncodedResponse {
  const asked = req?.outputs ? new Map(req.outputs.map((o) => [o.name, o.binary])) : null;
  const chosen = asked ? outputs.filter((t) => asked.has(t.name)) : outputs;
  const bins: Uint8Array[] = [];
  const out = chosen.map((t) => {
    const binary = (asked?.get(t.name) ?? false) || (req?.binaryOutput ?? false);
    const base = { name: t.name, datatype: OIP_DATATYPE[t.dtype] ?? t.dtype, shape: t.dims };
    if (binary) {
      const b = toBytes(t);
      bins.push(b);
      return { ...base, parameters: { binary_data_size: b.length } };
    }
    return { ...base, data: toJson(t) };
  });
  const doc = { model_name: modelName, model_version: '1', ...(req?.id !== undefined ? { id: req.id } : {}), ...extra, outputs: out };
  const json = Buffer.from(JSON.stringify(doc), 'utf8');
  const length = json.length + bins.reduce((a, b) => a + b.length, 0);
  return { chunks: [json, ...bins], jsonLength: json.length, binary: bins.length > 0, length };
}

function toBytes(t: WireTensor): Uint8Array {
  if (Array.isArray(t.data)) {
    const parts = (t.data as string[]).map((s) => Buffer.from(s, 'utf8'));
    const out = Buffer.allocUnsafe(parts.reduce((a, p) => a + 4 + p.length, 0));
    let o = 0;
    for (const p of parts) { out.writeUInt32LE(p.length, o); p.copy(out, o + 4); o += 4 + p.length; }
    return out;
  }
  const d = t.data as ArrayBufferView;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function toJson(t: WireTensor): unknown[] {
  if (Array.isArray(t.data)) return t.data as string[];
  if (t.dtype === 'bool') return Array.from(t.data as Uint8Array, (v) => v !== 0);
  if (t.dtype === 'int64' || t.dtype === 'uint64') return Array.from(t.data as BigInt64Array, (v) => Number(v));
  return Array.from(t.data as Float32Array);
}
