/**
 * The lossless stages and the byte shuffle: the only file that imports compression packages.
 * lz4 is lz4-napi (lz4_flex, prebuilt per platform in the package); zstd is @bokuweb/zstd-wasm
 * (the reference C library compiled to WebAssembly, no native build), loaded once at import.
 * Node 20's zlib has no zstd (22.15 adds it).
 *
 * Decoders are given the exact size to expect and check it before allocating: a hostile peer
 * cannot make them allocate more than the tensor the frame announced, and any malformed input
 * is a KERF_ERR_PROTOCOL error, never a crash.
 */
import { createRequire } from 'node:module';
import { kerfError } from '../errors.js';

const require = createRequire(import.meta.url);
interface Lz4 { compressSync(data: Buffer): Buffer; uncompressSync(data: Uint8Array): Buffer }
interface Zstd { init(): Promise<void>; compress(buf: Uint8Array, level?: number): Uint8Array; decompress(buf: Uint8Array): Uint8Array }

// Loaded at import; a tree installed before these dependencies came (no `npm ci` since) still
// serves raw frames, and a codec asked for says what is missing.
async function load<T>(name: string, init?: (m: T) => Promise<void>): Promise<T | Error> {
  try {
    const m = require(name) as T;
    if (init) await init(m);
    return m;
  } catch (e) { return e as Error; }
}
const lz4M = await load<Lz4>('lz4-napi');
const zstdM = await load<Zstd>('@bokuweb/zstd-wasm', (m) => m.init());

function need<T>(m: T | Error, name: string): T {
  if (m instanceof Error) throw kerfError('KERF_ERR_CODEC', `codec package ${name} cannot be loaded (${m.message.split('\n')[0]}); run npm ci`);
  return m;
}

/**
 * Why `codec` cannot run in this process — the package of its lossless stage failed to load
 * (a tree installed without it: run npm ci) — or null when it can. Peers are refused such a
 * codec when they negotiate it, and this process refuses to send with it: never raw instead.
 */
export function codecUnavailable(codec: { name: string; lossless: string }): string | null {
  const [m, name] = codec.lossless === 'lz4' ? [lz4M, 'lz4-napi'] : codec.lossless === 'zstd' ? [zstdM, '@bokuweb/zstd-wasm'] : [null, ''];
  if (!(m instanceof Error)) return null;
  return `codec '${codec.name}' needs the npm package ${name}, which cannot be loaded here (${m.message.split('\n')[0]}); run npm ci`;
}

const corrupt = (what: string, why: string): Error => kerfError('KERF_ERR_PROTOCOL', `${what}: ${why}`);

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** lz4 block with the uncompressed size prepended (u32 LE), as lz4_flex writes it. */
export function lz4Encode(raw: Uint8Array): Uint8Array {
  return need(lz4M, 'lz4-napi').compressSync(asBuffer(raw));
}

export function lz4Decode(coded: Uint8Array, rawBytes: number, what: string): Uint8Array {
  if (coded.length < 4) throw corrupt(what, `lz4 data of ${coded.length} bytes is shorter than its size prefix`);
  const said = coded[0]! | (coded[1]! << 8) | (coded[2]! << 16) | (coded[3]! * 2 ** 24);
  if (said !== rawBytes) throw corrupt(what, `lz4 data says ${said} bytes, the tensor needs ${rawBytes}`);
  const lz = need(lz4M, 'lz4-napi');
  let out: Buffer;
  try { out = lz.uncompressSync(coded); } catch (e) { throw corrupt(what, `lz4 data is corrupt (${(e as Error).message})`); }
  if (out.length !== rawBytes) throw corrupt(what, `lz4 data decoded to ${out.length} bytes, the tensor needs ${rawBytes}`);
  return out;
}

export function zstdEncode(raw: Uint8Array, level: number): Uint8Array {
  return need(zstdM, '@bokuweb/zstd-wasm').compress(raw, level);
}

/** Frame_Content_Size of the first zstd frame (RFC 8878 §3.1.1.1), or -1 when absent or malformed. */
function zstdContentSize(b: Uint8Array): number {
  if (b.length < 6 || b[0] !== 0x28 || b[1] !== 0xb5 || b[2] !== 0x2f || b[3] !== 0xfd) return -1;
  const fhd = b[4]!;
  if (fhd & 0x08) return -1; // reserved bit
  const single = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const dictBytes = [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
  const at = 5 + (single ? 0 : 1) + dictBytes;
  if (fcsBytes === 0 || at + fcsBytes > b.length) return -1;
  let v = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) v = v * 256 + b[at + i]!;
  return fcsBytes === 2 ? v + 256 : v;
}

export function zstdDecode(coded: Uint8Array, rawBytes: number, what: string): Uint8Array {
  const said = zstdContentSize(coded);
  if (said < 0) throw corrupt(what, 'zstd data has no valid frame header with a content size');
  if (said !== rawBytes) throw corrupt(what, `zstd data says ${said} bytes, the tensor needs ${rawBytes}`);
  let out: Uint8Array;
  const z = need(zstdM, '@bokuweb/zstd-wasm');
  try { out = z.decompress(coded); } catch (e) { throw corrupt(what, `zstd data is corrupt (${(e as Error).message})`); }
  if (out.length !== rawBytes) throw corrupt(what, `zstd data decoded to ${out.length} bytes, the tensor needs ${rawBytes}`);
  return out;
}

/**
 * Byte shuffle (as in Blosc/HDF5): byte j of every element together, so the similar high bytes
 * of neighbouring values form runs. `size` is the element size in bytes; a trailing partial
 * element stays in place.
 */
export function shuffle(raw: Uint8Array, size: number): Uint8Array {
  const n = Math.floor(raw.length / size);
  const out = new Uint8Array(raw.length);
  for (let j = 0; j < size; j++) {
    const base = j * n;
    for (let i = 0, s = j; i < n; i++, s += size) out[base + i] = raw[s]!;
  }
  out.set(raw.subarray(n * size), n * size);
  return out;
}

export function unshuffle(sh: Uint8Array, size: number): Uint8Array {
  const n = Math.floor(sh.length / size);
  const out = new Uint8Array(sh.length);
  for (let j = 0; j < size; j++) {
    const base = j * n;
    for (let i = 0, d = j; i < n; i++, d += size) out[d] = sh[base + i]!;
  }
  out.set(sh.subarray(n * size), n * size);
  return out;
}
