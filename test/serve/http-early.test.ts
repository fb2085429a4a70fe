/**
 * Early answers arrive (issue 14, item 9): every kerf HTTP server that answers before reading
 * the whole body (401, 413, 400 on a declared length it will not take) closes gently, so the
 * client reads the answer instead of a reset; a body that stops arriving is answered 408.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { once } from 'node:events';
import { DRAIN_MS, bodyIdleMs, readBody, sendJson, errorStatus } from '../../src/util/http.js';
import { prepareModel } from '../../src/engine/index.js';
import { Gateway, OipClient } from '../../src/serve/index.js';
import { Agent } from '../../src/profile/agent.js';
import { profileRemote } from '../../src/profile/agent.js';
import { Link } from '../../src/link/index.js';
import { randomInputs } from '../../src/engine/index.js';
import { tinyNet } from '../profile/support.js';
import { parseModel } from '../../src/graph/model.js';

interface Answer { status: number | null; body: string; error: string | null }

/**
 * One request over a fresh connection: headers as given, then `send` bytes of body in 64 KiB
 * writes (or `stallAfter` bytes and then nothing). Resolves with what came back first.
 */
function post(url: string, path: string, headers: Record<string, string | number>, send: number, opts: { stall?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: Answer): void => { if (!settled) { settled = true; req.destroy(); resolve(a); } };
    const req = http.request(new URL(path, url), { method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), error: null }));
      res.on('error', (e) => done({ status: res.statusCode!, body: '', error: (e as NodeJS.ErrnoException).code ?? e.message }));
    });
    req.on('error', (e) => done({ status: null, body: '', error: (e as NodeJS.ErrnoException).code ?? e.message }));
    const chunk = Buffer.alloc(64 * 1024, 7);
    let left = send;
    const pump = (): void => {
      while (left > 0 && !req.destroyed) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!req.write(chunk.subarray(0, n))) { req.once('drain', pump); return; }
      }
      if (!opts.stall && !req.destroyed) req.end();
    };
    pump();
  });
}

