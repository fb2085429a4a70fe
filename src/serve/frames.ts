/**
 * The wire format between tiers, with no I/O: dtypes, tensors, frame encoding and a streaming
 * decoder that survives any bytes. docs/protocol.md describes the same layout byte by byte.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { kerfError, type KerfError } from '../errors.js';
import { dtypeSize, dtypeToOnnx } from '../graph/dtypes.js';
import { decodeEnvelope, encodeEnvelope, envelopeStages, parseCodec, type Codec } from '../codec/index.js';

/** Protocol version carried in every frame header. */
export const PROTOCOL_VERSION = 1;
/** Bytes of the fixed frame header: u32 length, u8 version, u8 type, u16 flags, u32 request id. */
export const HEADER_BYTES = 12;
/** Default cap on one frame (header included) once the peer is authenticated. */
export const DEFAULT_MAX_FRAME_BYTES = 512 * 1024 * 1024;
/** Cap on one frame before the handshake completes: an unauthenticated peer cannot make us allocate. */
export const HANDSHAKE_MAX_FRAME_BYTES = 64 * 1024;
/** Frames, tensor data and the data section start on 8-byte boundaries counted from the frame start. */
export const ALIGN = 8;
/** Header flag of a REQUEST/RESPONSE whose tensors travel as codec envelopes (docs/codec.md). */
export const FLAG_CODED = 0x0001;

/** Element types a tensor may have on the wire: every type onnxruntime-node accepts. */
export type WireDType =
  | 'float32' | 'float64' | 'float16'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'bool' | 'string' | 'int4' | 'uint4';

/** The JavaScript array that holds each dtype's elements (onnxruntime-common's choices). */
export interface WireDataMap {
  float32: Float32Array; float64: Float64Array; float16: Uint16Array;
  int8: Int8Array; uint8: Uint8Array; int16: Int16Array; uint16: Uint16Array;
  int32: Int32Array; uint32: Uint32Array; int64: BigInt64Array; uint64: BigUint64Array;
  /** one byte per element, 0 or 1 */
  bool: Uint8Array;
  string: string[];
  /** packed two elements per byte, low nibble first (ONNX layout) */
  int4: Int8Array;
  /** packed two elements per byte, low nibble first (ONNX layout) */
  uint4: Uint8Array;
}

/** Any numeric typed array a tensor may hold. */
export type WireTypedArray = Exclude<WireDataMap[WireDType], string[]>;

/**
 * A tensor as it crosses the wire, independent of onnxruntime (the engine layer converts).
 * `data` is little-endian memory of `dims` in row-major order; `dims` are concrete (no -1).
 */
export interface WireTensor<T extends WireDType = WireDType> {
  name: string;
  dtype: T;
  dims: number[];
  data: WireDataMap[T];
}

/** String key/value pairs a request or response carries beside its tensors (trace ids, plan epoch…). */
export type Meta = Record<string, string>;

type ArrayCtor = { new(buffer: ArrayBufferLike, byteOffset: number, length: number): WireTypedArray; new(length: number): WireTypedArray; BYTES_PER_ELEMENT: number };

interface DTypeInfo { code: number; size: number; ctor: ArrayCtor | null }

/** The array type of each wire dtype; its ONNX TensorProto.DataType code (the byte sent) and
 * bytes per element (0.5 for 4-bit, 0 for string) come from the one dtype table, graph/dtypes. */
const CTORS: Record<WireDType, ArrayCtor | null> = {
  float32: Float32Array as unknown as ArrayCtor,
  uint8: Uint8Array as unknown as ArrayCtor,
  int8: Int8Array as unknown as ArrayCtor,
  uint16: Uint16Array as unknown as ArrayCtor,
  int16: Int16Array as unknown as ArrayCtor,
  int32: Int32Array as unknown as ArrayCtor,
  int64: BigInt64Array as unknown as ArrayCtor,
  string: null,
  bool: Uint8Array as unknown as ArrayCtor,
  float16: Uint16Array as unknown as ArrayCtor,
  float64: Float64Array as unknown as ArrayCtor,
  uint32: Uint32Array as unknown as ArrayCtor,
  uint64: BigUint64Array as unknown as ArrayCtor,
  uint4: Uint8Array as unknown as ArrayCtor,
  int4: Int8Array as unknown as ArrayCtor,
};
const DTYPES = Object.fromEntries(Object.entries(CTORS).map(([d, ctor]) => [d, { code: dtypeToOnnx(d as WireDType), size: dtypeSize(d as WireDType), ctor }])) as Record<WireDType, DTypeInfo>;
const BY_CODE = new Map<number, WireDType>(Object.entries(DTYPES).map(([k, v]) => [v.code, k as WireDType]));

