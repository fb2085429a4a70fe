import { kerfError } from '../errors.js';
import type { DType } from '../graph/dtypes.js';
import type { HostTensor, TypedArray } from './ort.js';

const NPY_DTYPES: Record<string, DType> = {
  '<f4': 'float32', '<f8': 'float64', '<i8': 'int64', '<i4': 'int32', '<i2': 'int16', '|i1': 'int8',
  '|u1': 'uint8', '<u2': 'uint16', '<u4': 'uint32', '<u8': 'uint64', '|b1': 'bool', '<f2': 'float16',
};
const CTORS: Partial<Record<DType, { new(b: ArrayBuffer, o: number, n: number): TypedArray; BYTES_PER_ELEMENT: number }>> = {
  float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array, int16: Int16Array, int8: Int8Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array, bool: Uint8Array, float16: Uint16Array,
};

/** Parse a NumPy .npy file (C order, little-endian) into a host tensor. */
export function parseNpy(buf: Uint8Array, source: string): HostTensor {
  if (buf.length < 10 || buf[0] !== 0x93 || String.fromCharCode(...buf.subarray(1, 6)) !== 'NUMPY') {
    throw kerfError('KERF_ERR_FILE', `${source}: not a .npy file`);
  }
  const major = buf[6]!;
  const hlen = major === 1 ? buf[8]! | (buf[9]! << 8) : new DataView(buf.buffer, buf.byteOffset + 8, 4).getUint32(0, true);
  const start = major === 1 ? 10 : 12;
  const header = Buffer.from(buf.subarray(start, start + hlen)).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw kerfError('KERF_ERR_FILE', `${source}: malformed .npy header`);
  if (fortran) throw kerfError('KERF_ERR_FILE', `${source}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray`);
  const dtype = NPY_DTYPES[descr];
  if (!dtype) throw kerfError('KERF_ERR_FILE', `${source}: dtype '${descr}' is not supported`);
  const dims = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const ctor = CTORS[dtype]!;
  const n = dims.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  if (buf.length - off < n * ctor.BYTES_PER_ELEMENT) throw kerfError('KERF_ERR_FILE', `${source}: truncated .npy data`);
  const copy = buf.slice(off, off + n * ctor.BYTES_PER_ELEMENT);
  return { dtype, dims, data: new ctor(copy.buffer, 0, n) };
}

/** Input tensors from a file: a .npy (for a single-input model) or JSON {name: {shape, data}} / {name: .npy path}. */
export function parseInputFile(buf: Uint8Array, source: string, inputs: { name: string; dtype: DType }[]): Record<string, HostTensor> {
  if (source.endsWith('.npy')) {
    if (inputs.length !== 1) throw kerfError('KERF_ERR_FILE', `${source}: a .npy file gives one input, the model has ${inputs.length}; use a JSON file`);
    return { [inputs[0]!.name]: parseNpy(buf, source) };
  }
  let j: Record<string, { shape?: number[]; data?: number[] }>;
  try { j = JSON.parse(Buffer.from(buf).toString('utf8')); } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${source}: not JSON (${(e as Error).message})`);
  }
  const out: Record<string, HostTensor> = {};
  for (const inp of inputs) {
    const v = j[inp.name];
    if (!v || !Array.isArray(v.shape) || !Array.isArray(v.data)) throw kerfError('KERF_ERR_FILE', `${source}: input '${inp.name}' needs {"shape": [...], "data": [...]}`);
    const ctor = CTORS[inp.dtype];
    if (!ctor) throw kerfError('KERF_ERR_FILE', `${source}: input '${inp.name}' dtype ${inp.dtype} not supported in JSON`);
    const n = v.shape.reduce((a, b) => a * b, 1);
    if (n !== v.data.length) throw kerfError('KERF_ERR_FILE', `${source}: input '${inp.name}' has ${v.data.length} values for shape [${v.shape.join(',')}]`);
    const arr = new ctor(new ArrayBuffer(n * ctor.BYTES_PER_ELEMENT), 0, n);
    const big = inp.dtype === 'int64' || inp.dtype === 'uint64';
    for (let i = 0; i < n; i++) (arr as unknown as (number | bigint)[])[i] = big ? BigInt(v.data[i]!) : v.data[i]!;
    out[inp.name] = { dtype: inp.dtype, dims: v.shape, data: arr };
  }
  return out;
}