test('util/http: early 401 and 413 reach the client (no reset); a stalled body is answered 408', async () => {
  const idleMs = 300;
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== 'Bearer ok') return sendJson(req, res, 401, { error: 'token' });
    readBody(req, { maxBytes: 64 * 1024, what: 'test', idleMs }).then(
      (b) => sendJson(req, res, 200, { n: b.length }),
      (e) => sendJson(req, res, errorStatus(e) ?? 500, { code: e.code, error: e.message }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  try {
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) {
      // the answer comes before the 6 MB upload is read: 401, 413 (sent, chunked), 413 (declared)
      const a = await post(url, '/', { 'content-length': 4 << 20 }, 4 << 20);
      const b = await post(url, '/', { authorization: 'Bearer ok', 'transfer-encoding': 'chunked' }, 4 << 20);
      const c = await post(url, '/', { authorization: 'Bearer ok', 'content-length': '99999999999' }, 4 << 20, { stall: true });
      seen.push(`${a.status ?? a.error} ${b.status ?? b.error} ${c.status ?? c.error}`);
    }
    assert.deepEqual(seen, Array(8).fill('401 413 413'), 'every early answer arrives');
    const ok = await post(url, '/', { authorization: 'Bearer ok', 'content-length': 1000 }, 1000);
    assert.deepEqual([ok.status, JSON.parse(ok.body).n], [200, 1000]);

    // 10 bytes of a declared 1000, then nothing: 408 after the idle timeout, not a hang
    const t0 = performance.now();
    const stalled = await post(url, '/', { authorization: 'Bearer ok', 'content-length': 1000 }, 10, { stall: true });
    const waited = performance.now() - t0;
    assert.equal(stalled.status, 408, JSON.stringify(stalled));
    assert.equal(JSON.parse(stalled.body).code, 'KERF_ERR_TIMEOUT');
    assert.match(JSON.parse(stalled.body).error, /stopped arriving \(10 of 1000 bytes, then nothing for 300 ms\)/);
    assert.ok(waited >= idleMs * 0.9, `answered after ${waited.toFixed(0)} ms, before the ${idleMs} ms idle timeout`);

    // a client that keeps sending after the answer is cut off within the drain bounds
    const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(sock, 'connect');
    sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n');
    let got = '';
    sock.on('data', (c: Buffer) => { got += c.toString('latin1'); });
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('error', () => {});
    const junk = Buffer.alloc(64 * 1024);
    const until = Date.now() + DRAIN_MS * 10;
    let sentBytes = 0;
    let isClosed = false;
    void closed.then(() => { isClosed = true; });
    while (!isClosed && Date.now() < until) {
      if (sock.writable) { sock.write(junk); sentBytes += junk.length; }
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(isClosed, `the server still reads after ${sentBytes} bytes and ${DRAIN_MS * 10} ms`);
    assert.match(got, /^HTTP\/1\.1 401/, 'the answer came first');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('util/http: the body timeout is 10 s by default, KERF_BODY_TIMEOUT_MS or an option sets it, nonsense is refused', () => {
  const saved = process.env.KERF_BODY_TIMEOUT_MS;
  try {
    delete process.env.KERF_BODY_TIMEOUT_MS;
    assert.equal(bodyIdleMs(), 10_000);
    process.env.KERF_BODY_TIMEOUT_MS = '250';
    assert.equal(bodyIdleMs(), 250);
    assert.equal(bodyIdleMs(40), 40);
    process.env.KERF_BODY_TIMEOUT_MS = 'soon';
    assert.throws(() => bodyIdleMs(), (e: any) => e.code === 'KERF_ERR_USAGE' && /KERF_BODY_TIMEOUT_MS='soon'/.test(e.message));
    assert.throws(() => bodyIdleMs(0), (e: any) => e.code === 'KERF_ERR_USAGE');
  } finally {
    if (saved === undefined) delete process.env.KERF_BODY_TIMEOUT_MS; else process.env.KERF_BODY_TIMEOUT_MS = saved;
  }
});

test('gateway, agent and link control: early answers arrive, stalled bodies get 408, each serves on', async () => {
  const prep = await prepareModel(parseModel(tinyNet(), { name: 'tiny', source: 'tiny.onnx' }));
  const g = await Gateway.start({ model: prep, pipeline: { cuts: [] }, maxBodyBytes: 1 << 20, bodyTimeoutMs: 300 });
  const agent = await Agent.start({ token: 'tok', port: 0, maxModelBytes: 1 << 20, bodyTimeoutMs: 300 });
  const link = await Link.create({ listen: { host: '127.0.0.1', port: 0 }, to: g.address, control: { host: '127.0.0.1', port: 0 } });
  const linkUrl = `http://${link.controlAddress!.host}:${link.controlAddress!.port}`;
  try {
    await g.waitReady(10_000);
    const infer = `/v2/models/${g.name}/infer`;
    const statuses: string[] = [];
    for (let i = 0; i < 5; i++) {
      const over = await post(g.url, infer, { 'content-length': 4 << 20 }, 4 << 20);
      const declared = await post(g.url, infer, { 'content-length': '99999999999' }, 4 << 20, { stall: true });
      const chunked = await post(g.url, infer, { 'transfer-encoding': 'chunked' }, 4 << 20);
      const noToken = await post(agent.url, '/v1/profile', { 'content-length': 4 << 20 }, 4 << 20);
      const tooBig = await post(agent.url, '/v1/profile', { authorization: 'Bearer tok', 'transfer-encoding': 'chunked' }, 4 << 20);
      const linkBig = await post(linkUrl, '/config', { 'content-length': 4 << 20 }, 4 << 20);
      statuses.push([over, declared, chunked, noToken, tooBig, linkBig].map((a) => a.status ?? a.error).join(' '));
    }
    assert.deepEqual(statuses, Array(5).fill('413 413 413 401 413 413'));

    const gStall = await post(g.url, infer, { 'content-length': 5000 }, 100, { stall: true });
    assert.equal(gStall.status, 408);
    assert.match(JSON.parse(gStall.body).error, /gateway: the request body stopped arriving \(100 of 5000 bytes/);
    const aStall = await post(agent.url, '/v1/profile', { authorization: 'Bearer tok', 'content-length': 5000 }, 100, { stall: true });
    assert.equal(aStall.status, 408);
    assert.equal(JSON.parse(aStall.body).error.code, 'KERF_ERR_TIMEOUT');

    // kerf's own clients report the answer, not the reset of the upload
    await assert.rejects(profileRemote(agent.url, 'wrong', new Uint8Array(4 << 20)), (e: any) => e.code === 'KERF_ERR_AUTH' && e.details.status === 401);
    await assert.rejects(profileRemote(agent.url, 'tok', new Uint8Array(4 << 20)), (e: any) => e.details.status === 413);
    const client = new OipClient(g.url, g.name);
    try {
      const x = prep.model.inputs[0]!.name;
      const big = { [x]: { dtype: 'float32' as const, dims: [1 << 19], data: new Float32Array(1 << 19) } };
      const r = await client.infer(big);
      assert.equal(r.status, 413, JSON.stringify(r.error));
      const good = await client.infer(randomInputs(prep.model, prep.inputShapes, 1));
      assert.equal(good.status, 200, 'the gateway serves on');
    } finally { client.close(); }
    const p = await profileRemote(agent.url, 'tok', tinyNet(), { repeats: 1, warmup: 1 });
    assert.equal(p.schema, 'kerf.profile/v1', 'the agent serves on');
  } finally {
    await link.close();
    await agent.close();
    await g.close();
  }
});

test('gateway close(): a connection whose upload stalls is cut after the 2 s grace, and close() resolves', async () => {
  const prep = await prepareModel(parseModel(tinyNet(), { name: 'tiny', source: 'tiny.onnx' }));
  const g = await Gateway.start({ model: prep, pipeline: { cuts: [] }, bodyTimeoutMs: 120_000 });
  await g.waitReady(10_000);
  const sock = net.connect(g.address.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(`POST /v2/models/${g.name}/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n` + 'x'.repeat(100));
  const ended = once(sock, 'close');
  await new Promise((r) => setTimeout(r, 200));
  const t0 = performance.now();
  await g.close();
  const ms = performance.now() - t0;
  await ended;
  // The grace is 2 s; the body timeout (120 s) would be the bound if close() waited for the upload.
  assert.ok(ms >= 1500 && ms < 60_000, `close took ${ms.toFixed(0)} ms`);
  await g.close();
});