/** All dtypes the protocol carries. */
export const DTYPE_NAMES: readonly WireDType[] = Object.freeze(Object.keys(DTYPES) as WireDType[]);
/** ONNX TensorProto.DataType code of a dtype (the byte sent on the wire). */
export function dtypeCode(dtype: WireDType): number { return DTYPES[dtype].code; }

/** Frame type byte. */
export const FrameType = {
  /** server → client, first frame: server nonce */
  CHALLENGE: 1,
  /** client → server: client nonce + HMAC proving the token */
  AUTH: 2,
  /** server → client: HMAC proving the server knows the token too */
  WELCOME: 3,
  REQUEST: 4,
  RESPONSE: 5,
  ERROR: 6,
  PING: 7,
  PONG: 8,
  CONTROL: 9,
  CONTROL_REPLY: 10,
  /** client → server: drop request `id` */
  CANCEL: 11,
  /** server → client: send no new requests; in-flight ones complete */
  GOAWAY: 12,
} as const;
export type FrameTypeName = keyof typeof FrameType;
const TYPE_NAMES = new Map<number, FrameTypeName>(Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]));

/** Four bytes "KERF" opening the handshake payloads, so a stray client is recognised at once. */
const MAGIC = 0x4652454b; // 'K','E','R','F' read as u32 LE
export const NONCE_BYTES = 16;
export const MAC_BYTES = 32;

/** A decoded frame. Tensor data are views over the received bytes where alignment allows. */
export type Frame =
  /** `codecs`: what the server decodes in requests ('*' or canonical names joined by ','; absent: none) */
  | { type: 'CHALLENGE'; id: number; nonce: Uint8Array; info: string; codecs?: string }
  /** `codec`: the codec the client's requests will use, `replyCodec` the one it asks replies in (absent: none) */
  | { type: 'AUTH'; id: number; nonce: Uint8Array; mac: Uint8Array; info: string; codec?: string; replyCodec?: string }
  | { type: 'WELCOME'; id: number; mac: Uint8Array; info: string }
  | { type: 'REQUEST'; id: number; tensors: WireTensor[]; meta: Meta; codec?: string }
  | { type: 'RESPONSE'; id: number; tensors: WireTensor[]; meta: Meta; codec?: string }
  | { type: 'ERROR'; id: number; code: string; message: string }
  | { type: 'PING'; id: number; payload: Uint8Array }
  | { type: 'PONG'; id: number; payload: Uint8Array }
  | { type: 'CONTROL'; id: number; op: string; body: Uint8Array }
  | { type: 'CONTROL_REPLY'; id: number; body: Uint8Array }
  | { type: 'CANCEL'; id: number }
  | { type: 'GOAWAY'; id: number };

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function protocolError(message: string): KerfError {
  return kerfError('KERF_ERR_PROTOCOL', message);
}

const align = (n: number): number => (n + ALIGN - 1) & ~(ALIGN - 1);

/** Number of elements of `dims`, validating every dimension. */
export function elementCount(dims: readonly number[], what = 'tensor'): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw kerfError('KERF_ERR_SHAPE', `${what}: dimension ${d} in [${dims.join(',')}] is not a concrete size`);
    }
    n *= d;
  }
  return n;
}

/** Bytes a tensor's data occupies on the wire (fixed-size dtypes). */
function fixedByteLength(dtype: WireDType, count: number): number {
  const size = DTYPES[dtype].size;
  return size === 0.5 ? Math.ceil(count / 2) : count * size;
}

/** Reverse byte order of each element (only on big-endian hosts, which must send little-endian). */
export function swapBytes(bytes: Uint8Array, size: number): Uint8Array {
  if (size <= 1) return bytes;
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j]!;
  return out;
}

interface EncodedTensor { desc: Uint8Array[]; descBytes: number; data: Uint8Array[]; dataBytes: number }

