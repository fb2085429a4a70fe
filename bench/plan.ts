/**
 * npm run bench:plan — time per planning query (Scission's 18 models, synthetic 1,000- and
 * 10,000-block profiles) and `kerf scission … mobilenet` end to end, against the Python
 * script's 1.2 s (the figure given in issue 4: Python/TensorFlow is not runnable here, so
 * that baseline is quoted, not re-measured).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScissionFolder } from '../src/cli/scission.js';
import { emptyCriteria } from '../src/plan/criteria.js';
import { parseNetworkCsv } from '../src/plan/network.js';
import { problemFromProfiles } from '../src/plan/problem.js';
import { scissionPredict } from '../src/plan/scission.js';
import { rankPlacements, searchPlacements } from '../src/plan/search.js';
import type { Network, NetworkLink, PlanProblem, PlanTier, SystemCost } from '../src/plan/types.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = process.env.KERF_SHARED ?? resolve(ROOT, '..', 'shared');
const DATA = join(SHARED, 'scission', 'benchmark_data');
const PY_BASELINE_S = 1.2;

/** Median seconds per call of fn, over enough repetitions to take ~budget seconds. */
function timeIt(fn: () => unknown, budget = 0.3): { median: number; runs: number } {
  fn();
  const samples: number[] = [];
  const start = process.hrtime.bigint();
  while (samples.length < 5 || (Number(process.hrtime.bigint() - start) / 1e9 < budget && samples.length < 2000)) {
    const t0 = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)]!, runs: samples.length };
}

const ms = (s: number): string => `${(s * 1000).toFixed(3)} ms`;

function synthetic(L: number, seed: number): { problem: PlanProblem; net: Network } {
  let a = seed;
  const r = (): number => { a = (a * 1664525 + 1013904223) >>> 0; return a / 4294967296; };
  const sys = (tier: PlanTier, name: string, speed: number): SystemCost => {
    const time = new Float64Array(L), out = new Float64Array(L), mem = new Float64Array(L);
    for (let i = 0; i < L; i++) { time[i] = (0.0005 + r() * 0.002) / speed; out[i] = Math.floor(1e4 + r() * 2e6); mem[i] = 1e6; }
    return { name, tier, time, out, mem };
  };
  const idx = Int32Array.from({ length: L }, (_, i) => i);
  const problem: PlanProblem = {
    model: `synthetic${L}`, blocks: L, firstLayer: idx, lastLayer: idx, cutIds: Array.from(idx),
    inputBytes: 150000,
    device: [sys('device', 'pi', 1)],
    edge: [sys('edge', 'e1', 6), sys('edge', 'e2', 4)],
    cloud: [sys('cloud', 'gpu', 60), sys('cloud', 'cpu', 15)],
  };
  const link = (from: string, to: string, rttMs: number, mbps: number): NetworkLink =>
    ({ from, to, rttMs, bandwidthMbps: mbps, rttS: rttMs / 1000, bytesPerS: mbps * 125000 });
  const links = [
    link('pi', 'e1', 10, 20), link('pi', 'e2', 10, 20), link('pi', 'gpu', 45, 10), link('pi', 'cpu', 45, 10),
    link('e1', 'gpu', 20, 50), link('e1', 'cpu', 20, 50), link('e2', 'gpu', 20, 50), link('e2', 'cpu', 20, 50),
  ];
  return { problem, net: { schema: 'kerf.network/v1', format: 'yaml', links } };
}

