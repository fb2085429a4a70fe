/**
 * bench:serve — the 3-tier pipeline (gateway + 2 workers as processes) on loopback vs the same
 * model in one in-process session: p50/p99 latency and throughput; then with emulated links,
 * measured p50 vs the prediction Σ compute + transfer (forward hops and the result's return).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { prepareModel, Session, normalisedBytes, randomInputs, type Prepared } from '../src/engine/index.js';
import { blocksOf, blockCuts } from '../src/graph/cuts.js';
import { Segment, up, type LinkSpec } from '../src/serve/index.js';
import { ROOT, SHARED, ocrModel } from '../test/support/shared.js';
import { inferBinary } from '../test/serve/serve-helpers.js';

const q = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]!; };
const ms = (s: number): string => (s * 1000).toFixed(2);

/** Single-tensor cuts splitting the FLOPs in three about equal parts. */
function balancedCuts(prep: Prepared): [number, number] {
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const blocks = blocksOf(prep.model, prep.analysis, ids);
  const total = blocks.reduce((a, b) => a + b.flops, 0);
  const out: number[] = [];
  let acc = 0;
  for (const b of blocks) {
    acc += b.flops;
    if (b.cutId !== undefined && out.length < 2 && acc >= total * (out.length + 1) / 3) out.push(b.cutId);
  }
  return [out[0] ?? ids[0]!, out[1] ?? ids[ids.length - 1]!];
}

async function main(): Promise<void> {
  const resnet = join(SHARED, 'models', 'resnet18.onnx');
  const file = existsSync(resnet) ? resnet : ocrModel('det');
  const shapes = file === resnet ? undefined : { x: [1, 3, 320, 320] };
  const prep = await prepareModel(file, shapes ? { inputShapes: shapes } : {});
  const cuts = balancedCuts(prep);
  const feeds = randomInputs(prep.model, prep.inputShapes, 7);
  const N = Number(process.env.BENCH_N ?? 60);
  process.stdout.write(`bench:serve — ${prep.model.name}, cuts ${cuts.join(',')}, ${N} sequential requests per figure, 1 thread per tier\n\n`);

  // Baseline: one in-process session.
  const whole = await Session.create(normalisedBytes(prep), { label: 'whole' });
  for (let i = 0; i < 3; i++) await whole.run(feeds);
  const base: number[] = [];
  for (let i = 0; i < N; i++) { const t = performance.now(); await whole.run(feeds); base.push((performance.now() - t) / 1000); }
  await whole.close();
  const baseTput = N / base.reduce((a, b) => a + b, 0);

  // Per-part compute and crossing bytes, for the prediction.
  const partS: number[] = [];
  const crossBytes: number[] = [];
  for (let k = 0; k < 3; k++) {
    const seg = await Segment.create(prep, { cuts, blocks: [k, k] });
    let tensors = k === 0 ? prep.model.inputs.map((i) => ({ name: i.name, ...feeds[i.name]! })) : null;
    if (!tensors) {
      // Feed the part what the previous parts make.
      let cur = prep.model.inputs.map((i) => ({ name: i.name, ...feeds[i.name]! })) as never[];
      for (let j = 0; j < k; j++) { const s = await Segment.create(prep, { cuts, blocks: [j, j] }); cur = await s.run(s.check(cur)) as never[]; await s.close(); }
      tensors = cur;
    }
    const checked = seg.check(tensors as never);
    const times: number[] = [];
    let out: { data: ArrayBufferView }[] = [];
    for (let i = 0; i < 3 + 20; i++) { const t = performance.now(); out = await seg.run(checked) as never; if (i >= 3) times.push((performance.now() - t) / 1000); }
    partS.push(q(times, 0.5));
    crossBytes.push(out.reduce((a, t) => a + t.data.byteLength, 0));
    await seg.close();
  }

  async function measure(links: (LinkSpec | null)[] | undefined, n: number, inflight: number): Promise<{ lat: number[]; tput: number }> {
    const h = await up({ model: file, ...(shapes ? { inputShapes: shapes } : {}), cuts, ...(links ? { links } : {}), kerfBin: join(ROOT, 'bin', 'kerf.js') });
    try {
      for (let i = 0; i < 3; i++) await inferBinary(h.url, h.name, feeds);
      const lat: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        const r = await inferBinary(h.url, h.name, feeds);
        if (r.status !== 200) throw new Error(`infer failed: ${r.error}`);
        lat.push((performance.now() - t) / 1000);
      }
      let tput = NaN;
      if (inflight > 1) {
        let sent = 0;
        const t0 = performance.now();
        await Promise.all(Array.from({ length: inflight }, async () => { while (sent++ < 2 * n) await inferBinary(h.url, h.name, feeds); }));
        tput = (2 * n) / ((performance.now() - t0) / 1000);
      }
      return { lat, tput };
    } finally {
      await h.close();
    }
  }

  const loop = await measure(undefined, N, 3);
  const r50 = q(loop.lat, 0.5) / q(base, 0.5);
  const rows = [
    ['in-process session', ms(q(base, 0.5)), ms(q(base, 0.99)), baseTput.toFixed(1), ''],
    ['3-tier, loopback', ms(q(loop.lat, 0.5)), ms(q(loop.lat, 0.99)), loop.tput.toFixed(1), `p50 ×${r50.toFixed(3)} (target ≤ 1.15), throughput ×${(loop.tput / baseTput).toFixed(2)} (target ≥ 1.0)`],
  ];

  const links: LinkSpec[] = [{ rateBps: 200e6, delayMs: 5 }, { rateBps: 100e6, delayMs: 10 }];
  const em = await measure(links, Math.max(20, Math.floor(N / 2)), 1);
  const outBytes = crossBytes[2]!;
  let predicted = partS.reduce((a, b) => a + b, 0);
  links.forEach((l, i) => {
    predicted += l.delayMs! / 1000 + (crossBytes[i]! * 8) / l.rateBps!; // forward hop
    predicted += l.delayMs! / 1000 + (outBytes * 8) / l.rateBps!; // the result's way back
  });
  const e50 = q(em.lat, 0.5);
  rows.push(['3-tier, links 200mbit/5ms + 100mbit/10ms', ms(e50), ms(q(em.lat, 0.99)), '', `predicted ${ms(predicted)} ms: ×${(e50 / predicted).toFixed(3)} (target ≤ 1.10)`]);

  const head = ['setup', 'p50 ms', 'p99 ms', 'req/s', 'ratio'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd() + '\n');
  process.stdout.write(`\nparts: compute ${partS.map(ms).join(' + ')} ms; crossing ${crossBytes.slice(0, 2).map((b) => (b / 1e6).toFixed(3)).join(', ')} MB; result ${outBytes} B\n`);
  process.stdout.write(`throughput: 3 requests in flight through the pipeline vs sequential runs of one session\n`);
}

main().catch((e) => { process.stderr.write(`bench:serve failed: ${(e as Error).stack ?? e}\n`); process.exitCode = 1; });
