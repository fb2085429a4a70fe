/**
 * The lossy stages, for float32 and float64 tensors: fp16 (round to nearest even) and int8
 * (8-bit affine, like ONNX DynamicQuantizeLinear: q = round((x − min) / scale), scale =
 * (max − min) / 255, per tensor or per channel along axis 1). Values a stage cannot represent —
 * NaN, ±Inf, and for fp16 finite values beyond ±65504 — travel beside the data as exceptions
 * (index + original bits) and come back exactly.
 *
 * Bounds (finite x, y the decoded value):
 * - fp16: |y − x| ≤ 2^-11·|x| when |x| ≥ 2^-14, else ≤ 2^-25 (float64 input: plus its rounding to float32).
 * - int8: |y − x| ≤ scale/2 of x's tensor or channel, plus float32 rounding of y.
 *
 * Side data layout (LE): u32 exceptions n, u32 parameter rows C, C × (f64 min, f64 scale),
 * n × u32 increasing index, n × original element. Data: u16 per element (fp16) or u8 (int8).
 */
import { kerfError } from '../errors.js';
import type { LossyStage } from './spec.js';
import { halfBits } from '../graph/dtypes.js';

export { halfBits };

export type FloatArray = Float32Array | Float64Array;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

let HALF_TABLE: Float32Array | null = null;
/** fp16 bits → float32 value, for all 65536 patterns (256 kB, built on first use). */
function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (HALF_TABLE = t);
}

/** Parameter rows of a stage: 0 for fp16, 1 per tensor, dims[1] per channel (rank ≥ 2). */
export function paramRows(stage: LossyStage, dims: readonly number[]): number {
  if (stage === 'fp16' || stage === 'none') return 0;
  return stage === 'int8-ch' && dims.length >= 2 ? dims[1]! : 1;
}

/** Bytes per element of a stage's data. */
export const stageElementBytes = (stage: LossyStage): number => (stage === 'fp16' ? 2 : 1);

export interface LossyEncoded { side: Uint8Array; data: Uint8Array }

function writeSide(rows: number, params: Float64Array, exc: number[], values: FloatArray): Uint8Array {
  const es = values.BYTES_PER_ELEMENT;
  const side = new Uint8Array(8 + 16 * rows + exc.length * (4 + es));
  const dv = new DataView(side.buffer);
  dv.setUint32(0, exc.length, true);
  dv.setUint32(4, rows, true);
  let o = 8;
  for (let i = 0; i < 2 * rows; i++, o += 8) dv.setFloat64(o, params[i]!, true);
  for (const i of exc) { dv.setUint32(o, i, true); o += 4; }
  const vb = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  for (const i of exc) { side.set(vb.subarray(i * es, (i + 1) * es), o); o += es; }
  return side;
}

/** Apply a lossy stage to float values of shape `dims`. */
export function lossyEncode(stage: Exclude<LossyStage, 'none'>, x: FloatArray, dims: readonly number[]): LossyEncoded {
  const n = x.length;
  const exc: number[] = [];
  if (stage === 'fp16') {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      f32[0] = v;
      const h = halfBits(u32[0]!);
      if ((h & 0x7c00) === 0x7c00) exc.push(i); // NaN, Inf, or a finite value beyond fp16's range
      else out[i] = h;
    }
    return { side: writeSide(0, new Float64Array(0), exc, x), data: new Uint8Array(out.buffer) };
  }
  const rows = paramRows(stage, dims);
  const inner = rows <= 1 ? n : dims.slice(2).reduce((a, b) => a * b, 1);
  const params = new Float64Array(2 * rows);
  const lo = new Float64Array(rows).fill(Infinity);
  const hi = new Float64Array(rows).fill(-Infinity);
  const rowOf = (i: number): number => (rows <= 1 ? 0 : Math.floor(i / inner) % rows);
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    if (v - v !== 0) { exc.push(i); continue; } // NaN or ±Inf
    const r = rowOf(i);
    if (v < lo[r]!) lo[r] = v;
    if (v > hi[r]!) hi[r] = v;
  }
  for (let r = 0; r < rows; r++) {
    const min = lo[r] === Infinity ? 0 : lo[r]!;
    const max = hi[r] === -Infinity ? 0 : hi[r]!;
    params[2 * r] = min;
    params[2 * r + 1] = (max - min) / 255;
  }
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    if (v - v !== 0) continue;
    const r = rowOf(i);
    const scale = params[2 * r + 1]!;
    if (scale > 0) {
      const q = Math.round((v - params[2 * r]!) / scale);
      out[i] = q < 0 ? 0 : q > 255 ? 255 : q;
    }
  }
  return { side: writeSide(rows, params, exc, x), data: out };
}

