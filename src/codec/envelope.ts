/**
 * One tensor's bytes under a codec: pure functions from wire bytes to an envelope and back.
 *
 * Envelope (LE): u8 version (1), u8 lossy stage (0 none, 1 fp16, 2 int8, 3 int8-ch), u8 shuffle
 * element size (0 = no shuffle), u8 lossless stage (0 none, 1 lz4, 2 zstd), u32 side bytes S,
 * u32 stage bytes R (after the lossy stage, before the lossless one), u32 coded bytes C, then S
 * side bytes (lossy parameters and exceptions) and C coded bytes. A stage that would not help
 * is skipped and recorded as 0: lossy stages apply to float32/float64 only, and a lossless
 * stage whose output is not smaller than its input is dropped.
 */
import { kerfError } from '../errors.js';
import { lossyDecode, lossyEncode, stageElementBytes, type FloatArray } from './lossy.js';
import { lz4Decode, lz4Encode, shuffle, unshuffle, zstdDecode, zstdEncode } from './lossless.js';
import { losslessPart, type Codec, type LosslessStage, type LossyStage } from './spec.js';

export const ENVELOPE_VERSION = 1;
export const ENVELOPE_HEADER_BYTES = 16;

const LOSSY_CODES: LossyStage[] = ['none', 'fp16', 'int8', 'int8-ch'];
const LOSSLESS_CODES: LosslessStage[] = ['none', 'lz4', 'zstd'];

/** What a tensor is, as far as a codec cares. */
export interface TensorInfo {
  /** kerf dtype name ('float32', 'int64', 'string', …) */
  dtype: string;
  dims: readonly number[];
  /** bytes per element (0 for strings, 0.5 for 4-bit types) */
  elementBytes: number;
}

/** Stages an envelope actually used (a subset of the codec asked for). */
export interface EnvelopeStages { lossy: LossyStage; shuffle: number; lossless: LosslessStage }

const isFloat = (dtype: string): dtype is 'float32' | 'float64' => dtype === 'float32' || dtype === 'float64';

function floatView(dtype: 'float32' | 'float64', raw: Uint8Array): FloatArray {
  const C = dtype === 'float32' ? Float32Array : Float64Array;
  if (raw.byteOffset % C.BYTES_PER_ELEMENT === 0) return new C(raw.buffer as ArrayBuffer, raw.byteOffset, raw.length / C.BYTES_PER_ELEMENT);
  return new C(raw.slice().buffer as ArrayBuffer);
}

/** Encode a tensor's little-endian wire bytes `raw` under `codec`. */
export function encodeEnvelope(codec: Codec, raw: Uint8Array, t: TensorInfo): Uint8Array {
  const lossy: LossyStage = isFloat(t.dtype) && raw.length > 0 ? codec.lossy : 'none';
  let side: Uint8Array = new Uint8Array(0);
  let stage = raw;
  if (lossy !== 'none') {
    const enc = lossyEncode(lossy, floatView(t.dtype as 'float32' | 'float64', raw), t.dims);
    side = enc.side; stage = enc.data;
  }
  const es = lossy !== 'none' ? stageElementBytes(lossy) : t.elementBytes;
  let shuffleSize = codec.shuffle && Number.isInteger(es) && es >= 2 ? es : 0;
  let lossless: LosslessStage = stage.length > 0 ? codec.lossless : 'none';
  let coded = stage;
  if (lossless !== 'none') {
    const input = shuffleSize ? shuffle(stage, shuffleSize) : stage;
    const out = lossless === 'lz4' ? lz4Encode(input) : zstdEncode(input, codec.level);
    if (out.length < stage.length) coded = out;
    else { lossless = 'none'; shuffleSize = 0; }
  } else {
    shuffleSize = 0;
  }
  const env = new Uint8Array(ENVELOPE_HEADER_BYTES + side.length + coded.length);
  const dv = new DataView(env.buffer);
  dv.setUint8(0, ENVELOPE_VERSION);
  dv.setUint8(1, LOSSY_CODES.indexOf(lossy));
  dv.setUint8(2, shuffleSize);
  dv.setUint8(3, LOSSLESS_CODES.indexOf(lossless));
  dv.setUint32(4, side.length, true);
  dv.setUint32(8, stage.length, true);
  dv.setUint32(12, coded.length, true);
  env.set(side, ENVELOPE_HEADER_BYTES);
  env.set(coded, ENVELOPE_HEADER_BYTES + side.length);
  // A lossy stage whose parameters outweigh what it saves (tiny tensors, many channels): lossless only.
  if (lossy !== 'none' && env.length >= ENVELOPE_HEADER_BYTES + raw.length) return encodeEnvelope(losslessPart(codec), raw, t);
  return env;
}