/** Descriptor and data chunks of one tensor, validating dtype, dims and data length. */
function encodeTensor(t: WireTensor): EncodedTensor {
  const info = DTYPES[t.dtype as WireDType];
  const what = `tensor '${t.name}'`;
  if (!info) throw kerfError('KERF_ERR_SHAPE', `${what}: unknown dtype '${String(t.dtype)}' (one of ${DTYPE_NAMES.join(', ')})`);
  if (!Array.isArray(t.dims) || t.dims.length > 255) throw kerfError('KERF_ERR_SHAPE', `${what}: dims must be an array of at most 255 sizes`);
  const count = elementCount(t.dims, what);
  const name = utf8.encode(t.name);
  if (name.length > 0xffff) throw kerfError('KERF_ERR_SHAPE', `${what}: name longer than 65535 bytes`);
  let data: Uint8Array[];
  let dataBytes: number;
  if (t.dtype === 'string') {
    const strs = t.data as string[];
    if (!Array.isArray(strs) || strs.length !== count) {
      throw kerfError('KERF_ERR_SHAPE', `${what}: string data has ${Array.isArray(strs) ? strs.length : 'no'} elements, dims [${t.dims.join(',')}] need ${count}`);
    }
    // One contiguous block (u32 lengths, then UTF-8 bytes): a write per string would be slow.
    let total = 4 * count;
    const lens = strs.map((x) => { const n = Buffer.byteLength(String(x), 'utf8'); total += n; return n; });
    const block = Buffer.allocUnsafe(total);
    let o = 4 * count;
    for (let i = 0; i < count; i++) {
      block.writeUInt32LE(lens[i]!, 4 * i);
      o += block.write(String(strs[i]), o, 'utf8');
    }
    data = [block];
    dataBytes = total;
  } else {
    const arr = t.data as WireTypedArray;
    if (!ArrayBuffer.isView(arr) || !(arr instanceof (info.ctor as unknown as typeof Uint8Array))) {
      throw kerfError('KERF_ERR_SHAPE', `${what}: dtype ${t.dtype} needs a ${(info.ctor as { name?: string }).name}, got ${(arr as object)?.constructor?.name ?? typeof arr}`);
    }
    dataBytes = fixedByteLength(t.dtype, count);
    if (arr.byteLength !== dataBytes) {
      throw kerfError('KERF_ERR_SHAPE', `${what}: ${t.dtype} dims [${t.dims.join(',')}] need ${dataBytes} bytes, data has ${arr.byteLength}`);
    }
    let bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
    if (!HOST_LE) bytes = swapBytes(bytes, info.size);
    data = [bytes];
  }
  if (dataBytes > 0xffffffff) throw kerfError('KERF_ERR_SHAPE', `${what}: data larger than 4 GiB`);
  const desc = new Uint8Array(8 + name.length + 4 * t.dims.length);
  const dv = new DataView(desc.buffer);
  dv.setUint8(0, info.code);
  dv.setUint8(1, t.dims.length);
  dv.setUint16(2, name.length, true);
  dv.setUint32(4, dataBytes, true);
  desc.set(name, 8);
  t.dims.forEach((d, i) => dv.setUint32(8 + name.length + 4 * i, d, true));
  return { desc: [desc], descBytes: desc.length, data, dataBytes };
}

function encodeMeta(meta: Meta | undefined): Uint8Array {
  const entries = Object.entries(meta ?? {});
  if (entries.length > 0xffff) throw kerfError('KERF_ERR_USAGE', 'meta: more than 65535 entries');
  const parts: Uint8Array[] = [];
  let n = 2;
  for (const [k, v] of entries) {
    const kb = utf8.encode(k); const vb = utf8.encode(String(v));
    if (kb.length > 0xffff) throw kerfError('KERF_ERR_USAGE', `meta key '${k.slice(0, 40)}…' longer than 65535 bytes`);
    parts.push(kb, vb);
    n += 6 + kb.length + vb.length;
  }
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, entries.length, true);
  let o = 2;
  for (let i = 0; i < parts.length; i += 2) {
    const kb = parts[i]!; const vb = parts[i + 1]!;
    dv.setUint16(o, kb.length, true); out.set(kb, o + 2); o += 2 + kb.length;
    dv.setUint32(o, vb.length, true); out.set(vb, o + 4); o += 4 + vb.length;
  }
  return out;
}

const ZEROS = new Uint8Array(ALIGN);

/** Below this many bytes a frame is copied into one buffer (one write beats a writev of small pieces). */
const COALESCE_BYTES = 16 * 1024;

