import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isKerfError } from '../../src/errors.js';
import {
  Link, DelayLine, TokenBucket, parseDuration, parseHostPort, parseRate, parseTrace, rateToText, configFromJson,
} from '../../src/link/index.js';
import { ROOT } from '../support/shared.js';

const codeIs = (code: string) => (e: unknown): boolean => {
  assert.ok(isKerfError(e), `expected a kerf error, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  return true;
};

test('rates, durations and addresses parse with tc units and refuse ambiguous ones', () => {
  assert.equal(parseRate('10mbit'), 10e6);
  assert.equal(parseRate('2.5Mbit'), 2.5e6);
  assert.equal(parseRate('500kbit'), 500e3);
  assert.equal(parseRate('1gbit'), 1e9);
  assert.equal(parseRate('9600'), 9600);
  assert.equal(parseRate('unlimited'), Infinity);
  for (const bad of ['10mbps', '10MB', '-1mbit', 'fast', '']) assert.throws(() => parseRate(bad), codeIs('KERF_ERR_USAGE'), bad);
  assert.equal(parseDuration('20ms'), 20);
  assert.equal(parseDuration('0.5s'), 500);
  assert.equal(parseDuration('250us'), 0.25);
  assert.equal(parseDuration('7'), 7);
  assert.throws(() => parseDuration('5min'), codeIs('KERF_ERR_USAGE'));
  assert.deepEqual(parseHostPort('10.0.0.2:9000'), { host: '10.0.0.2', port: 9000 });
  assert.deepEqual(parseHostPort(':9000'), { host: '127.0.0.1', port: 9000 });
  assert.deepEqual(parseHostPort('9000'), { host: '127.0.0.1', port: 9000 });
  assert.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80 });
  assert.throws(() => parseHostPort('host:99999'), codeIs('KERF_ERR_USAGE'));
  for (const r of [1e6, 2.5e6, 123e3, 1e9, 777]) assert.equal(parseRate(rateToText(r)), r);
});

test('traces parse with header, comments, commas and units; errors name file and line', () => {
  const steps = parseTrace('time,rate,delay,jitter\n# start fast\n0, 10mbit, 20ms\n2.5 1mbit 100 5ms\n3000ms unlimited 0\n', 'net.trace');
  assert.deepEqual(steps, [
    { atMs: 0, rateBps: 10e6, delayMs: 20 },
    { atMs: 2500, rateBps: 1e6, delayMs: 100, jitterMs: 5 },
    { atMs: 3000, rateBps: Infinity, delayMs: 0 },
  ]);
  assert.throws(() => parseTrace('0 10mbit 20ms\n1 10mbps 20ms', 'x.trace'), (e: unknown) => codeIs('KERF_ERR_CONFIG')(e) && /x\.trace:2/.test((e as Error).message));
  assert.throws(() => parseTrace('5 1mbit 1\n2 1mbit 1', 'y'), /y:2: time 2 is before/);
  assert.throws(() => parseTrace('0 1mbit', 'z'), /z:1: expected 'time rate delay/);
  assert.throws(() => parseTrace('# nothing\n', 'e'), /no steps/);
});

test('the token bucket lets a burst through, then paces at the rate; the backlog drains at the rate', () => {
  const b = new TokenBucket(8000, 100); // 1 byte per ms, burst 100 bytes
  assert.equal(b.depart(0, 100), 0, 'a full bucket sends the burst at once');
  assert.equal(b.depart(0, 50), 50);
  assert.equal(b.depart(10, 50), 100);
  assert.equal(b.backlog(10), 90);
  assert.equal(b.timeWhenBacklog(40), 60);
  assert.equal(b.depart(1000, 10), 1000, 'idle long enough: the bucket refilled');
  b.rateBps = 16000;
  assert.equal(b.depart(1000, 300), 1100, 'a new rate applies to later bytes');
  const free = new TokenBucket(Infinity, 1);
  assert.equal(free.depart(5, 1e9), 5);
  assert.equal(free.backlog(5), 0);
});

test('jitter stays within its bounds for separate messages and never reorders bytes', () => {
  let seed = 42;
  const random = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  const d = new DelayLine(random);
  let last = -Infinity;
  const offsets: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const depart = i * 0.7 + (i % 50 === 0 ? 10 : 0) * Math.floor(i / 50);
    const at = d.arrive(depart, 20, 5);
    assert.ok(at >= last, `arrival ${i} went backwards`);
    assert.ok(at >= depart + 15 - 1e-9, 'never earlier than delay - jitter');
    last = at;
    offsets.push(at - depart);
  }
  const isolated = new DelayLine(random);
  const samples = Array.from({ length: 500 }, (_, i) => isolated.arrive(i * 100, 20, 5) - i * 100);
  assert.ok(Math.min(...samples) >= 15 && Math.max(...samples) <= 25);
  assert.ok(Math.max(...samples) - Math.min(...samples) > 8, 'jitter actually varies the delay');
  assert.equal(new DelayLine(random).arrive(3, 20, 0), 23);
});

/** An echo server on loopback. */
async function echoServer(): Promise<net.Server & { port: number }> {
  const s = net.createServer({ allowHalfOpen: true }, (c) => c.pipe(c));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return Object.assign(s, { port: (s.address() as net.AddressInfo).port });
}

/** Send `data` through port and collect the echo until the peer ends. */
async function roundTrip(port: number, data: Buffer): Promise<{ echoed: Buffer; ms: number }> {
  const t0 = performance.now();
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const got: Buffer[] = [];
  s.on('data', (c: Buffer) => got.push(c));
  s.end(data);
  await new Promise<void>((r, j) => { s.on('end', () => r()); s.on('error', j); });
  s.destroy();
  return { echoed: Buffer.concat(got), ms: performance.now() - t0 };
}

test('bytes cross the link unchanged and in order in both directions, with rate, delay and jitter', async () => {
  const echo = await echoServer();
  const link = await Link.create({ listen: '127.0.0.1:0', to: echo.port, rateBps: 20e6, delayMs: 3, jitterMs: 2 });
  try {
    const data = randomBytes(300_000);
    const runs = await Promise.all([0, 1, 2].map(() => roundTrip(link.address.port, data)));
    for (const r of runs) assert.ok(r.echoed.equals(data), 'echo identical');
    const st = link.stats();
    assert.equal(st.connectionsTotal, 3);
    assert.equal(st.up.bytesOut, 900_000);
    assert.equal(st.down.bytesOut, 900_000);
    assert.equal(st.up.queuedBytes, 0);
  } finally {
    await link.close();
    echo.close();
  }
});

test('the link is never faster than its settings (lower bounds only: delays and rate)', async () => {
  const echo = await echoServer();
  // 64 KB each way at 4 Mbit/s ≈ 2 × 131 ms, plus 2 × 15 ms delay; the burst is ~0.5 KB
  const link = await Link.create({ listen: 0, to: echo.port, rateBps: 4e6, delayMs: 15 });
  try {
    const data = randomBytes(64 * 1024);
    const { echoed, ms } = await roundTrip(link.address.port, data);
    assert.ok(echoed.equals(data));
    const floor = 2 * 15 + (64 * 1024 * 8 / 4e6) * 1000;
    assert.ok(ms >= floor - 2, `round trip ${ms.toFixed(1)} ms is below the emulated floor ${floor.toFixed(1)} ms`);
    link.update({ rateBps: Infinity, delayMs: 40 });
    const small = await roundTrip(link.address.port, Buffer.from('ping'));
    assert.ok(small.ms >= 80 - 2, `after update: ${small.ms.toFixed(1)} ms < 2 × 40 ms`);
  } finally {
    await link.close();
    echo.close();
  }
});

test('HTTP control API: GET and PUT /config, GET /stats, clear 400s naming the field', async () => {
  const echo = await echoServer();
  const link = await Link.create({ listen: 0, to: echo.port, rateBps: 10e6, delayMs: 20, control: '127.0.0.1:0' });
  const base = `http://127.0.0.1:${link.controlAddress!.port}`;
  try {
    assert.deepEqual(await (await fetch(`${base}/config`)).json(), { rateBps: 10e6, rate: '10mbit', delayMs: 20, jitterMs: 0, burstBytes: null });
    const put = await fetch(`${base}/config`, { method: 'PUT', body: JSON.stringify({ rate: '2mbit', delayMs: 5, jitter: '1ms' }) });
    assert.equal(put.status, 200);
    assert.deepEqual(link.config, { rateBps: 2e6, delayMs: 5, jitterMs: 1 });
    const unl = await fetch(`${base}/config`, { method: 'PUT', body: '{"rateBps":null}' });
    assert.equal(((await unl.json()) as { rate: string }).rate, 'unlimited');
    for (const [body, re] of [['{"rate":"2mbps"}', /rate '2mbps'/], ['{"delayMs":-1}', /delayMs/], ['{"speed":1}', /unknown field 'speed'/], ['nope', /not JSON/]] as const) {
      const r = await fetch(`${base}/config`, { method: 'PUT', body });
      assert.equal(r.status, 400, body);
      const e = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(e.error.code, 'KERF_ERR_CONFIG');
      assert.match(e.error.message, re);
    }
    assert.deepEqual(link.config, { rateBps: Infinity, delayMs: 5, jitterMs: 1 }, 'a refused PUT changes nothing');
    await roundTrip(link.address.port, Buffer.from('hello'));
    const st = (await (await fetch(`${base}/stats`)).json()) as { up: { bytesOut: number }; connectionsTotal: number };
    assert.equal(st.up.bytesOut, 5);
    assert.equal(st.connectionsTotal, 1);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal((await fetch(`${base}/stats`, { method: 'DELETE' })).status, 405);
    assert.throws(() => configFromJson([1]), codeIs('KERF_ERR_CONFIG'));
  } finally {
    await link.close();
    echo.close();
  }
});

