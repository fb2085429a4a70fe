import { kerfError } from '../errors.js';
import { mulberry32 } from '../util/prng.js';
import { numel, type DType } from '../graph/dtypes.js';
import type { Model } from '../graph/model.js';
import type { TensorInfo } from '../graph/cuts.js';
import { normalisedModel, serializeModel } from '../graph/slice.js';
import { Session, type HostTensor, type Runner, type TypedArray } from './ort.js';

/** Concrete input shapes: given ones, else the declared dims with a dynamic leading (batch) dim set to 1. */
export function resolveInputShapes(model: Model, given: Record<string, number[]> = {}): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const names = new Set(model.inputs.map((v) => v.name));
  for (const k of Object.keys(given)) {
    if (!names.has(k)) throw kerfError('KERF_ERR_SHAPE', `${model.source}: --input-shape names '${k}', which is not an input (inputs: ${[...names].join(', ')})`);
  }
  for (const v of model.inputs) {
    const g = given[v.name];
    const dims = v.type?.dims;
    if (g) {
      if (dims && dims.length !== g.length) {
        throw kerfError('KERF_ERR_SHAPE', `${model.source}: input '${v.name}' has rank ${dims.length}, --input-shape gives ${g.length} dims`);
      }
      dims?.forEach((d, i) => {
        if (typeof d === 'number' && d !== g[i]) {
          throw kerfError('KERF_ERR_SHAPE', `${model.source}: input '${v.name}' dim ${i} is fixed at ${d}, --input-shape gives ${g[i]}`);
        }
      });
      out[v.name] = g;
      continue;
    }
    if (!dims) throw kerfError('KERF_ERR_SHAPE', `${model.source}: input '${v.name}' has no declared shape; pass --input-shape ${v.name}=…`);
    const resolved = dims.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? 1 : -1));
    if (resolved.includes(-1)) {
      const shown = dims.map((d) => (typeof d === 'number' && d > 0 ? String(d) : d === null ? '?' : String(d))).join('x');
      throw kerfError('KERF_ERR_SHAPE', `${model.source}: input '${v.name}' has dynamic dims (${shown}); pass --input-shape ${v.name}=${resolved.map((d) => (d === -1 ? 'N' : d)).join('x')} with N given`);
    }
    out[v.name] = resolved;
  }
  return out;
}

/** Seeded PRNG (mulberry32): same seed, same inputs on every machine. */
export const prng: (seed: number) => () => number = mulberry32;

/** A seeded random tensor: floats uniform in [0,1), integers 0, booleans false. */
export function randomTensor(dtype: DType, dims: number[], rnd: () => number): HostTensor {
  const n = numel(dims);
  let data: TypedArray | string[];
  switch (dtype) {
    case 'float32': { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = rnd(); data = a; break; }
    case 'float64': { const a = new Float64Array(n); for (let i = 0; i < n; i++) a[i] = rnd(); data = a; break; }
    case 'float16': { const a = new Uint16Array(n); for (let i = 0; i < n; i++) a[i] = 0x3800; data = a; break; } // 0.5
    case 'int64': data = new BigInt64Array(n); break;
    case 'uint64': data = new BigUint64Array(n); break;
    case 'int32': data = new Int32Array(n); break;
    case 'uint32': data = new Uint32Array(n); break;
    case 'int16': data = new Int16Array(n); break;
    case 'uint16': data = new Uint16Array(n); break;
    case 'int8': data = new Int8Array(n); break;
    case 'uint8': case 'bool': data = new Uint8Array(n); break;
    case 'string': data = new Array<string>(n).fill(''); break;
    default: throw kerfError('KERF_ERR_SHAPE', `cannot make a random tensor of dtype ${dtype}`);
  }
  return { dtype, dims, data };
}

/**
 * Run `session` once on seeded random inputs; resolves with the seconds it took, rejects when
 * such inputs do not suit it (indices, say). onnxruntime allocates a session's buffers on its
 * first run: a warmed session neither grows the process nor slows a request when it first serves.
 */
export async function warmUp(session: Runner, inputs: readonly { name: string; dtype: DType; shape: number[] }[], outputs?: readonly string[]): Promise<number> {
  const rnd = prng(7);
  const feeds: Record<string, HostTensor> = {};
  for (const t of inputs) feeds[t.name] = randomTensor(t.dtype, t.shape, rnd);
  const t0 = performance.now();
  await session.run(feeds, outputs);
  return (performance.now() - t0) / 1000;
}

export function randomInputs(model: Model, shapes: Record<string, number[]>, seed = 0): Record<string, HostTensor> {
  const rnd = prng(seed);
  const feeds: Record<string, HostTensor> = {};
  for (const v of model.inputs) {
    if (!v.type) throw kerfError('KERF_ERR_SHAPE', `${model.source}: input '${v.name}' has no tensor type`);
    feeds[v.name] = randomTensor(v.type.dtype, shapes[v.name]!, rnd);
  }
  return feeds;
}

/**
 * Dtype and dims of every non-constant tensor for the given input shapes, read off one
 * onnxruntime run of the model with every tensor exposed as an output: exact for any op,
 * dynamic dims included.
 */
export async function resolveTensorInfo(model: Model, inputShapes: Record<string, number[]>, seed = 0): Promise<Map<string, TensorInfo>> {
  const have = new Set(model.outputs.map((o) => o.name));
  const extra: string[] = [];
  for (const n of model.nodes) {
    if (n.constant) continue;
    for (const o of n.outputs) if (o && !have.has(o)) { extra.push(o); have.add(o); }
  }
  const proto = normalisedModel(model, extra);
  const session = await Session.create(serializeModel(proto), { label: `${model.source} (shape resolution)` });
  try {
    const feeds = randomInputs(model, inputShapes, seed);
    const r = await session.run(feeds);
    const info = new Map<string, TensorInfo>();
    for (const [name, t] of Object.entries(feeds)) info.set(name, { dtype: t.dtype, dims: t.dims });
    for (const [name, t] of Object.entries(r)) info.set(name, { dtype: t.dtype, dims: t.dims });
    return info;
  } finally {
    await session.close();
  }
}