/**
 * Encode a frame into chunks to write in order (e.g. corked socket writes). Tensor data are
 * sent as views of the caller's arrays, not copied (unless the frame is small), so the caller
 * must not modify them until the write has flushed.
 */
export function encodeFrame(frame: Frame): Uint8Array[] {
  const body: Uint8Array[] = [];
  switch (frame.type) {
    case 'CHALLENGE': body.push(u32(MAGIC), frame.nonce, str16(frame.info), ...(frame.codecs ? [str16(frame.codecs)] : [])); break;
    case 'AUTH': body.push(u32(MAGIC), frame.nonce, frame.mac, str16(frame.info), ...(frame.codec || frame.replyCodec ? [str16(frame.codec ?? 'none'), str16(frame.replyCodec ?? 'none')] : [])); break;
    case 'WELCOME': body.push(frame.mac, str16(frame.info)); break;
    case 'REQUEST': case 'RESPONSE': return encodeTensorFrame(frame.type, frame.id, frame.tensors, frame.meta, frame.codec);
    case 'ERROR': body.push(str16(frame.code), str32(frame.message)); break;
    case 'PING': case 'PONG': body.push(u32(frame.payload.length), frame.payload); break;
    case 'CONTROL_REPLY': body.push(u32(frame.body.length), frame.body); break;
    case 'CONTROL': body.push(str16(frame.op), u32(frame.body.length), frame.body); break;
    case 'CANCEL': case 'GOAWAY': break;
    default: throw kerfError('KERF_ERR_PROTOCOL', `cannot encode frame type '${(frame as { type: string }).type}'`);
  }
  const bodyBytes = body.reduce((a, b) => a + b.length, 0);
  const total = align(HEADER_BYTES + bodyBytes);
  const out = new Uint8Array(total);
  writeHeader(out, total, FrameType[frame.type], frame.id);
  let o = HEADER_BYTES;
  for (const b of body) { out.set(b, o); o += b.length; }
  return [out];
}

function writeHeader(buf: Uint8Array, total: number, type: number, id: number, flags = 0): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, HEADER_BYTES);
  dv.setUint32(0, total - 4, true);
  dv.setUint8(4, PROTOCOL_VERSION);
  dv.setUint8(5, type);
  dv.setUint16(6, flags, true);
  dv.setUint32(8, id >>> 0, true);
}

/** A tensor's data replaced by its codec envelope (the descriptor then gives the envelope's length). */
function encodeCoded(codec: Codec, t: WireTensor, e: EncodedTensor): EncodedTensor {
  const raw = e.data.length === 1 ? e.data[0]! : concatBytes(e.data, e.dataBytes);
  const env = encodeEnvelope(codec, raw, { dtype: t.dtype, dims: t.dims, elementBytes: DTYPES[t.dtype].size });
  if (env.length > 0xffffffff) throw kerfError('KERF_ERR_SHAPE', `tensor '${t.name}': coded data larger than 4 GiB`);
  new DataView(e.desc[0]!.buffer).setUint32(4, env.length, true);
  return { desc: e.desc, descBytes: e.descBytes, data: [env], dataBytes: env.length };
}