test('a trace replays its steps in order and leaves the last setting', async () => {
  const echo = await echoServer();
  const steps = parseTrace('0 10mbit 5ms\n0.03 1mbit 30ms 2ms\n0.06 50mbit 1ms\n');
  const link = await Link.create({ listen: 0, to: echo.port, trace: steps });
  try {
    const seen: number[] = [];
    await new Promise<void>((r) => link.on('trace-step', (_s, i: number) => { seen.push(i); if (i === 2) r(); }));
    assert.deepEqual(seen, [0, 1, 2]);
    assert.deepEqual(link.config, { rateBps: 50e6, delayMs: 1, jitterMs: 2 });
  } finally {
    await link.close();
    echo.close();
  }
});

test('close is idempotent and cuts connections; update after close fails; an unreachable target resets the client', async () => {
  const echo = await echoServer();
  const link = await Link.create({ listen: 0, to: echo.port, delayMs: 1000 });
  const s = net.connect({ port: link.address.port, host: '127.0.0.1' });
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write('held in the delay line');
  s.on('error', () => {});
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await Promise.all([link.close(), link.close()]);
  await closed;
  assert.throws(() => link.update({ delayMs: 1 }), codeIs('KERF_ERR_CLOSED'));
  await new Promise<void>((r) => echo.close(() => r()));
  // the echo server is gone: a link to its port resets each client instead of hanging
  const dead = await Link.create({ listen: 0, to: echo.port });
  try {
    const c = net.connect({ port: dead.address.port, host: '127.0.0.1' });
    const err = await new Promise<unknown>((r) => { c.on('error', r); c.on('close', () => r(null)); });
    assert.ok(err === null || (err as NodeJS.ErrnoException).code === 'ECONNRESET');
  } finally { await dead.close(); }
  await assert.rejects(Link.create({ listen: 0, to: 1, delayMs: -5 }), codeIs('KERF_ERR_CONFIG'));
});

test('kerf link: one JSON ready line, forwards, exits 0 on SIGTERM; bad usage is one line and exit 2', async () => {
  const echo = await echoServer();
  const bin = join(ROOT, 'bin', 'kerf.js');
  const child = spawn(process.execPath, [bin, 'link', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${echo.port}`, '--rate', '50mbit', '--delay', '2ms', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const ready = await new Promise<{ listen: string; config: { rateBps: number } }>((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', (d: Buffer) => { buf += d; const i = buf.indexOf('\n'); if (i >= 0) resolve(JSON.parse(buf.slice(0, i))); });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    assert.equal(ready.config.rateBps, 50e6);
    const port = Number(ready.listen.split(':').pop());
    const data = randomBytes(10_000);
    assert.ok((await roundTrip(port, data)).echoed.equals(data));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    echo.close();
  }
  const bad = spawn(process.execPath, [bin, 'link', '--listen', '0', '--to', '1', '--rate', '10mbps'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  bad.stderr.on('data', (d: Buffer) => { err += d; });
  const code = await new Promise<number | null>((r) => bad.once('exit', (c) => r(c)));
  assert.equal(code, 2);
  assert.equal(err.trim().split('\n').length, 1, err);
  assert.match(err, /--rate '10mbps'/);
});
