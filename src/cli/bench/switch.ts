/**
 * `kerf bench switch`: live repartitioning under a constant request rate, per strategy, on a
 * 3-tier pipeline of child processes (kerf up). Switches N times between two splits and
 * reports the gateway's downtime, what clients saw (p99 of requests overlapping a switch,
 * largest gap between answers), failures, switch duration and memory (VmRSS of every tier).
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kerfError } from '../../errors.js';
import { parse } from '../args.js';
import { table } from '../format.js';
import { encodeInferRequest } from '../../serve/oip.js';
import { closedLoopRate, twoSplits } from './load.js';

const HELP = `usage: kerf bench switch [--model m.onnx] [--rate 200] [--switches 20] [options]

Serve the model split over 3 local tiers (kerf up), drive a constant request rate through the
gateway and switch N times between two splits with each strategy. Reports per strategy:
downtime measured inside the gateway, p99 latency of requests overlapping a switch vs the
steady p99, the largest gap between answers (switching vs steady), failed/lost/wrong answers,
switch duration and extra peak resident memory (all tiers) over the steady state.

options:
  --model FILE         the model (default ../shared/models/resnet18.onnx)
  --rate R             requests per second (default 200, capped at half of what the pipeline
                       sustains, measured first; an explicit --rate is used as given)
  --switches N         switches per strategy (default 20)
  --strategies LIST    default pause-resume,standby,on-demand,hot-swap
  --cuts A1,A2         first split (default: single-tensor cuts at 1/3 and 2/3)
  --to B1,B2           second split (default: at 1/2 and 5/6)
  --gap-ms MS          steady time between switches (default 400)
  --json               one JSON line per strategy (and one for the compute check)
  -h, --help           this help`;

const OPTIONS = {
  model: { type: 'string' }, rate: { type: 'string' }, switches: { type: 'string' }, strategies: { type: 'string' },
  cuts: { type: 'string' }, to: { type: 'string' }, 'gap-ms': { type: 'string' }, json: { type: 'boolean' },
} as const;

const here = dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** VmRSS of a process in bytes (0 when gone). */
async function rss(pid: number): Promise<number> {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

/** One row of the result. */
export interface SwitchBenchRow {
  model: string;
  strategy: string;
  rate: number;
  switches: number;
  /** downtime inside the gateway, ms: mean and max over the switches */
  downtimeMs: number;
  downtimeMaxMs: number;
  p99SwitchMs: number;
  p99SteadyMs: number;
  p99Ratio: number;
  maxGapSwitchMs: number;
  maxGapSteadyMs: number;
  /** answered with an error (pause-resume: 503 while paused) */
  failed: number;
  /** started and never answered */
  lost: number;
  /** answered 200 with bytes differing from the unsplit model, or another request's id */
  wrong: number;
  switchMs: number;
  switchMaxMs: number;
  steadyRssMB: number;
  extraPeakRssMB: number;
  modelMB: number;
  extraPctModel: number;
  /** peak during the switches over the steady window's own peak: what switching adds beyond the
   * steady state's fluctuation (V8 heaps, onnxruntime arenas, socket buffers of 4 processes) */
  extraOverSteadyPeakMB: number;
  extraOverSteadyPeakPctModel: number;
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP, false);
  if (!p) return 0;
  const v = p.values;
  const { prepareModel, Session, normalisedBytes, randomInputs } = await import('../../engine/index.js');
  const { up } = await import('../../serve/up.js');
  const { setSwitchStrategy, repartition, startLoad, SWITCH_STRATEGIES, ChunkStore } = await import('../../serve/index.js');
  const modelPath = v.model ?? resolve(here, '..', '..', '..', '..', '..', 'shared', 'models', 'resnet18.onnx');
  if (!existsSync(modelPath)) throw kerfError('KERF_ERR_FILE', `${modelPath}: no such model; pass --model m.onnx`);
  const switches = v.switches !== undefined ? Number(v.switches) : 20;
  if (!Number.isInteger(switches) || switches < 2) throw kerfError('KERF_ERR_USAGE', `--switches '${v.switches}': expected an integer ≥ 2`);
  const gapMs = v['gap-ms'] !== undefined ? Number(v['gap-ms']) : 400;
  if (!(gapMs >= 0)) throw kerfError('KERF_ERR_USAGE', `--gap-ms '${v['gap-ms']}': expected a number ≥ 0`);
  const strategies = (v.strategies ?? SWITCH_STRATEGIES.join(',')).split(',').map((s) => s.trim());
  for (const s of strategies) if (!(SWITCH_STRATEGIES as readonly string[]).includes(s)) throw kerfError('KERF_ERR_USAGE', `--strategies: '${s}' is not one of ${SWITCH_STRATEGIES.join(', ')}`);
  let rateAsked = 200, rateGiven = false;
  if (v.rate !== undefined) { rateAsked = Number(v.rate); rateGiven = true; if (!(rateAsked > 0)) throw kerfError('KERF_ERR_USAGE', `--rate '${v.rate}': expected a positive number`); }
  const log = (s: string): void => { if (!v.json) process.stderr.write(s + '\n'); };

  const prep = await prepareModel(modelPath);
  const { A, B, ids } = twoSplits(prep, v.cuts, v.to);
  const modelBytes = statSync(modelPath).size;

  // Reference answers and the compute check of composed chunk sessions (in this process).
  const whole = await Session.create(normalisedBytes(prep), { label: 'whole' });
  const feeds = [0, 1, 2, 3].map((k) => randomInputs(prep.model, prep.inputShapes, 500 + k));
  const cases: import('../../serve/index.js').LoadCase[] = [];
  for (const f of feeds) {
    const out = await whole.run(f);
    cases.push({
      inputs: Object.entries(f).map(([name, t]) => ({ name, dtype: t.dtype as 'float32', dims: t.dims, data: t.data as Float32Array })),
      expect: Object.fromEntries(prep.model.outputs.map((o) => { const d = out[o.name]!.data as Float32Array; return [o.name, new Uint8Array(d.buffer, d.byteOffset, d.byteLength)]; })),
    });
  }
  const timeRuns = async (fn: () => Promise<unknown>): Promise<number> => { for (let i = 0; i < 3; i++) await fn(); const t: number[] = []; for (let i = 0; i < 15; i++) { const t0 = performance.now(); await fn(); t.push(performance.now() - t0); } return quantile(t, 0.5); };
  const wholeMs = await timeRuns(() => whole.run(feeds[0]!));
  const compute: Record<string, unknown> = { model: prep.model.name, wholeMs };
  for (const [label, points] of [['bench chunks', [...new Set([...A, ...B])].sort((a, b) => a - b)], ['every single-tensor block', ids]] as const) {
    // Load each chunk of the composition, then run the whole model as their chain.
    const store = new ChunkStore(prep, { cacheBytes: Infinity, label: 'check' });
    for (let k = 0; k <= points.length; k++) { const { segment } = await store.compose(k === 0 ? null : points[k - 1]!, k === points.length ? null : points[k]!); await segment.close(); }
    const { segment } = await store.compose(null, null);
    const byName = segment.check(cases[0]!.inputs as never);
    const outs = await segment.run(byName);
    const equal = prep.model.outputs.every((o) => { const t = outs.find((x) => x.name === o.name)!; const d = t.data as Float32Array; return Buffer.from(d.buffer, d.byteOffset, d.byteLength).equals(Buffer.from(cases[0]!.expect[o.name]!)); });
    const ms = await timeRuns(() => segment.run(byName));
    compute[label] = { chunks: segment.parts.length, ms, overhead: ms / wholeMs - 1, bitwiseEqual: equal };
    await segment.close();
    await store.close();
  }
  await whole.close();
  log(`compute check (${prep.model.name}): whole model ${wholeMs.toFixed(2)} ms; ` + ['bench chunks', 'every single-tensor block'].map((l) => {
    const c = compute[l] as { chunks: number; ms: number; overhead: number; bitwiseEqual: boolean };
    return `${c.chunks} chunks ${c.ms.toFixed(2)} ms (${(c.overhead * 100).toFixed(1)}%, ${c.bitwiseEqual ? 'bitwise equal' : 'DIFFERENT'})`;
  }).join('; '));
  if (v.json) process.stdout.write(JSON.stringify({ kind: 'compute', ...compute }) + '\n');

  const rows: SwitchBenchRow[] = [];
  let rate = rateAsked;
  for (const strategy of strategies) {
    log(`${prep.model.name} ${strategy}: starting 3 tiers, cuts ${A.join(',')} ⇄ ${B.join(',')}`);
    const h = await up({ model: modelPath, cuts: A });
    try {
      await setSwitchStrategy(h.url, strategy as never, strategy === 'standby' ? { standby: B } : {}, h.token);
      if (!rateGiven && rows.length === 0) {
        const c = cases[0]!;
        const { head, data } = encodeInferRequest(c.inputs);
        const cap = await closedLoopRate(h.url, h.name, Buffer.concat([head, ...data]), head.length, 2000);
        rate = Math.min(rateAsked, Math.max(1, Math.floor(cap / 2)));
        log(`pipeline sustains ${cap.toFixed(1)} req/s: rate ${rate} req/s`);
      }
      const load = startLoad({ url: h.url, model: h.name, cases, rate });
      // Warm-up: a round trip, so caches, connections and JIT are as they will be.
      await sleep(500);
      await repartition(h.url, { cuts: B }, h.token);
      await repartition(h.url, { cuts: A }, h.token);
      await sleep(500);
      const pids = h.processes.map((x) => x.pid);
      const samples: { t: number; bytes: number }[] = [];
      let sampling = true;
      const sampler = (async () => { while (sampling) { const t = performance.now(); const b = (await Promise.all(pids.map(rss))).reduce((a, x) => a + x, 0); samples.push({ t, bytes: b }); await sleep(20); } })();
      const steadyFrom = performance.now();
      // As long as the switching that follows (≈ switches × (gap + 100 ms)), so the steady p99 is
      // a p99 of as many requests and the steady RSS peak has had as long to wander.
      await sleep(Math.max(3000, gapMs * 4, switches * (gapMs + 100)));
      const steadyTo = performance.now();
      const windows: [number, number][] = [];
      const reports = [];
      for (let k = 0; k < switches; k++) {
        const t0 = performance.now();
        reports.push(await repartition(h.url, { cuts: k % 2 === 0 ? B : A }, h.token));
        windows.push([t0, performance.now()]);
        await sleep(gapMs);
      }
      const switchTo = performance.now();
      const recs = await load.stop();
      sampling = false;
      await sampler;
      const done = recs.filter((r) => r.start >= steadyFrom && r.start < switchTo);
      const overlaps = (a: number, b: number): boolean => windows.some(([x, y]) => a <= y && b >= x);
      const steadyRecs = done.filter((r) => r.end <= steadyTo);
      const switchRecs = done.filter((r) => r.start >= steadyTo && overlaps(r.start, r.end));
      const lat = (rs: typeof recs): number[] => rs.filter((r) => r.status === 200).map((r) => r.end - r.start);
      const ends = recs.filter((r) => r.status === 200).map((r) => r.end).sort((a, b) => a - b);
      let gapSteady = 0, gapSwitch = 0;
      for (let k = 1; k < ends.length; k++) {
        const a = ends[k - 1]!, b = ends[k]!;
        if (a >= steadyFrom && b <= steadyTo) gapSteady = Math.max(gapSteady, b - a);
        if (a >= steadyTo && overlaps(a, b)) gapSwitch = Math.max(gapSwitch, b - a);
      }
      const steadyRss = quantile(samples.filter((s) => s.t <= steadyTo).map((s) => s.bytes), 0.5);
      const peakRss = Math.max(...samples.filter((s) => s.t > steadyTo).map((s) => s.bytes));
      const steadyPeak = Math.max(...samples.filter((s) => s.t <= steadyTo).map((s) => s.bytes));
      const dts = reports.map((r) => r.downtimeMs);
      const durs = reports.map((r) => r.durationMs);
      const p99Switch = quantile(lat(switchRecs), 0.99), p99Steady = quantile(lat(steadyRecs), 0.99);
      const row: SwitchBenchRow = {
        model: prep.model.name, strategy, rate, switches,
        downtimeMs: dts.reduce((a, b) => a + b, 0) / dts.length, downtimeMaxMs: Math.max(...dts),
        p99SwitchMs: p99Switch, p99SteadyMs: p99Steady, p99Ratio: p99Switch / p99Steady,
        maxGapSwitchMs: gapSwitch, maxGapSteadyMs: gapSteady,
        failed: recs.filter((r) => r.status !== 200 && r.status !== 0).length,
        lost: load.sent - recs.length + recs.filter((r) => r.status === 0).length,
        wrong: recs.filter((r) => r.status === 200 && (!r.correct || !r.idOk)).length,
        switchMs: durs.reduce((a, b) => a + b, 0) / durs.length, switchMaxMs: Math.max(...durs),
        steadyRssMB: steadyRss / 1e6, extraPeakRssMB: Math.max(0, peakRss - steadyRss) / 1e6, modelMB: modelBytes / 1e6,
        extraPctModel: (100 * Math.max(0, peakRss - steadyRss)) / modelBytes,
        extraOverSteadyPeakMB: Math.max(0, peakRss - steadyPeak) / 1e6, extraOverSteadyPeakPctModel: (100 * Math.max(0, peakRss - steadyPeak)) / modelBytes,
      };
      rows.push(row);
      if (v.json) process.stdout.write(JSON.stringify(row) + '\n');
      else log(`  downtime ${row.downtimeMs.toFixed(4)} ms (max ${row.downtimeMaxMs.toFixed(4)}), p99 ${p99Switch.toFixed(1)} vs ${p99Steady.toFixed(1)} ms, failed ${row.failed}, lost ${row.lost}, wrong ${row.wrong}`);
    } finally {
      await h.close();
    }
  }
  if (!v.json) {
    const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
    process.stdout.write(`${prep.model.name}: ${rate} req/s, ${switches} switches per strategy, cuts ${A.join(',')} ⇄ ${B.join(',')}, model ${f(modelBytes / 1e6)} MB\n`);
    process.stdout.write(table(
      ['strategy', 'downtime ms (mean/max)', 'p99 switch ms', 'p99 steady ms', 'ratio', 'max gap switch/steady ms', 'failed', 'lost', 'wrong', 'switch ms (mean/max)', 'steady RSS MB', 'extra peak RSS MB', '% model', 'over steady peak MB (% model)'],
      rows.map((r) => [r.strategy, `${r.downtimeMs.toFixed(4)}/${r.downtimeMaxMs.toFixed(4)}`, f(r.p99SwitchMs), f(r.p99SteadyMs), f(r.p99Ratio, 2),
        `${f(r.maxGapSwitchMs)}/${f(r.maxGapSteadyMs)}`, r.failed, r.lost, r.wrong, `${f(r.switchMs)}/${f(r.switchMaxMs)}`, f(r.steadyRssMB), f(r.extraPeakRssMB), f(r.extraPctModel), `${f(r.extraOverSteadyPeakMB)} (${f(r.extraOverSteadyPeakPctModel)})`]),
    ) + '\n');
  }
  return 0;
}