const corrupt = (what: string, why: string): Error => kerfError('KERF_ERR_PROTOCOL', `${what}: ${why}`);

/** The stages an envelope names, validated (KERF_ERR_PROTOCOL on unknown codes). */
export function envelopeStages(env: Uint8Array, what: string): EnvelopeStages {
  if (env.length < ENVELOPE_HEADER_BYTES) throw corrupt(what, `codec envelope of ${env.length} bytes is shorter than its ${ENVELOPE_HEADER_BYTES}-byte header`);
  if (env[0] !== ENVELOPE_VERSION) throw corrupt(what, `codec envelope version ${env[0]} is unknown (this kerf writes ${ENVELOPE_VERSION})`);
  const lossy = LOSSY_CODES[env[1]!];
  const lossless = LOSSLESS_CODES[env[3]!];
  if (!lossy) throw corrupt(what, `unknown lossy stage code ${env[1]}`);
  if (!lossless) throw corrupt(what, `unknown lossless stage code ${env[3]}`);
  return { lossy, shuffle: env[2]!, lossless };
}

/**
 * Decode an envelope back to the tensor's wire bytes, exactly `rawBytes` long (what dtype and
 * dims need; null for strings, whose length the envelope tells, at most `limit`). Every length
 * and parameter is checked before anything is allocated; anything inconsistent is
 * KERF_ERR_PROTOCOL naming `what`. The result is a fresh buffer (aligned for any element type).
 */
export function decodeEnvelope(env: Uint8Array, t: TensorInfo, rawBytes: number | null, what: string, limit = Infinity): Uint8Array {
  const st = envelopeStages(env, what);
  const dv = new DataView(env.buffer, env.byteOffset, env.byteLength);
  const sideBytes = dv.getUint32(4, true);
  const stageBytes = dv.getUint32(8, true);
  const codedBytes = dv.getUint32(12, true);
  if (rawBytes === null) {
    if (st.lossy !== 'none') throw corrupt(what, `lossy stage ${st.lossy} on a ${t.dtype} tensor`);
    rawBytes = stageBytes;
  }
  if (rawBytes > limit) throw corrupt(what, `decoded tensor of ${rawBytes} bytes exceeds the limit of ${limit}`);
  if (ENVELOPE_HEADER_BYTES + sideBytes + codedBytes !== env.length) {
    throw corrupt(what, `codec envelope says ${sideBytes} side + ${codedBytes} coded bytes, it holds ${env.length - ENVELOPE_HEADER_BYTES}`);
  }
  if (st.lossy !== 'none' && !isFloat(t.dtype)) throw corrupt(what, `lossy stage ${st.lossy} on a ${t.dtype} tensor`);
  const count = rawBytes === 0 ? 0 : t.elementBytes > 0 ? Math.round(rawBytes / t.elementBytes) : 0;
  const wantStage = st.lossy === 'none' ? rawBytes : count * stageElementBytes(st.lossy);
  if (stageBytes !== wantStage) throw corrupt(what, `codec stage holds ${stageBytes} bytes, the tensor needs ${wantStage}`);
  if (st.shuffle !== 0) {
    const es = st.lossy !== 'none' ? stageElementBytes(st.lossy) : t.elementBytes;
    if (st.lossless === 'none' || st.shuffle !== es) throw corrupt(what, `byte shuffle of ${st.shuffle} bytes does not fit ${st.lossy !== 'none' ? st.lossy : t.dtype} elements`);
  }
  if (st.lossy === 'none' && sideBytes !== 0) throw corrupt(what, `${sideBytes} side bytes without a lossy stage`);
  const side = env.subarray(ENVELOPE_HEADER_BYTES, ENVELOPE_HEADER_BYTES + sideBytes);
  const coded = env.subarray(ENVELOPE_HEADER_BYTES + sideBytes);
  let stage: Uint8Array;
  if (st.lossless === 'none') {
    if (codedBytes !== stageBytes) throw corrupt(what, `uncompressed stage of ${codedBytes} bytes, ${stageBytes} expected`);
    stage = coded;
  } else {
    stage = st.lossless === 'lz4' ? lz4Decode(coded, stageBytes, what) : zstdDecode(coded, stageBytes, what);
    if (st.shuffle) stage = unshuffle(stage, st.shuffle);
  }
  if (st.lossy === 'none') {
    // A fresh aligned copy: the caller makes typed views of it.
    const out = new Uint8Array(new ArrayBuffer(rawBytes));
    out.set(stage);
    return out;
  }
  const out = t.dtype === 'float32' ? new Float32Array(count) : new Float64Array(count);
  lossyDecode(st.lossy, side, stage, out, t.dims, what);
  return new Uint8Array(out.buffer);
}
