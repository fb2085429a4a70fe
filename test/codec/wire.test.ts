import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import { isKerfError, type KerfError } from '../../src/errors.js';
import {
  Connection, FrameServer, FrameDecoder, DTYPE_NAMES, encodeFrame, parseFrame,
  type Frame, type IncomingRequest, type WireDType, type WireTensor,
} from '../../src/serve/protocol.js';
import { mulberry32 } from '../../src/util/prng.js';
import { concatChunks, sampleTensor } from '../support/tensors.js';

const TOKEN = 'codec-secret';

const sample = (dtype: WireDType, dims: number[], r: () => number): WireTensor => sampleTensor(dtype, dims, r, { compressible: true });

const bytesOf = (t: WireTensor): Buffer => t.dtype === 'string' ? Buffer.from(JSON.stringify(t.data)) : Buffer.from((t.data as Uint8Array).buffer, (t.data as Uint8Array).byteOffset, (t.data as Uint8Array).byteLength);

const concat = concatChunks;

function roundTrip(f: Frame, codecs: string[]): Frame {
  const raw = new FrameDecoder().push(concat(encodeFrame(f)));
  assert.equal(raw.length, 1);
  return parseFrame(raw[0]!, { codecs: new Set(codecs) });
}

const codeIs = (code: string, re?: RegExp) => (e: unknown): boolean => {
  assert.ok(isKerfError(e), `expected a kerf error, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (re) assert.match(e.message, re);
  return true;
};

test('coded frames carry every dtype; lossless bitwise, lossy only on floats; the frame names its codec', () => {
  const r = mulberry32(1);
  const tensors = DTYPE_NAMES.flatMap((d) => [sample(d, [3, 40], r), sample(d, [0], r)]);
  for (const codec of ['lz4', 'shuffle+zstd-1', 'int8+lz4', 'fp16']) {
    const f = roundTrip({ type: 'REQUEST', id: 9, tensors, meta: { k: 'v' }, codec }, [codec]) as Extract<Frame, { type: 'REQUEST' }>;
    assert.equal(f.codec, codec);
    assert.deepEqual(f.meta, { k: 'v' });
    f.tensors.forEach((t, i) => {
      const w = tensors[i]!;
      assert.equal(t.dtype, w.dtype); assert.deepEqual(t.dims, w.dims);
      assert.equal(t.data.constructor, w.data.constructor);
      const lossy = codec.startsWith('int8') || codec.startsWith('fp16');
      if (lossy && (w.dtype === 'float32' || w.dtype === 'float64') && w.dims[0] !== 0) {
        const a = w.data as Float32Array; const b = t.data as Float32Array;
        for (let j = 0; j < a.length; j++) assert.ok(Math.abs(a[j]! - b[j]!) < 0.01, `${codec} ${w.dtype}[${j}]`);
      } else {
        assert.ok(bytesOf(t).equals(bytesOf(w)), `${codec} ${w.dtype} bitwise`);
      }
    });
  }
  const uncoded = roundTrip({ type: 'RESPONSE', id: 1, tensors: tensors.slice(0, 2), meta: {} }, []);
  assert.equal((uncoded as { codec?: string }).codec, undefined);
});

test('a coded frame with a codec not negotiated, or a bad codec name, is refused with KERF_ERR_PROTOCOL', () => {
  const t = sample('float32', [10], mulberry32(2));
  const raw = new FrameDecoder().push(concat(encodeFrame({ type: 'REQUEST', id: 1, tensors: [t], meta: {}, codec: 'zstd-3' })))[0]!;
  assert.throws(() => parseFrame(raw), codeIs('KERF_ERR_PROTOCOL', /codec 'zstd-3', which was not negotiated/));
  assert.throws(() => parseFrame(raw, { codecs: new Set(['zstd-1']) }), codeIs('KERF_ERR_PROTOCOL', /not negotiated/));
  // the codec name sits right after the header: make it an unknown stage
  const bad = raw.slice();
  bad.set(new TextEncoder().encode('zstd-x'), 14);
  assert.throws(() => parseFrame(bad, { codecs: new Set(['zstd-3']) }), codeIs('KERF_ERR_PROTOCOL', /codec/));
  // flag 1 on a frame type that has no tensors
  const ping = concat(encodeFrame({ type: 'PING', id: 1, payload: new Uint8Array(0) }));
  ping[6] = 1;
  assert.throws(() => new FrameDecoder().push(ping), codeIs('KERF_ERR_PROTOCOL', /unknown flags/));
  // a small frame announcing a tensor that would decode past the cap
  assert.throws(() => parseFrame(raw, { codecs: new Set(['zstd-3']), maxDecodedBytes: 39 }), codeIs('KERF_ERR_PROTOCOL', /limit/));
});

const echo = (req: IncomingRequest) => ({ tensors: req.tensors, meta: { codec: req.peer.codec ?? 'none' } });

test('a connection negotiates its codec: requests travel coded, smaller, and arrive bitwise equal', async () => {
  const s = await FrameServer.listen({ port: 0, token: TOKEN, onRequest: echo });
  try {
    const x = new Float32Array(256 * 1024);
    for (let i = 0; i < x.length; i++) x[i] = Math.max(0, Math.sin(i / 50));
    const t: WireTensor = { name: 'act', dtype: 'float32', dims: [1, 256, 1024], data: x };
    const raw = await Connection.connect({ port: s.address.port, token: TOKEN });
    const coded = await Connection.connect({ port: s.address.port, token: TOKEN, codec: 'zstd' });
    assert.equal(coded.codec, 'zstd-1');
    const a = await raw.request([t]);
    const b = await coded.request([t]);
    assert.equal(a.meta.codec, 'none'); assert.equal(b.meta.codec, 'zstd-1');
    assert.ok(Buffer.from((b.tensors[0]!.data as Float32Array).buffer, (b.tensors[0]!.data as Float32Array).byteOffset, x.byteLength).equals(Buffer.from(x.buffer)));
    assert.ok(coded.stats.bytesSent * 2 < raw.stats.bytesSent, `coded ${coded.stats.bytesSent} vs raw ${raw.stats.bytesSent} bytes`);
    assert.ok(coded.stats.bytesReceived > raw.stats.bytesReceived * 0.9, 'replies raw unless a reply codec is asked for');
    // replies in a lossy codec when asked: requests lz4, replies int8
    const both = await Connection.connect({ port: s.address.port, token: TOKEN, codec: 'lz4', replyCodec: 'int8+zstd-1' });
    const c = await both.request([t]);
    assert.ok(both.stats.bytesReceived * 4 < raw.stats.bytesReceived, `int8 replies: ${both.stats.bytesReceived} bytes`);
    const y = c.tensors[0]!.data as Float32Array;
    for (let i = 0; i < x.length; i += 101) assert.ok(Math.abs(y[i]! - x[i]!) <= 1 / 510 + 1e-6);
    await raw.close(); await coded.close(); await both.close();
  } finally { await s.close(); }
});

test('a peer lacking the codec is refused with KERF_ERR_CODEC on both sides, before any request', async () => {
  const s = await FrameServer.listen({ port: 0, token: TOKEN, onRequest: echo, codecs: ['lz4', 'int8+lz4'] });
  const errors: KerfError[] = [];
  s.on('peer-error', (e: KerfError) => errors.push(e));
  try {
    // the client sees the server's list and refuses itself
    await assert.rejects(Connection.connect({ port: s.address.port, token: TOKEN, codec: 'zstd-1' }),
      codeIs('KERF_ERR_CODEC', /does not decode codec 'zstd-1' \(it accepts: lz4,int8\+lz4\)/));
    // a client that asks anyway is refused by the server
    const sock = await handshake(s.address.port, 'fp16');
    const reply = await nextFrame(sock);
    assert.equal(reply.type, 'ERROR');
    assert.equal((reply as Extract<Frame, { type: 'ERROR' }>).code, 'KERF_ERR_CODEC');
    assert.match((reply as Extract<Frame, { type: 'ERROR' }>).message, /asks for codec 'fp16', which this tier does not decode/);
    sock.destroy();
    assert.ok(errors.some((e) => e.code === 'KERF_ERR_CODEC'));
    // an accepted one works
    const c = await Connection.connect({ port: s.address.port, token: TOKEN, codec: 'lz4' });
    assert.equal((await c.request([sample('int32', [5], mulberry32(3))])).meta.codec, 'lz4');
    await c.close();
    await assert.rejects(FrameServer.listen({ port: 0, token: TOKEN, onRequest: echo, codecs: ['brotli'] }), codeIs('KERF_ERR_USAGE', /brotli/));
  } finally { await s.close(); }
});

test('garbage coded frames close that connection with KERF_ERR_PROTOCOL; the server serves on', async () => {
  const s = await FrameServer.listen({ port: 0, token: TOKEN, onRequest: echo });
  const errors: KerfError[] = [];
  s.on('peer-error', (e: KerfError) => errors.push(e));
  try {
    const r = mulberry32(4);
    const t = sample('float32', [64, 64], r);
    const good = concat(encodeFrame({ type: 'REQUEST', id: 1, tensors: [t], meta: {}, codec: 'zstd-1' }));
    for (let k = 0; k < 6; k++) {
      const m = good.slice();
      // corrupt the envelope (after the descriptor) but keep the frame header valid
      for (let j = 0; j < 8; j++) m[60 + Math.floor(r() * (m.length - 60))] = Math.floor(r() * 256);
      const sock = await handshake(s.address.port, 'zstd-1');
      assert.equal((await nextFrame(sock)).type, 'WELCOME');
      sock.write(m);
      const f = await nextFrame(sock);
      if (f.type === 'RESPONSE') { sock.destroy(); continue; } // a flip the zstd checksum-less data survived: still a valid tensor
      assert.equal(f.type, 'ERROR');
      assert.equal((f as Extract<Frame, { type: 'ERROR' }>).code, 'KERF_ERR_PROTOCOL');
      sock.destroy();
    }
    assert.ok(errors.filter((e) => e.code === 'KERF_ERR_PROTOCOL').length >= 3, errors.map((e) => e.message).join('\n'));
    const c = await Connection.connect({ port: s.address.port, token: TOKEN, codec: 'zstd-1' });
    assert.equal((await c.request([t])).tensors[0]!.dims.join(), '64,64');
    await c.close();
  } finally { await s.close(); }
});

/** A hand-driven client: answers the challenge with an AUTH asking for `codec`, whatever the server accepts. */
async function handshake(port: number, codec: string): Promise<net.Socket> {
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((res, rej) => { sock.once('connect', () => res()); sock.once('error', rej); });
  const ch = await nextFrame(sock) as Extract<Frame, { type: 'CHALLENGE' }>;
  assert.equal(ch.type, 'CHALLENGE');
  const nonce = randomBytes(16);
  const mac = createHmac('sha256', TOKEN).update('kerf/1 client').update(ch.nonce).update(nonce).digest();
  sock.write(concat(encodeFrame({ type: 'AUTH', id: 0, nonce, mac, info: 'hand', codec })));
  return sock;
}

const decoders = new WeakMap<net.Socket, { d: FrameDecoder; queue: Frame[]; wait: ((f: Frame) => void)[] }>();
function nextFrame(sock: net.Socket): Promise<Frame> {
  let st = decoders.get(sock);
  if (!st) {
    const s = { d: new FrameDecoder(), queue: [] as Frame[], wait: [] as ((f: Frame) => void)[] };
    st = s;
    decoders.set(sock, s);
    sock.on('data', (c: Buffer) => {
      for (const raw of s.d.push(c)) {
        const f = parseFrame(raw);
        const w = s.wait.shift();
        if (w) w(f); else s.queue.push(f);
      }
    });
  }
  const q = st.queue.shift();
  if (q) return Promise.resolve(q);
  return new Promise((res, rej) => {
    st!.wait.push(res);
    setTimeout(() => rej(new Error('no frame within 5 s')), 5000).unref();
  });
}
