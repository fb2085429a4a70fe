/**
 * Link emulator accuracy on loopback: set vs measured rate, delay and jitter.
 * Run: npx tsc -p . && node dist/bench/link.js [--quick]
 */
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Link } from '../src/link/index.js';

const quick = process.argv.includes('--quick');

/** A server that counts what it receives, timestamping the first and last chunk. */
async function sink(): Promise<{ port: number; next(): Promise<{ bytes: number; first: number; firstBytes: number; last: number }>; close(): Promise<void> }> {
  let waiter: ((r: { bytes: number; first: number; firstBytes: number; last: number }) => void) | null = null;
  const server = net.createServer((s) => {
    let bytes = 0; let first = 0; let firstBytes = 0; let last = 0;
    s.on('data', (c: Buffer) => {
      const now = performance.now();
      if (bytes === 0) { first = now; firstBytes = c.length; }
      bytes += c.length; last = now;
    });
    s.on('end', () => { s.end(); waiter?.({ bytes, first, firstBytes, last }); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => new Promise((r) => { waiter = r; }),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Push `total` bytes through `port` as fast as the link takes them. */
async function blast(port: number, total: number): Promise<void> {
  const s = net.connect({ port, host: '127.0.0.1' });
  await new Promise<void>((r) => s.once('connect', () => r()));
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sent = 0;
  while (sent < total) {
    const n = Math.min(chunk.length, total - sent);
    sent += n;
    if (!s.write(chunk.subarray(0, n))) await new Promise<void>((r) => s.once('drain', () => r()));
  }
  s.end();
  await new Promise<void>((r) => s.once('close', () => r()));
}

async function measureRate(mbit: number, seconds: number): Promise<number> {
  const k = await sink();
  const link = await Link.create({ listen: 0, to: k.port, rateBps: mbit * 1e6 });
  const total = Math.round(mbit * 1e6 / 8 * seconds);
  const got = k.next();
  await blast(link.address.port, total);
  const r = await got;
  await link.close(); await k.close();
  if (r.bytes !== total) throw new Error(`lost bytes: ${r.bytes} of ${total}`);
  return (r.bytes - r.firstBytes) * 8 / ((r.last - r.first) / 1000) / 1e6;
}

/** An echo server; returns one-way delay samples (ms) of small messages through a link vs direct. */
async function measureDelay(delayMs: number, jitterMs: number, n: number): Promise<number[]> {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const port = (echo.address() as net.AddressInfo).port;
  const link = await Link.create({ listen: 0, to: port, rateBps: 100e6, delayMs, jitterMs });
  const rtts = async (p: number): Promise<number[]> => {
    const s = net.connect({ port: p, host: '127.0.0.1' });
    s.setNoDelay(true);
    await new Promise<void>((r) => s.once('connect', () => r()));
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      s.write(Buffer.alloc(32, i));
      let got = 0;
      await new Promise<void>((r) => { const on = (c: Buffer) => { got += c.length; if (got >= 32) { s.off('data', on); r(); } }; s.on('data', on); });
      out.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 3 + (i % 5)));
    }
    s.destroy();
    return out;
  };
  const direct = median(await rtts(port));
  const through = await rtts(link.address.port);
  await link.close();
  await new Promise<void>((r) => echo.close(() => r()));
  return through.map((t) => (t - direct) / 2);
}

/** One message of `bytes` over rate+delay: time until its last byte arrives, vs delay + size/rate. */
async function measureMessage(mbit: number, delayMs: number, bytes: number): Promise<number> {
  const k = await sink();
  const link = await Link.create({ listen: 0, to: k.port, rateBps: mbit * 1e6, delayMs });
  const s = net.connect({ port: link.address.port, host: '127.0.0.1' });
  await new Promise<void>((r) => s.once('connect', () => r()));
  await new Promise((r) => setTimeout(r, 50)); // the link is idle: the token bucket is full
  const got = k.next();
  const t0 = performance.now();
  s.end(Buffer.alloc(bytes, 1));
  const r = await got;
  await link.close(); await k.close();
  return r.last - t0;
}

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; }
function mean(xs: number[]): number { return xs.reduce((a, b) => a + b, 0) / xs.length; }
function sd(xs: number[]): number { const m = mean(xs); return Math.sqrt(mean(xs.map((x) => (x - m) ** 2))); }
const pct = (got: number, want: number): string => `${got >= want ? '+' : ''}${((got / want - 1) * 100).toFixed(1)}%`;

async function main(): Promise<void> {
  console.log(`# kerf link accuracy (loopback, node ${process.version}${quick ? ', --quick' : ''})\n`);
  console.log('## Rate (bulk transfer, measured at the receiver between first and last byte)\n');
  console.log('| set | transfer | measured | error |');
  console.log('| ---: | ---: | ---: | ---: |');
  let worst = 0;
  for (const mbit of [1, 2, 5, 10, 20, 50, 100, 200]) {
    const secs = quick ? 0.5 : 2;
    const got = await measureRate(mbit, secs);
    if (mbit <= 100) worst = Math.max(worst, Math.abs(got / mbit - 1));
    console.log(`| ${mbit} Mbit/s | ${(mbit * 1e6 / 8 * secs / 1e6).toFixed(2)} MB | ${got.toFixed(2)} Mbit/s | ${pct(got, mbit)} |`);
  }
  console.log(`\nworst rate error from 1 to 100 Mbit/s: ${(worst * 100).toFixed(1)}% (target ≤ 10%)\n`);

  console.log('## One-way delay (32-byte ping-pong through the link at 100 Mbit/s, minus the direct loopback RTT, halved)\n');
  console.log('| set delay | set jitter | median | mean | sd | min | max |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const n = quick ? 15 : 40;
  for (const [d, j] of [[0, 0], [1, 0], [5, 0], [20, 0], [50, 0], [100, 0], [20, 5], [50, 10]] as const) {
    const xs = await measureDelay(d, j, n);
    console.log(`| ${d} ms | ${j} ms | ${median(xs).toFixed(2)} ms | ${mean(xs).toFixed(2)} ms | ${sd(xs).toFixed(2)} ms | ${Math.min(...xs).toFixed(2)} ms | ${Math.max(...xs).toFixed(2)} ms |`);
  }

  console.log('\n## One message: last byte arrives at delay + size/rate?\n');
  console.log('| rate | delay | size | predicted | measured | error |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [mbit, d, bytes] of [[10, 20, 802_816], [50, 5, 802_816], [100, 10, 4_000_000], [5, 50, 100_000]] as const) {
    const want = d + bytes * 8 / (mbit * 1e6) * 1000;
    const got = await measureMessage(mbit, d, bytes);
    console.log(`| ${mbit} Mbit/s | ${d} ms | ${(bytes / 1e6).toFixed(3)} MB | ${want.toFixed(1)} ms | ${got.toFixed(1)} ms | ${pct(got, want)} |`);
  }
}

await main();
