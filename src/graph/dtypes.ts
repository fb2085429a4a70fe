/** ONNX element types: names as onnxruntime-node spells them, byte sizes. */
export type DType =
  | 'float32' | 'uint8' | 'int8' | 'uint16' | 'int16' | 'int32' | 'int64' | 'string' | 'bool'
  | 'float16' | 'float64' | 'uint32' | 'uint64' | 'complex64' | 'complex128' | 'bfloat16'
  | 'float8e4m3fn' | 'float8e4m3fnuz' | 'float8e5m2' | 'float8e5m2fnuz' | 'uint4' | 'int4'
  | 'float4e2m1' | 'float8e8m0' | 'uint2' | 'int2';

const BY_CODE: DType[] = [];
const SIZES: Record<DType, number> = {} as Record<DType, number>;
const TABLE: [number, DType, number][] = [
  [1, 'float32', 4], [2, 'uint8', 1], [3, 'int8', 1], [4, 'uint16', 2], [5, 'int16', 2], [6, 'int32', 4],
  [7, 'int64', 8], [8, 'string', 0], [9, 'bool', 1], [10, 'float16', 2], [11, 'float64', 8], [12, 'uint32', 4],
  [13, 'uint64', 8], [14, 'complex64', 8], [15, 'complex128', 16], [16, 'bfloat16', 2], [17, 'float8e4m3fn', 1],
  [18, 'float8e4m3fnuz', 1], [19, 'float8e5m2', 1], [20, 'float8e5m2fnuz', 1], [21, 'uint4', 0.5], [22, 'int4', 0.5],
  [23, 'float4e2m1', 0.5], [24, 'float8e8m0', 1], [25, 'uint2', 0.25], [26, 'int2', 0.25],
];
const CODES = new Map<DType, number>();
for (const [code, name, size] of TABLE) { BY_CODE[code] = name; SIZES[name] = size; CODES.set(name, code); }

export function dtypeFromOnnx(code: number): DType | undefined { return BY_CODE[code]; }
export function dtypeToOnnx(d: DType): number {
  const c = CODES.get(d);
  if (c === undefined) throw new Error(`unknown dtype ${d}`);
  return c;
}
/** Bytes per element (fractional for 4- and 2-bit types; 0 for string). */
export function dtypeSize(d: DType): number { return SIZES[d] ?? 0; }
export function isDType(s: string): s is DType { return CODES.has(s as DType); }

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}
/** Bytes of a dense tensor (rounded up for sub-byte types). */
export function tensorBytes(dtype: DType, dims: readonly number[]): number {
  return Math.ceil(numel(dims) * dtypeSize(dtype));
}

/** float32 bit pattern → fp16 bits, round to nearest even; overflow gives ±Inf (0x7c00). */
export function halfBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry into the exponent is right, up to Inf
  return sign | h;
}
