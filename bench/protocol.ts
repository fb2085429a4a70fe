/**
 * Wire protocol on loopback: round trip of small frames, cost per MB of tensor data, pipelined
 * request rate, against the figures in DESIGN.md (~0.09 ms round trip, ~1.7 ms per MB).
 * Run: npx tsc -p . && node dist/bench/protocol.js
 */
import { performance } from 'node:perf_hooks';
import { Connection, FrameServer, type WireTensor } from '../src/serve/index.js';

const BASE_RTT_MS = 0.09;
const BASE_MS_PER_MB = 1.7;

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; }
function p99(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length * 0.99)]!; }

async function main(): Promise<void> {
  const tiny: WireTensor = { name: 'ok', dtype: 'uint8', dims: [1], data: new Uint8Array(1) };
  const server = await FrameServer.listen({
    port: 0, token: 'bench',
    onRequest: (req) => (req.meta.echo ? { tensors: req.tensors } : { tensors: [tiny] }),
  });
  const conn = await Connection.connect({ port: server.address.port, token: 'bench' });
  const time = async (n: number, f: () => Promise<unknown>): Promise<number[]> => {
    for (let i = 0; i < Math.min(50, n); i++) await f(); // warm up
    const out: number[] = [];
    for (let i = 0; i < n; i++) { const t0 = performance.now(); await f(); out.push(performance.now() - t0); }
    return out;
  };

  console.log(`# kerf wire protocol on loopback (node ${process.version})\n`);
  console.log('| what | median | p99 | baseline | ratio |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  const ping = await time(2000, () => conn.ping());
  console.log(`| PING round trip | ${median(ping).toFixed(3)} ms | ${p99(ping).toFixed(3)} ms | ${BASE_RTT_MS} ms | ${(median(ping) / BASE_RTT_MS).toFixed(2)} |`);
  const small = await time(2000, () => conn.request([{ name: 'x', dtype: 'float32', dims: [1, 4], data: new Float32Array(4) }]));
  console.log(`| request 16 B → reply 1 B | ${median(small).toFixed(3)} ms | ${p99(small).toFixed(3)} ms | ${BASE_RTT_MS} ms | ${(median(small) / BASE_RTT_MS).toFixed(2)} |`);
  for (const [label, dims] of [['1×64×56×56 f32 (0.80 MB)', [1, 64, 56, 56]], ['1×3×224×224 f32 (0.60 MB)', [1, 3, 224, 224]], ['4 MB f32', [1, 1 << 20]], ['16 MB f32', [4, 1 << 20]]] as const) {
    const n = dims.reduce((a, b) => a * b, 1);
    const t: WireTensor = { name: 'x', dtype: 'float32', dims: [...dims], data: new Float32Array(n).fill(1.5) };
    const mb = n * 4 / 1e6;
    const one = await time(mb > 5 ? 30 : 200, () => conn.request([t]));
    const perMb = (median(one) - median(small)) / mb;
    console.log(`| one way ${label} | ${median(one).toFixed(3)} ms | ${p99(one).toFixed(3)} ms | ${(BASE_RTT_MS + BASE_MS_PER_MB * mb).toFixed(2)} ms | ${(median(one) / (BASE_RTT_MS + BASE_MS_PER_MB * mb)).toFixed(2)} |`);
    if (label.startsWith('4 MB')) console.log(`| → cost per MB (4 MB minus small request) | ${perMb.toFixed(3)} ms/MB | | ${BASE_MS_PER_MB} ms/MB | ${(perMb / BASE_MS_PER_MB).toFixed(2)} |`);
  }
  const echo = await time(200, () => conn.request([{ name: 'x', dtype: 'float32', dims: [1, 64, 56, 56], data: new Float32Array(64 * 56 * 56) }], { meta: { echo: '1' } }));
  console.log(`| echo 1×64×56×56 f32 both ways | ${median(echo).toFixed(3)} ms | ${p99(echo).toFixed(3)} ms | ${(BASE_RTT_MS + 2 * BASE_MS_PER_MB * 0.8028).toFixed(2)} ms | ${(median(echo) / (BASE_RTT_MS + 2 * BASE_MS_PER_MB * 0.8028)).toFixed(2)} |`);

  // Pipelining: 32 in flight on one connection.
  const N = 20000;
  const x: WireTensor = { name: 'x', dtype: 'float32', dims: [1, 4], data: new Float32Array(4) };
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 32 }, async () => { while (next++ < N) await conn.request([x]); }));
  const secs = (performance.now() - t0) / 1000;
  const serial = 1000 / median(small);
  console.log(`| 32 in flight, small requests | ${(N / secs).toFixed(0)} req/s | | ${serial.toFixed(0)} req/s one at a time | ${(N / secs / serial).toFixed(2)} |`);

  // For contrast: the same 1×64×56×56 tensor through JSON, as DESIGN.md warns.
  const big = new Float32Array(64 * 56 * 56).map((_, i) => Math.sin(i));
  const j0 = performance.now();
  const parsed = JSON.parse(JSON.stringify({ data: Array.from(big) })) as { data: number[] };
  const jsonMs = performance.now() - j0;
  console.log(`\nJSON stringify+parse of 1×64×56×56 f32 (${parsed.data.length} values): ${jsonMs.toFixed(1)} ms, vs ${median(echo).toFixed(2)} ms for a binary echo over TCP`);
  await conn.close();
  await server.close();
}

await main();
