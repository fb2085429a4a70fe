import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKerfError } from '../../src/errors.js';
import {
  DTYPE_NAMES, FrameDecoder, encodeFrame, parseFrame, HANDSHAKE_MAX_FRAME_BYTES,
  type WireDType, type Frame, type WireTensor,
} from '../../src/serve/protocol.js';
import { swapBytes } from '../../src/serve/frames.js';
import { mulberry32 } from '../../src/util/prng.js';
import { concatChunks, sampleTensor } from '../support/tensors.js';

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
const rng = mulberry32;
const sample = sampleTensor;
const concat = concatChunks;

function assertSameTensors(got: WireTensor[], want: WireTensor[]): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!; const w = want[i]!;
    assert.equal(g.name, w.name); assert.equal(g.dtype, w.dtype); assert.deepEqual(g.dims, w.dims);
    if (w.dtype === 'string') assert.deepEqual(g.data, w.data);
    else {
      assert.equal(g.data.constructor, w.data.constructor, `${w.dtype} array type`);
      const gb = new Uint8Array((g.data as Uint8Array).buffer, (g.data as Uint8Array).byteOffset, (g.data as Uint8Array).byteLength);
      const wb = new Uint8Array((w.data as Uint8Array).buffer, (w.data as Uint8Array).byteOffset, (w.data as Uint8Array).byteLength);
      assert.deepEqual(gb, wb, `${w.dtype} bytes`);
    }
  }
}

function decodeAll(bytes: Uint8Array, split: (i: number) => number, opts?: { maxFrameBytes?: number }, whole = true): Frame[] {
  const d = new FrameDecoder(opts);
  const out: Frame[] = [];
  let o = 0; let i = 0;
  while (o < bytes.length) {
    const n = Math.max(1, Math.min(split(i++), bytes.length - o));
    for (const raw of d.push(bytes.subarray(o, o + n))) out.push(parseFrame(raw));
    o += n;
  }
  if (whole) assert.equal(d.buffered, 0, 'nothing left half-decoded');
  return out;
}

test('every dtype round-trips bit for bit, including empty, scalar and odd-length 4-bit tensors', () => {
  const r = rng(1);
  for (const dtype of DTYPE_NAMES) {
    for (const dims of [[], [0], [1], [3, 5], [2, 3, 7]]) {
      const t = sample(dtype, dims, r);
      const [f] = decodeAll(concat(encodeFrame({ type: 'REQUEST', id: 7, tensors: [t], meta: {} })), () => 1 << 20);
      assert.equal(f!.type, 'REQUEST');
      assert.equal(f!.id, 7);
      assertSameTensors((f as Extract<Frame, { type: 'REQUEST' }>).tensors, [t]);
    }
  }
});

test('several tensors and meta in one frame; large frames are written without copying the tensor data', () => {
  const r = rng(2);
  const tensors = DTYPE_NAMES.map((d) => sample(d, [4, 33], r));
  const big = sample('float32', [1, 64, 56, 56], r);
  const chunks = encodeFrame({ type: 'RESPONSE', id: 0xffffffff, tensors: [...tensors, big], meta: { epoch: '3', 'trace-id': 'ü' } });
  assert.ok(chunks.some((c) => c.buffer === (big.data as Float32Array).buffer), 'the big tensor is sent as a view of the caller array');
  const [f] = decodeAll(concat(chunks), () => 65536) as Extract<Frame, { type: 'RESPONSE' }>[];
  assert.equal(f!.id, 0xffffffff);
  assert.deepEqual(f!.meta, { epoch: '3', 'trace-id': 'ü' });
  assertSameTensors(f!.tensors, [...tensors, big]);
});

test('decoded tensors are views over the frame when aligned, copies when not', () => {
  const t = sample('float64', [100], rng(3));
  const bytes = concat(encodeFrame({ type: 'REQUEST', id: 1, tensors: [t], meta: {} }));
  const aligned = new FrameDecoder().push(bytes)[0]!;
  const fa = parseFrame(aligned) as Extract<Frame, { type: 'REQUEST' }>;
  assert.equal((fa.tensors[0]!.data as Float64Array).buffer, bytes.buffer, 'zero-copy view');
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const fm = parseFrame(new FrameDecoder().push(shifted.subarray(1))[0]!) as Extract<Frame, { type: 'REQUEST' }>;
  assert.notEqual((fm.tensors[0]!.data as Float64Array).buffer, shifted.buffer, 'misaligned data is copied');
  assertSameTensors(fm.tensors, [t]);
});

