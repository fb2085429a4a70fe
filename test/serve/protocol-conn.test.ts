import { TLS_KEY, TLS_CERT } from '../support/tls.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { isKerfError } from '../../src/errors.js';
import {
  Connection, FrameServer, DTYPE_NAMES, encodeFrame,
  type WireDType, type IncomingRequest, type PeerInfo, type ServerOptions, type WireTensor,
} from '../../src/serve/protocol.js';

const TOKEN = 'pipeline-secret';

// Self-signed P-256 certificate for localhost / 127.0.0.1, valid until 2126; test use only.

const echo = (req: IncomingRequest) => ({ tensors: req.tensors, meta: req.meta });

async function withServer(opts: Partial<ServerOptions>, body: (s: FrameServer) => Promise<void>): Promise<void> {
  const s = await FrameServer.listen({ port: 0, token: TOKEN, onRequest: echo, ...opts });
  try { await body(s); } finally { await s.close(); }
}

const codeIs = (code: string) => (e: unknown): boolean => {
  assert.ok(isKerfError(e), `expected a kerf error, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  return true;
};

function tensorOf(dtype: WireDType, n: number, seed: number): WireTensor {
  const dims = [n];
  const b = Uint8Array.from({ length: n * 8 }, (_, i) => (i * 31 + seed) & 255);
  switch (dtype) {
    case 'string': return { name: dtype, dtype, dims, data: Array.from({ length: n }, (_, i) => `s${i}·${seed}`) };
    case 'int4': case 'uint4': return { name: dtype, dtype, dims, data: dtype === 'int4' ? new Int8Array(b.buffer, 0, Math.ceil(n / 2)) : b.subarray(0, Math.ceil(n / 2)) } as WireTensor;
    default: {
      const C = { float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array }[dtype];
      const data = new C(b.buffer, 0, n);
      if (dtype === 'bool') (data as Uint8Array).forEach((_, i, a) => { a[i] = i & 1; });
      return { name: dtype, dtype, dims, data } as WireTensor;
    }
  }
}

function bytesOf(t: WireTensor): unknown {
  if (t.dtype === 'string') return t.data;
  const a = t.data as Uint8Array;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

test('every dtype round-trips through a server, small and megabyte tensors', async () => {
  await withServer({}, async (s) => {
    const conn = await Connection.connect({ port: s.address.port, token: TOKEN, info: 'test client' });
    try {
      for (const n of [5, 100_000]) {
        const tensors = DTYPE_NAMES.map((d, i) => tensorOf(d, n, i));
        const r = await conn.request(tensors, { meta: { n: String(n) } });
        assert.deepEqual(r.meta, { n: String(n) });
        assert.deepEqual(r.tensors.map((t) => [t.name, t.dtype, t.dims]), tensors.map((t) => [t.name, t.dtype, t.dims]));
        r.tensors.forEach((t, i) => assert.deepEqual(bytesOf(t), bytesOf(tensors[i]!), t.dtype));
      }
      assert.ok(conn.stats.bytesSent > 100_000 * 8 * 4, 'counters count bytes');
      assert.ok(await conn.ping() >= 0);
    } finally { await conn.close(); }
  });
});

test('many requests in flight, answered out of order, each reaches its own caller', async () => {
  let peerSeen: PeerInfo | undefined;
  await withServer({
    onRequest: async (req) => {
      peerSeen = req.peer;
      const x = (req.tensors[0]!.data as Int32Array)[0]!;
      await new Promise((r) => setTimeout(r, (x * 7) % 13));
      return { tensors: [{ name: 'y', dtype: 'int32', dims: [2], data: Int32Array.from([x, x * 2]) }], meta: { id: String(req.id) } };
    },
  }, async (s) => {
    const conns = await Promise.all([0, 1].map(() => Connection.connect({ port: s.address.port, token: TOKEN, info: 'many' })));
    try {
      const N = 400;
      const results = await Promise.all(Array.from({ length: N }, (_, i) =>
        conns[i % 2]!.request([{ name: 'x', dtype: 'int32', dims: [1], data: Int32Array.from([i]) }])));
      results.forEach((r, i) => assert.deepEqual([...(r.tensors[0]!.data as Int32Array)], [i, i * 2]));
      assert.equal(conns[0]!.inFlight, 0);
      assert.equal(peerSeen?.info, 'many');
    } finally { await Promise.all(conns.map((c) => c.close())); }
  });
});

test('a wrong token is refused with KERF_ERR_AUTH on both sides, and the server serves on', async () => {
  await withServer({}, async (s) => {
    const refused: unknown[] = [];
    s.on('peer-error', (e) => refused.push(e));
    await assert.rejects(Connection.connect({ port: s.address.port, token: 'guess' }), codeIs('KERF_ERR_AUTH'));
    assert.equal(refused.length, 1);
    codeIs('KERF_ERR_AUTH')(refused[0]);
    const ok = await Connection.connect({ port: s.address.port, token: TOKEN });
    assert.equal((await ok.request([tensorOf('float32', 3, 1)])).tensors.length, 1);
    await ok.close();
  });
});

test('a client refuses a server that does not know the token', async () => {
  await withServer({ token: 'other' }, async (s) => {
    s.on('peer-error', () => {});
    await assert.rejects(Connection.connect({ port: s.address.port, token: TOKEN }), codeIs('KERF_ERR_AUTH'));
  });
});

/** Open a raw socket, write bytes, resolve with everything received until the server closes it. */
function rawExchange(port: number, bytes: Uint8Array | null): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    const s = net.connect({ port, host: '127.0.0.1' }, () => { if (bytes) s.write(bytes); });
    s.on('data', (d) => got.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(got)));
  });
}

test('garbage, a 2 GB announcement or silence on the port closes that connection only', async () => {
  await withServer({ handshakeTimeoutMs: 200 }, async (s) => {
    const errors: string[] = [];
    s.on('peer-error', (e: { code: string; message: string }) => errors.push(`${e.code} ${e.message}`));
    const good = await Connection.connect({ port: s.address.port, token: TOKEN });
    const garbage = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const reply = await rawExchange(s.address.port, garbage);
    assert.match(reply.toString('latin1'), /KERF_ERR_PROTOCOL/, 'the peer is told why');
    const huge = new Uint8Array(12);
    new DataView(huge.buffer).setUint32(0, 2 ** 31 - 4, true);
    await rawExchange(s.address.port, huge);
    await rawExchange(s.address.port, null); // says nothing: handshake timeout
    assert.equal(errors.length, 3, errors.join('\n'));
    assert.match(errors[0]!, /KERF_ERR_PROTOCOL/);
    assert.match(errors[1]!, /KERF_ERR_PROTOCOL .*2147483648 bytes/);
    assert.match(errors[2]!, /KERF_ERR_TIMEOUT/);
    assert.equal((await good.request([tensorOf('int64', 4, 2)])).tensors[0]!.dtype, 'int64', 'others are served on');
    await good.close();
  });
});

test('an authenticated peer announcing 2 GB is cut off; its in-flight requests fail fast', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  await withServer({ onRequest: async (req) => { await gate; return echo(req); } }, async (s) => {
    s.on('peer-error', () => {});
    const conn = await Connection.connect({ port: s.address.port, token: TOKEN });
    const pending = conn.request([tensorOf('float32', 4, 0)]);
    const huge = new Uint8Array(12);
    new DataView(huge.buffer).setUint32(0, 2 ** 31 - 4, true);
    (conn as unknown as { socket: net.Socket }).socket.write(huge);
    await assert.rejects(pending, (e: unknown) => isKerfError(e) && ['KERF_ERR_PROTOCOL', 'KERF_ERR_UPSTREAM'].includes(e.code));
    await assert.rejects(conn.request([tensorOf('float32', 4, 0)]), codeIs('KERF_ERR_CLOSED'));
    release();
  });
});

test('handler errors travel back with their code and request id; the connection stays usable', async () => {
  await withServer({
    onRequest: (req) => {
      if (req.tensors[0]!.name === 'bad') throw Object.assign(new Error('x'), { code: 'KERF_ERR_SHAPE', message: "tensor 'bad': want [1,3]" });
      if (req.tensors[0]!.name === 'bug') throw new TypeError('oops');
      return echo(req);
    },
  }, async (s) => {
    const conn = await Connection.connect({ port: s.address.port, token: TOKEN });
    try {
      await assert.rejects(conn.request([{ ...tensorOf('uint8', 1, 0), name: 'bad' }]), (e: unknown) =>
        codeIs('KERF_ERR_SHAPE')(e) && /tensor 'bad'/.test((e as Error).message) && typeof (e as { details: { requestId: number } }).details.requestId === 'number');
      await assert.rejects(conn.request([{ ...tensorOf('uint8', 1, 0), name: 'bug' }]), codeIs('KERF_ERR_REMOTE'));
      await assert.rejects(conn.request([{ name: 'short', dtype: 'float32', dims: [4], data: new Float32Array(3) }]), codeIs('KERF_ERR_SHAPE'));
      await assert.rejects(conn.control('nope'), codeIs('KERF_ERR_USAGE'));
      assert.equal((await conn.request([tensorOf('uint8', 1, 0)])).tensors.length, 1);
    } finally { await conn.close(); }
  });
});

test('close is idempotent; in-flight and later calls fail with KERF_ERR_CLOSED', async () => {
  await withServer({ onRequest: () => new Promise(() => {}) }, async (s) => {
    const conn = await Connection.connect({ port: s.address.port, token: TOKEN });
    const inflight = conn.request([tensorOf('float32', 2, 0)]);
    const c1 = conn.close(); const c2 = conn.close();
    await assert.rejects(inflight, codeIs('KERF_ERR_CLOSED'));
    await Promise.all([c1, c2]);
    assert.equal(conn.closed, true);
    await assert.rejects(conn.request([tensorOf('float32', 2, 0)]), codeIs('KERF_ERR_CLOSED'));
    await assert.rejects(conn.ping(), codeIs('KERF_ERR_CLOSED'));
    await conn.close();
  });
});

test('when the server goes away every in-flight request fails with KERF_ERR_UPSTREAM', async () => {
  const s = await FrameServer.listen({ port: 0, token: TOKEN, onRequest: () => new Promise(() => {}) });
  const conn = await Connection.connect({ port: s.address.port, token: TOKEN });
  const closed = new Promise((r) => conn.once('close', r));
  const inflight = Array.from({ length: 32 }, () => conn.request([tensorOf('float32', 2, 0)]));
  const all = Promise.allSettled(inflight);
  await new Promise((r) => setTimeout(r, 20));
  await Promise.all([s.close(), s.close()]);
  const settled = await all;
  for (const r of settled) {
    assert.equal(r.status, 'rejected');
    codeIs('KERF_ERR_UPSTREAM')((r as PromiseRejectedResult).reason);
  }
  await closed;
  await assert.rejects(conn.request([tensorOf('float32', 2, 0)]), codeIs('KERF_ERR_CLOSED'));
  await assert.rejects(Connection.connect({ port: s.address.port, token: TOKEN }), codeIs('KERF_ERR_UPSTREAM'));
});

test('a timed-out request is cancelled on the server too', async () => {
  let aborted = false;
  await withServer({
    onRequest: (req) => new Promise((_, reject) => req.signal.addEventListener('abort', () => { aborted = true; reject(req.signal.reason); })),
  }, async (s) => {
    const conn = await Connection.connect({ port: s.address.port, token: TOKEN });
    await assert.rejects(conn.request([tensorOf('int8', 3, 0)], { timeoutMs: 30 }), codeIs('KERF_ERR_TIMEOUT'));
    for (let i = 0; i < 100 && !aborted; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(aborted, true);
    assert.equal(s.inFlight, 0);
    await conn.close();
  });
});

test('control operations and drain: GOAWAY lets in-flight requests finish and refuses new ones', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  await withServer({
    onRequest: async (req) => { await gate; return echo(req); },
    onControl: (op, body) => `${op}:${new TextDecoder().decode(body)}`,
  }, async (s) => {
    const conn = await Connection.connect({ port: s.address.port, token: TOKEN });
    assert.equal(new TextDecoder().decode(await conn.control('switch', '{"cuts":[4]}')), 'switch:{"cuts":[4]}');
    const inflight = conn.request([tensorOf('float32', 2, 0)]);
    await new Promise((r) => setTimeout(r, 10));
    const drained = s.drain();
    await new Promise<void>((r) => conn.once('goaway', () => r()));
    assert.equal(conn.draining, true);
    await assert.rejects(conn.request([tensorOf('float32', 2, 0)]), codeIs('KERF_ERR_CLOSED'));
    release();
    assert.equal((await inflight).tensors.length, 1);
    await drained;
    await conn.close();
  });
});

test('TLS: requests flow over TLS; a client that does not trust the certificate is refused', async () => {
  await withServer({ tls: { key: TLS_KEY, cert: TLS_CERT } }, async (s) => {
    s.on('peer-error', () => {});
    const conn = await Connection.connect({ port: s.address.port, token: TOKEN, tls: { ca: TLS_CERT } });
    const t = tensorOf('float32', 1000, 3);
    assert.deepEqual(bytesOf((await conn.request([t])).tensors[0]!), bytesOf(t));
    await conn.close();
    await assert.rejects(Connection.connect({ port: s.address.port, token: TOKEN, tls: true }), codeIs('KERF_ERR_UPSTREAM'));
    await assert.rejects(Connection.connect({ port: s.address.port, token: TOKEN, timeoutMs: 300 }),
      (e: unknown) => isKerfError(e) && ['KERF_ERR_TIMEOUT', 'KERF_ERR_UPSTREAM'].includes(e.code));
  });
});

test('encodeFrame output of a REQUEST is what a server decodes (wire compatibility with raw writers)', async () => {
  await withServer({}, async (s) => {
    const conn = await Connection.connect({ port: s.address.port, token: TOKEN });
    const t = tensorOf('uint16', 9, 4);
    const chunks = encodeFrame({ type: 'REQUEST', id: 77, tensors: [t], meta: {} });
    const sock = (conn as unknown as { socket: net.Socket }).socket;
    // a raw request with an id the Connection did not allocate: its reply is ignored, not misrouted
    for (const c of chunks) sock.write(c);
    const r = await conn.request([t]);
    assert.deepEqual(bytesOf(r.tensors[0]!), bytesOf(t));
    await conn.close();
  });
});