function concatBytes(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function encodeTensorFrame(type: 'REQUEST' | 'RESPONSE', id: number, tensors: WireTensor[], meta: Meta | undefined, codecName?: string): Uint8Array[] {
  if (tensors.length > 0xffff) throw kerfError('KERF_ERR_USAGE', `${tensors.length} tensors in one frame (at most 65535)`);
  const codec = codecName === undefined || codecName === 'none' ? null : parseCodec(codecName, `${type} frame codec`);
  const metaBytes = encodeMeta(meta);
  const codecBytes = codec ? str16(codec.name) : new Uint8Array(0);
  let enc = tensors.map(encodeTensor);
  if (codec) enc = enc.map((e, i) => encodeCoded(codec, tensors[i]!, e));
  const headLen = HEADER_BYTES + codecBytes.length + metaBytes.length + 2 + enc.reduce((a, e) => a + e.descBytes, 0);
  const dataStart = align(headLen);
  let total = dataStart;
  for (const e of enc) total = align(total + e.dataBytes);
  if (total > 0xffffffff) throw kerfError('KERF_ERR_SHAPE', `frame of ${total} bytes exceeds the 4 GiB wire limit`);
  const small = total <= COALESCE_BYTES;
  const head = new Uint8Array(small ? total : dataStart);
  writeHeader(head, total, FrameType[type], id, codec ? FLAG_CODED : 0);
  let o = HEADER_BYTES;
  head.set(codecBytes, o); o += codecBytes.length;
  head.set(metaBytes, o); o += metaBytes.length;
  new DataView(head.buffer).setUint16(o, tensors.length, true); o += 2;
  for (const e of enc) for (const d of e.desc) { head.set(d, o); o += d.length; }
  if (small) {
    o = dataStart;
    for (const e of enc) {
      for (const d of e.data) { head.set(d, o); o += d.length; }
      o = align(o);
    }
    return [head];
  }
  const chunks: Uint8Array[] = [head];
  for (const e of enc) {
    for (const d of e.data) if (d.length > 0) chunks.push(d);
    const pad = align(e.dataBytes) - e.dataBytes;
    if (pad > 0) chunks.push(ZEROS.subarray(0, pad));
  }
  return chunks;
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}
function str16(s: string): Uint8Array {
  const b = utf8.encode(s);
  if (b.length > 0xffff) throw kerfError('KERF_ERR_USAGE', `string '${s.slice(0, 40)}…' longer than 65535 bytes`);
  const out = new Uint8Array(2 + b.length);
  new DataView(out.buffer).setUint16(0, b.length, true);
  out.set(b, 2);
  return out;
}
function str32(s: string): Uint8Array {
  const b = utf8.encode(s);
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length, true);
  out.set(b, 4);
  return out;
}

/** Bounds-checked little-endian reader over one frame; every overrun is a protocol error. */
class Reader {
  private readonly dv: DataView;
  o: number;
  constructor(readonly buf: Uint8Array, start: number, readonly what: string) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.o = start;
  }
  need(n: number, field: string): void {
    if (this.o + n > this.buf.length) {
      throw protocolError(`${this.what}: ${field} needs ${n} bytes at offset ${this.o}, frame has ${this.buf.length}`);
    }
  }
  u8(field: string): number { this.need(1, field); return this.dv.getUint8(this.o++); }
  u16(field: string): number { this.need(2, field); const v = this.dv.getUint16(this.o, true); this.o += 2; return v; }
  u32(field: string): number { this.need(4, field); const v = this.dv.getUint32(this.o, true); this.o += 4; return v; }
  /** A plain Uint8Array view (never a Buffer, whatever the socket handed us). */
  bytes(n: number, field: string): Uint8Array {
    this.need(n, field);
    const b = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.o, n);
    this.o += n;
    return b;
  }
  text(n: number, field: string): string {
    const b = this.bytes(n, field);
    try { return utf8Strict.decode(b); } catch { throw protocolError(`${this.what}: ${field} is not valid UTF-8`); }
  }
  str16(field: string): string { return this.text(this.u16(field + ' length'), field); }
  str32(field: string): string { return this.text(this.u32(field + ' length'), field); }
  /** A trailing optional str16 (added in a later kerf): '' when absent (the zero padding reads as length 0). */
  optStr16(field: string): string { return this.o + 2 <= this.buf.length ? this.str16(field) : ''; }
  blob(field: string): Uint8Array { return this.bytes(this.u32(field + ' length'), field); }
  /** Only zero padding (< ALIGN bytes) may follow the last field. */
  end(): void {
    const left = this.buf.length - this.o;
    if (left >= ALIGN) throw protocolError(`${this.what}: ${left} unexpected bytes after the last field`);
  }
}

/** What a receiver accepts in coded frames. */
export interface ParseOptions {
  /** canonical codec names this side agreed to decode (default: none, so a coded frame is refused) */
  codecs?: ReadonlySet<string>;
  /** largest decoded tensor, in bytes (default DEFAULT_MAX_FRAME_BYTES): a small coded frame cannot make us allocate more */
  maxDecodedBytes?: number;
}

/**
 * Parse one whole frame (as returned by FrameDecoder). Tensor arrays are views over `buf`
 * when their absolute byte offset suits the element size, else copies. A coded frame is
 * decoded here (its `codec` names the codec) if `opts.codecs` holds its codec.
 */