const corrupt = (what: string, why: string): Error => kerfError('KERF_ERR_PROTOCOL', `${what}: ${why}`);

/**
 * Undo a lossy stage into `out` (a fresh float array of the tensor's dtype and element count),
 * validating the side data against the tensor's shape.
 */
export function lossyDecode(stage: Exclude<LossyStage, 'none'>, side: Uint8Array, data: Uint8Array, out: FloatArray, dims: readonly number[], what: string): void {
  const n = out.length;
  const es = out.BYTES_PER_ELEMENT;
  if (side.length < 8) throw corrupt(what, `${stage} side data of ${side.length} bytes is too short`);
  const dv = new DataView(side.buffer, side.byteOffset, side.byteLength);
  const nExc = dv.getUint32(0, true);
  const rows = dv.getUint32(4, true);
  const wantRows = paramRows(stage, dims);
  if (rows !== wantRows) throw corrupt(what, `${stage} has ${rows} parameter rows, shape [${dims.join(',')}] needs ${wantRows}`);
  if (nExc > n) throw corrupt(what, `${nExc} exceptions for ${n} elements`);
  const sideWant = 8 + 16 * rows + nExc * (4 + es);
  if (side.length !== sideWant) throw corrupt(what, `${stage} side data has ${side.length} bytes, ${sideWant} expected`);
  if (data.length !== n * stageElementBytes(stage)) throw corrupt(what, `${stage} data has ${data.length} bytes, ${n} elements need ${n * stageElementBytes(stage)}`);
  if (stage === 'fp16') {
    const t = halfTable();
    const h = data.byteOffset % 2 === 0 ? new Uint16Array(data.buffer, data.byteOffset, n) : new Uint16Array(data.slice().buffer);
    for (let i = 0; i < n; i++) out[i] = t[h[i]!]!;
  } else {
    const params = new Float64Array(2 * rows);
    for (let i = 0; i < 2 * rows; i++) {
      params[i] = dv.getFloat64(8 + 8 * i, true);
      if (!Number.isFinite(params[i]!) || (i % 2 === 1 && params[i]! < 0)) throw corrupt(what, `int8 parameter ${i} is ${params[i]}`);
    }
    if (rows === 1) {
      const min = params[0]!; const scale = params[1]!;
      for (let i = 0; i < n; i++) out[i] = min + data[i]! * scale;
    } else if (rows > 0) {
      const inner = dims.slice(2).reduce((a, b) => a * b, 1);
      for (let i = 0, r = 0, k = 0; i < n; i++) {
        out[i] = params[2 * r]! + data[i]! * params[2 * r + 1]!;
        if (++k === inner) { k = 0; r = r + 1 === rows ? 0 : r + 1; }
      }
    }
  }
  let o = 8 + 16 * rows;
  const vo = o + 4 * nExc;
  const ob = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  let prev = -1;
  for (let j = 0; j < nExc; j++, o += 4) {
    const i = dv.getUint32(o, true);
    if (i <= prev || i >= n) throw corrupt(what, `exception index ${i} out of order or beyond ${n} elements`);
    prev = i;
    ob.set(side.subarray(vo + j * es, vo + (j + 1) * es), i * es);
  }
}
