/** Wire tensors for protocol and codec tests: every dtype kerf carries, deterministic from a PRNG. */
import type { WireDType, WireTensor } from '../../src/serve/protocol.js';

/**
 * A tensor of `dtype` and `dims` from `r`. Default: pseudo-random elements covering each type's
 * extremes (-0, NaN, the largest values) — what the framing must carry exactly. `compressible`:
 * mostly zeros and small values (as activations after ReLU are), so lossless codecs shrink it.
 */
export function sampleTensor(dtype: WireDType, dims: number[], r: () => number, opts: { compressible?: boolean } = {}): WireTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const z = opts.compressible === true;
  const bytes = (k: number): Uint8Array => Uint8Array.from({ length: k }, (_, i) => (z && i % 3 ? 0 : Math.floor(r() * 256)));
  const view = <T>(C: new (b: ArrayBuffer) => T, size: number): T => new C(bytes(n * size).buffer as ArrayBuffer);
  let data: WireTensor['data'];
  switch (dtype) {
    case 'float32': data = Float32Array.from({ length: n }, (_, i) => (z ? (i % 2 ? 0 : r()) : i === 0 ? -0 : i === 1 ? NaN : (r() - 0.5) * 1e6)); break;
    case 'float64': data = Float64Array.from({ length: n }, (_, i) => (z ? (i % 2 ? 0 : r()) : i === 0 ? Number.MAX_VALUE : (r() - 0.5) * 1e300)); break;
    case 'int64': data = BigInt64Array.from({ length: n }, (_, i) => (i === 0 ? -(2n ** 63n) : !z && i === 1 ? 2n ** 63n - 1n : BigInt(Math.floor(r() * (z ? 100 : 1e15))))); break;
    case 'uint64': data = BigUint64Array.from({ length: n }, (_, i) => (!z && i === 0 ? 2n ** 64n - 1n : BigInt(Math.floor(r() * (z ? 100 : 1e15))))); break;
    case 'bool': data = Uint8Array.from({ length: n }, () => (r() < 0.5 ? 0 : 1)); break;
    case 'string': data = Array.from({ length: n }, (_, i) => (z ? ['', 'a', 'héllo', '日本語'][i % 4]! : ['', 'a', 'héllo', '日本語', '🦀 crab'][i % 5]!) + i); break;
    case 'int4': data = new Int8Array(bytes(Math.ceil(n / 2)).buffer); break;
    case 'uint4': data = bytes(Math.ceil(n / 2)); break;
    case 'int8': data = view(Int8Array, 1); break;
    case 'uint8': data = bytes(n); break;
    case 'int16': data = view(Int16Array, 2); break;
    case 'uint16': case 'float16': data = view(Uint16Array, 2); break;
    case 'int32': data = view(Int32Array, 4); break;
    case 'uint32': data = view(Uint32Array, 4); break;
  }
  return { name: `t_${dtype}`, dtype, dims, data } as WireTensor;
}

/** The chunks of an encoded frame as one array. */
export function concatChunks(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}