export function parseFrame(buf: Uint8Array, opts: ParseOptions = {}): Frame {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const typeByte = dv.getUint8(5);
  const flags = dv.getUint16(6, true);
  const id = dv.getUint32(8, true);
  const type = TYPE_NAMES.get(typeByte);
  if (!type) throw protocolError(`frame type ${typeByte} is unknown`);
  const r = new Reader(buf, HEADER_BYTES, `${type} frame (id ${id})`);
  if (flags !== 0 && !(flags === FLAG_CODED && (type === 'REQUEST' || type === 'RESPONSE'))) {
    throw protocolError(`${r.what}: unknown flags 0x${flags.toString(16)}`);
  }
  switch (type) {
    case 'CHALLENGE': {
      magic(r);
      const nonce = r.bytes(NONCE_BYTES, 'nonce'); const info = r.str16('info'); const codecs = r.optStr16('codecs'); r.end();
      return codecs ? { type, id, nonce, info, codecs } : { type, id, nonce, info };
    }
    case 'AUTH': {
      magic(r);
      const nonce = r.bytes(NONCE_BYTES, 'nonce'); const mac = r.bytes(MAC_BYTES, 'mac'); const info = r.str16('info');
      const codec = r.optStr16('codec'); const replyCodec = codec ? r.optStr16('reply codec') : ''; r.end();
      return codec ? { type, id, nonce, mac, info, codec, ...(replyCodec ? { replyCodec } : {}) } : { type, id, nonce, info, mac };
    }
    case 'WELCOME': { const mac = r.bytes(MAC_BYTES, 'mac'); const info = r.str16('info'); r.end(); return { type, id, mac, info }; }
    case 'REQUEST': case 'RESPONSE': {
      const codec = flags === FLAG_CODED ? acceptedCodec(r, opts) : null;
      const { tensors, meta } = parseTensors(r, codec, opts.maxDecodedBytes ?? DEFAULT_MAX_FRAME_BYTES);
      return codec ? { type, id, tensors, meta, codec: codec.name } : { type, id, tensors, meta };
    }
    case 'ERROR': { const code = r.str16('code'); const message = r.str32('message'); r.end(); return { type, id, code, message }; }
    case 'PING': case 'PONG': { const payload = r.blob('payload'); r.end(); return { type, id, payload }; }
    case 'CONTROL': { const op = r.str16('op'); const body = r.blob('body'); r.end(); return { type, id, op, body }; }
    case 'CONTROL_REPLY': { const body = r.blob('body'); r.end(); return { type, id, body }; }
    case 'CANCEL': case 'GOAWAY': r.end(); return { type, id };
  }
}

function magic(r: Reader): void {
  if (r.u32('magic') !== MAGIC) throw protocolError(`${r.what}: missing the 'KERF' magic (not a kerf peer?)`);
}

function acceptedCodec(r: Reader, opts: ParseOptions): Codec {
  const name = r.str16('codec');
  let codec: Codec;
  try { codec = parseCodec(name); } catch { throw protocolError(`${r.what}: unknown codec '${name.slice(0, 60)}'`); }
  if (codec.name !== name || codec.name === 'none') throw protocolError(`${r.what}: codec '${name}' is not a canonical codec name`);
  if (!opts.codecs?.has(codec.name)) {
    throw protocolError(`${r.what}: uses codec '${codec.name}', which was not negotiated on this connection (accepted: ${[...(opts.codecs ?? [])].join(', ') || 'none'})`);
  }
  return codec;
}

