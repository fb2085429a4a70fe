/**
 * What a codec does to real tensors on this machine: ratio, and encode/decode seconds (median
 * of timed runs, so a CPU quota's throttling shows as it would in serving). Used by
 * `kerf profile --codecs` and `kerf bench codec`.
 */
import { decodeEnvelope, encodeEnvelope, type TensorInfo } from './envelope.js';
import { parseCodec, type Codec } from './spec.js';

/** One tensor as the codec sees it: its wire bytes and what they are. */
export interface CodecSample extends TensorInfo { bytes: Uint8Array }

/** A codec's effect on a set of tensors (one cut's crossing tensors). */
export interface CodecMeasure {
  codec: string;
  lossy: boolean;
  /** raw bytes ÷ coded bytes (envelopes included) */
  ratio: number;
  rawBytes: number;
  codedBytes: number;
  /** seconds to encode / decode all the tensors once (median of the runs) */
  encodeS: number;
  decodeS: number;
}

const median = (a: number[]): number => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]!; };

/**
 * Encode and decode `samples` with `codec` `runs` times (after one untimed run); the median run.
 * With `minSeconds`, runs go on until encoding and decoding each took that long in all, and
 * the mean is reported: under a CPU quota, runs shorter than the quota's period would
 * otherwise run at full speed and never see the throttling.
 */
export function measureCodec(codec: Codec | string, samples: readonly CodecSample[], runs = 5, minSeconds = 0): CodecMeasure {
  const c = typeof codec === 'string' ? parseCodec(codec) : codec;
  const rawBytes = samples.reduce((a, s) => a + s.bytes.length, 0);
  if (c.name === 'none') return { codec: 'none', lossy: false, ratio: 1, rawBytes, codedBytes: rawBytes, encodeS: 0, decodeS: 0 };
  const enc: number[] = [];
  const dec: number[] = [];
  let coded: Uint8Array[] = [];
  let encSum = 0, decSum = 0;
  for (let r = 0; r <= runs || (minSeconds > 0 && (encSum < minSeconds || decSum < minSeconds)); r++) {
    const t0 = performance.now();
    coded = samples.map((s) => encodeEnvelope(c, s.bytes, s));
    const t1 = performance.now();
    samples.forEach((s, i) => decodeEnvelope(coded[i]!, s, s.elementBytes === 0 ? null : s.bytes.length, 'measure'));
    const t2 = performance.now();
    if (r > 0) { enc.push((t1 - t0) / 1000); dec.push((t2 - t1) / 1000); encSum += (t1 - t0) / 1000; decSum += (t2 - t1) / 1000; }
  }
  const pick = (a: number[], sum: number): number => (minSeconds > 0 ? sum / a.length : median(a));
  const codedBytes = coded.reduce((a, b) => a + b.length, 0);
  return { codec: c.name, lossy: c.lossy !== 'none', ratio: codedBytes > 0 ? rawBytes / codedBytes : 1, rawBytes, codedBytes, encodeS: pick(enc, encSum), decodeS: pick(dec, decSum) };
}

/** Fraction of exact zeros among float32/float64 elements of `samples` (NaN when none are floats). */
export function zeroFraction(samples: readonly CodecSample[]): number {
  let zeros = 0; let n = 0;
  for (const s of samples) {
    if (s.dtype !== 'float32' && s.dtype !== 'float64') continue;
    const a = s.dtype === 'float32' ? new Float32Array(s.bytes.slice().buffer) : new Float64Array(s.bytes.slice().buffer);
    for (let i = 0; i < a.length; i++) if (a[i] === 0) zeros++;
    n += a.length;
  }
  return n ? zeros / n : NaN;
}