test('any split of a byte stream into chunks gives the same frames, coalesced or byte by byte', () => {
  const r = rng(4);
  const frames: Frame[] = [
    { type: 'REQUEST', id: 1, tensors: [sample('float32', [3, 100], r), sample('int64', [5], r)], meta: { a: 'b' } },
    { type: 'PING', id: 2, payload: new Uint8Array([1, 2, 3]) },
    { type: 'ERROR', id: 3, code: 'KERF_ERR_SHAPE', message: "tensor 'x' wants [1,3]" },
    { type: 'RESPONSE', id: 4, tensors: [sample('string', [7], r)], meta: {} },
    { type: 'CONTROL', id: 5, op: 'switch', body: new TextEncoder().encode('{"cuts":[4]}') },
    { type: 'CANCEL', id: 6 }, { type: 'GOAWAY', id: 0 },
    { type: 'RESPONSE', id: 8, tensors: [sample('uint8', [70000], r)], meta: {} },
  ];
  const stream = concat(frames.flatMap((f) => encodeFrame(f)));
  const reference = decodeAll(stream, () => stream.length);
  assert.equal(reference.length, frames.length);
  assert.deepEqual(reference.map((f) => f.type), frames.map((f) => f.type));
  for (const split of [() => 1, () => 5, () => 13, (i: number) => (i * 7919) % 4000 + 1, () => Math.floor(r() * 100000) + 1]) {
    const got = decodeAll(stream, split);
    assert.equal(got.length, frames.length);
    got.forEach((f, i) => {
      const ref = reference[i]!;
      assert.equal(f.type, ref.type); assert.equal(f.id, ref.id);
      if ('tensors' in f) assertSameTensors(f.tensors, (ref as typeof f).tensors);
      else assert.deepEqual(f, ref);
    });
  }
});

test('fuzzed garbage and bit-flipped frames only ever fail with KERF_ERR_PROTOCOL', () => {
  const r = rng(5);
  const good = concat(encodeFrame({ type: 'REQUEST', id: 9, tensors: [sample('float32', [2, 8], r), sample('string', [3], r)], meta: { k: 'v' } }));
  let failures = 0;
  for (let i = 0; i < 3000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = Uint8Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256));
      if (i % 4 === 0 && bytes.length >= 8) bytes.set([bytes.length - 4 & ~7, 0, 0, 0, 1], 0); // plausible header, garbage body
    } else {
      bytes = good.slice();
      for (let k = 0; k < 1 + (i % 4); k++) bytes[Math.floor(r() * bytes.length)] ^= 1 << Math.floor(r() * 8);
    }
    try {
      decodeAll(bytes, () => 1 + Math.floor(r() * 64), { maxFrameBytes: 1 << 20 }, false);
    } catch (e) {
      assert.ok(isKerfError(e), `non-kerf error on case ${i}: ${String((e as Error).stack)}`);
      assert.equal((e as { code: string }).code, 'KERF_ERR_PROTOCOL', `case ${i}: ${String((e as { message: string }).message)}`);
      failures++;
    }
  }
  assert.ok(failures > 1500, `most garbage is refused (${failures})`);
});

test('a frame announcing 2 GB is refused from its first 4 bytes, without allocating', () => {
  const before = process.memoryUsage().arrayBuffers;
  const d = new FrameDecoder(); // default cap: 512 MiB
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, 2 ** 31, true);
  assert.throws(() => d.push(head), (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_PROTOCOL' && /2147483652 bytes.*limit/.test(String(e.message)));
  assert.throws(() => d.push(new Uint8Array(8)), /2147483652/, 'the decoder stays failed');
  assert.equal(d.buffered, 0);
  assert.ok(process.memoryUsage().arrayBuffers - before < 16 << 20, 'no large allocation');
  // before the handshake, the cap is 64 KiB
  const pre = new FrameDecoder({ maxFrameBytes: HANDSHAKE_MAX_FRAME_BYTES });
  const h2 = concat(encodeFrame({ type: 'PING', id: 1, payload: new Uint8Array(HANDSHAKE_MAX_FRAME_BYTES) }));
  assert.throws(() => pre.push(h2.subarray(0, 12)), (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_PROTOCOL');
});

test('encoding refuses malformed tensors with KERF_ERR_SHAPE naming the tensor', () => {
  const bad: WireTensor[] = [
    { name: 'short', dtype: 'float32', dims: [2, 3], data: new Float32Array(5) },
    { name: 'wrongtype', dtype: 'float32', dims: [2], data: new Float64Array(2) as unknown as Float32Array },
    { name: 'dyn', dtype: 'int32', dims: [-1, 2], data: new Int32Array(2) },
    { name: 'strs', dtype: 'string', dims: [3], data: ['a'] },
    { name: 'dt', dtype: 'complex64' as WireDType, dims: [1], data: new Float32Array(2) },
  ];
  for (const t of bad) {
    assert.throws(() => encodeFrame({ type: 'REQUEST', id: 1, tensors: [t], meta: {} }),
      (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_SHAPE' && e.message.includes(`'${t.name}'`), t.name);
  }
});

test('a wrong version, type or frame length is refused at the header', () => {
  const ok = concat(encodeFrame({ type: 'PING', id: 1, payload: new Uint8Array(0) }));
  const cases: [number, number, RegExp][] = [[4, 2, /version 2/], [5, 99, /unknown type 99/], [0, 13, /not a valid frame length/], [6, 1, /flags/]];
  for (const [at, v, re] of cases) {
    const b = ok.slice(); b[at] = v;
    assert.throws(() => new FrameDecoder().push(b), re);
  }
});

test('swapBytes reverses each element (used on big-endian hosts)', () => {
  assert.deepEqual([...swapBytes(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 4)], [4, 3, 2, 1, 8, 7, 6, 5]);
  assert.deepEqual([...swapBytes(Uint8Array.from([1, 2]), 1)], [1, 2]);
});