function parseTensors(r: Reader, codec: Codec | null = null, maxDecoded = DEFAULT_MAX_FRAME_BYTES): { tensors: WireTensor[]; meta: Meta } {
  const meta: Meta = {};
  const nMeta = r.u16('meta count');
  for (let i = 0; i < nMeta; i++) {
    const k = r.str16(`meta key ${i}`);
    meta[k] = r.str32(`meta '${k}'`);
  }
  const n = r.u16('tensor count');
  const descs: { name: string; dtype: WireDType; dims: number[]; bytes: number }[] = [];
  for (let i = 0; i < n; i++) {
    const code = r.u8(`tensor ${i} dtype`);
    const dtype = BY_CODE.get(code);
    if (!dtype) throw protocolError(`${r.what}: tensor ${i} has unknown dtype code ${code}`);
    const rank = r.u8(`tensor ${i} rank`);
    const nameLen = r.u16(`tensor ${i} name length`);
    const bytes = r.u32(`tensor ${i} byte length`);
    const name = r.text(nameLen, `tensor ${i} name`);
    const dims: number[] = [];
    for (let d = 0; d < rank; d++) dims.push(r.u32(`tensor '${name}' dim ${d}`));
    descs.push({ name, dtype, dims, bytes });
  }
  r.o = align(r.o);
  const tensors: WireTensor[] = [];
  for (const d of descs) {
    const what = `${r.what}: tensor '${d.name}'`;
    let count = 1;
    for (const x of d.dims) count *= x;
    r.need(d.bytes, `tensor '${d.name}' data`);
    const start = r.o;
    let data: WireDataMap[WireDType];
    if (codec) {
      const env = r.buf.subarray(start, start + d.bytes);
      const st = envelopeStages(env, what);
      if ((st.lossy !== 'none' && st.lossy !== codec.lossy) || (st.lossless !== 'none' && st.lossless !== codec.lossless)) {
        throw protocolError(`${what}: envelope stages ${st.lossy}/${st.lossless} are not part of the frame's codec '${codec.name}'`);
      }
      if (d.dtype !== 'string' && count * DTYPES[d.dtype].size > maxDecoded) {
        throw protocolError(`${what}: [${d.dims.join(',')}] decodes to more than the limit of ${maxDecoded} bytes`);
      }
      const info = { dtype: d.dtype, dims: d.dims, elementBytes: DTYPES[d.dtype].size };
      const raw = decodeEnvelope(env, info, d.dtype === 'string' ? null : fixedByteLength(d.dtype, count), what, maxDecoded);
      data = d.dtype === 'string' ? parseStrings(raw, count, what) : typedView(raw, 0, d.dtype, count);
    } else if (d.dtype === 'string') {
      data = parseStrings(r.buf.subarray(start, start + d.bytes), count, what);
    } else {
      const want = fixedByteLength(d.dtype, count);
      if (want !== d.bytes) throw protocolError(`${what}: ${d.dtype} [${d.dims.join(',')}] needs ${want} bytes, frame says ${d.bytes}`);
      data = typedView(r.buf, start, d.dtype, count);
    }
    r.o = align(start + d.bytes);
    tensors.push({ name: d.name, dtype: d.dtype, dims: d.dims, data } as WireTensor);
  }
  if (r.o > r.buf.length) throw protocolError(`${r.what}: tensor data overruns the frame`);
  r.end();
  return { tensors, meta };
}

function typedView(buf: Uint8Array, start: number, dtype: WireDType, count: number): WireTypedArray {
  const info = DTYPES[dtype];
  const ctor = info.ctor!;
  const len = info.size === 0.5 ? Math.ceil(count / 2) : count;
  const bytes = fixedByteLength(dtype, count);
  const abs = buf.byteOffset + start;
  if (HOST_LE && abs % ctor.BYTES_PER_ELEMENT === 0) return new ctor(buf.buffer, abs, len);
  // Misaligned (frame inside an odd socket chunk) or big-endian host: one copy of this tensor.
  let src = buf.subarray(start, start + bytes);
  if (!HOST_LE) src = swapBytes(src, info.size);
  const out = new ctor(len);
  new Uint8Array(out.buffer, out.byteOffset, bytes).set(src);
  return out;
}

function parseStrings(b: Uint8Array, count: number, what: string): string[] {
  if (4 * count > b.length) throw protocolError(`${what}: ${count} string lengths do not fit in ${b.length} bytes`);
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  // Valid UTF-8 overall + every string starting on a character boundary ⇒ every string is valid.
  if (!isUtf8(buf.subarray(4 * count))) throw protocolError(`${what}: string data is not valid UTF-8`);
  const out: string[] = new Array(count);
  let o = 4 * count;
  for (let i = 0; i < count; i++) {
    const n = buf.readUInt32LE(4 * i);
    if (o + n > b.length) throw protocolError(`${what}: string ${i} of ${n} bytes overruns the tensor data`);
    if (n > 0 && (buf[o]! & 0xc0) === 0x80) throw protocolError(`${what}: string ${i} starts inside a UTF-8 character`);
    out[i] = buf.toString('utf8', o, o + n);
    o += n;
  }
  if (o !== b.length) throw protocolError(`${what}: ${b.length - o} bytes after the last string`);
  return out;
}

/** Options of a FrameDecoder. */
export interface DecoderOptions {
  /** Refuse (without allocating) any frame larger than this, header included. */
  maxFrameBytes?: number;
}