function main(): void {
  const lines: string[] = ['# kerf plan benchmark', ''];
  const out = (s: string): void => { lines.push(s); process.stdout.write(s + '\n'); };
  out(`node ${process.version}, ${process.platform}/${process.arch}`);
  if (existsSync(DATA)) {
    const systems = loadScissionFolder(DATA);
    const net = parseNetworkCsv(readFileSync(join(DATA, 'network_stats.csv'), 'utf8'));
    out('');
    out('Scission models, default query (no criteria, top 5), 5 systems: time per query (search + describe)');
    const models = [...systems[0]!.profiles.keys()];
    let worst = 0;
    for (const m of models) {
      const problem = problemFromProfiles(systems.map((s) => s.profiles.get(m)!), m, { inputBytes: 150000 });
      const t = timeIt(() => rankPlacements(problem, net, emptyCriteria(), { topK: 5, scissionQuirks: true }), 0.15);
      worst = Math.max(worst, t.median);
      out(`  ${m.padEnd(20)} ${String(problem.blocks).padStart(3)} blocks  ${ms(t.median).padStart(10)}  (${t.runs} runs)`);
    }
    out(`  slowest model: ${ms(worst)} per query`);
    const q = timeIt(() => scissionPredict(systems, net, { model: 'mobilenet', deviceUpload: '0.5', edgeTime: '50%' }), 0.3);
    out(`  mobilenet --device-upload 0.5 --edge-time 50% (in process, with output lines): ${ms(q.median)}`);
  } else out(`(skipped Scission models: ${DATA} is absent)`);

  out('');
  out('Synthetic profiles, 1 device + 2 edge + 2 cloud systems, top 5 (target for 1,000 blocks: < 20 ms)');
  for (const L of [1000, 10000]) {
    const { problem, net } = synthetic(L, 7);
    const t = timeIt(() => searchPlacements(problem, net, undefined, { topK: 5 }), 1);
    out(`  ${String(L).padStart(6)} blocks, latency     ${ms(t.median).padStart(12)}  (${t.runs} runs)${L === 1000 ? `  target 20 ms: ${(0.02 / t.median).toFixed(1)}x under` : ''}`);
    const tp = timeIt(() => searchPlacements(problem, net, undefined, { topK: 5, objective: 'throughput' }), 1);
    out(`  ${String(L).padStart(6)} blocks, throughput  ${ms(tp.median).padStart(12)}  (${tp.runs} runs)`);
    if (L === 1000) {
      // a criterion no placement meets leaves the top-K empty, so nothing is pruned: the exhaustive worst case
      const c = emptyCriteria();
      c.cloud.includeLayers.push(L + 5);
      const w = timeIt(() => searchPlacements(problem, net, c, { topK: 5 }), 1);
      out(`  ${String(L).padStart(6)} blocks, nothing qualifies (exhaustive, ${L * L * 2} placements)  ${ms(w.median)}  (${w.runs} runs)`);
    }
  }

  if (existsSync(DATA)) {
    out('');
    const kerf = join(ROOT, 'bin', 'kerf.js');
    const args = [kerf, 'scission', DATA, 'network_stats.csv', 'mobilenet', '--device-upload', '0.5', '--edge-time', '50%'];
    const walls: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
      walls.push(Number(process.hrtime.bigint() - t0) / 1e9);
      if (r.status !== 0) throw new Error(`kerf scission failed: ${r.stderr}`);
    }
    walls.sort((a, b) => a - b);
    const wall = walls[3]!;
    const floors: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = process.hrtime.bigint();
      spawnSync(process.execPath, ['-e', ''], { encoding: 'utf8' });
      floors.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    floors.sort((a, b) => a - b);
    out(`kerf scission <benchmark_data> network_stats.csv mobilenet --device-upload 0.5 --edge-time 50%`);
    out(`  end to end (spawn node bin/kerf.js, median of 7): ${ms(wall)}  (fastest ${ms(walls[0]!)})`);
    out(`  bare 'node -e ""' start-up on this machine right now: ${ms(floors[3]!)} (the floor any Node CLI pays)`);
    out(`  Python scission_predict.py baseline: ${PY_BASELINE_S} s (figure quoted from the issue; not runnable here)`);
    out(`  ratio: ${(PY_BASELINE_S / wall).toFixed(1)}x faster (target >= 10x)`);
  }
}

main();