/**
 * Streaming decoder: push socket chunks of any size; whole frames come out. A frame inside
 * one chunk is returned as a view of that chunk (no copy); a frame spanning chunks is
 * assembled into one buffer allocated once, after its announced length passed the cap.
 * After the first error the decoder stays failed.
 */
export class FrameDecoder {
  /** Current cap; raise it after the handshake. */
  maxFrameBytes: number;
  private head = new Uint8Array(HEADER_BYTES);
  private headFill = 0;
  private cur: Uint8Array | null = null;
  private curFill = 0;
  private failed: KerfError | null = null;
  /** Frames decoded so far. */
  frames = 0;

  constructor(opts: DecoderOptions = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes of a partial frame held (0 between frames). */
  get buffered(): number { return this.cur ? this.curFill : this.headFill; }

  /** Feed bytes; returns the raw frames completed by them (each starts with its header). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failed) throw this.failed;
    try {
      return this.pushInner(chunk);
    } catch (e) {
      this.failed = e as KerfError;
      this.cur = null;
      this.headFill = 0;
      throw e;
    }
  }

  private pushInner(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let o = 0;
    const n = chunk.length;
    while (o < n) {
      if (this.cur) {
        const take = Math.min(this.cur.length - this.curFill, n - o);
        this.cur.set(chunk.subarray(o, o + take), this.curFill);
        this.curFill += take; o += take;
        if (this.curFill === this.cur.length) { out.push(this.cur); this.cur = null; this.frames++; }
        continue;
      }
      if (this.headFill === 0 && n - o >= HEADER_BYTES) {
        const total = this.checkHeader(chunk, o);
        if (n - o >= total) { out.push(chunk.subarray(o, o + total)); o += total; this.frames++; continue; }
        this.cur = allocFrame(total);
        this.cur.set(chunk.subarray(o, n));
        this.curFill = n - o; o = n;
        continue;
      }
      // Header split across chunks: gather it, checking the length as soon as 4 bytes are in.
      const take = Math.min(HEADER_BYTES - this.headFill, n - o);
      this.head.set(chunk.subarray(o, o + take), this.headFill);
      this.headFill += take; o += take;
      if (this.headFill >= 4 && this.headFill < HEADER_BYTES) this.checkLength(this.head, 0);
      if (this.headFill === HEADER_BYTES) {
        const total = this.checkHeader(this.head, 0);
        this.headFill = 0;
        this.cur = allocFrame(total);
        this.cur.set(this.head);
        this.curFill = HEADER_BYTES;
        if (total === HEADER_BYTES) { out.push(this.cur); this.cur = null; this.frames++; }
      }
    }
    return out;
  }

  private checkLength(b: Uint8Array, o: number): number {
    const len = b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! * 2 ** 24);
    const total = (len >>> 0) + 4;
    if (total > this.maxFrameBytes) {
      throw protocolError(`frame ${this.frames + 1} announces ${total} bytes, above the limit of ${this.maxFrameBytes}; refused`);
    }
    if (total < HEADER_BYTES || total % ALIGN !== 0) {
      throw protocolError(`frame ${this.frames + 1} announces ${total} bytes, not a valid frame length (≥ ${HEADER_BYTES}, multiple of ${ALIGN})`);
    }
    return total;
  }

  private checkHeader(b: Uint8Array, o: number): number {
    const total = this.checkLength(b, o);
    const version = b[o + 4]!;
    if (version !== PROTOCOL_VERSION) {
      throw protocolError(`frame ${this.frames + 1} has protocol version ${version}, this kerf speaks ${PROTOCOL_VERSION}`);
    }
    const type = b[o + 5]!;
    if (!TYPE_NAMES.has(type)) throw protocolError(`frame ${this.frames + 1} has unknown type ${type}`);
    const flags = b[o + 6]! | (b[o + 7]! << 8);
    if (flags !== 0 && !(flags === FLAG_CODED && (type === FrameType.REQUEST || type === FrameType.RESPONSE))) {
      throw protocolError(`frame ${this.frames + 1} has unknown flags`);
    }
    return total;
  }
}

function allocFrame(total: number): Uint8Array {
  // Own ArrayBuffer at offset 0 (never the shared pool), not zero-filled: every 8-aligned
  // field inside is aligned for any typed array.
  const b = Buffer.allocUnsafeSlow(total);
  return new Uint8Array(b.buffer, b.byteOffset, total);
}
