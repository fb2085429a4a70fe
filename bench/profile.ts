/**
 * How long `kerf profile` takes, against the least it could take: loading the whole model once
 * and running it as many times as each block is run (warm-up + repeats).
 * Targets (issue 3): resnet18 at single granularity with default repeats ≤ 15 s and ≤ 3× that baseline.
 * Run: npm run bench:profile  (KERF_SHARED to point at another ../shared)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from '../src/engine/ort.js';
import { loadModel } from '../src/graph/load.js';
import { randomInputs, resolveInputShapes } from '../src/engine/shapes.js';
import { PROFILE_DEFAULTS, profileModel } from '../src/profile/profile.js';
import type { Granularity } from '../src/graph/cuts.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = process.env.KERF_SHARED ?? resolve(ROOT, '..', 'shared');
const TARGET_S = 15, TARGET_RATIO = 3;

/** Load the whole model once and run it warm-up + repeats times: the floor any profiler pays. */
async function baseline(file: string, runs: number): Promise<number> {
  const t0 = performance.now();
  const s = await Session.create(file);
  const m = loadModel(file);
  const feeds = randomInputs(m, resolveInputShapes(m), 0);
  try { for (let i = 0; i < runs; i++) await s.run(feeds); } finally { await s.close(); }
  return (performance.now() - t0) / 1e3;
}

async function one(name: string, granularity: Granularity): Promise<{ wall: number; base: number; ratio: number; blocks: number; sumOverWhole: number }> {
  const file = join(SHARED, 'models', `${name}.onnx`);
  const runs = PROFILE_DEFAULTS.warmup + PROFILE_DEFAULTS.repeats;
  const b1 = await baseline(file, runs);
  const t0 = performance.now();
  const p = await profileModel(file, { system: 'bench', granularity });
  const wall = (performance.now() - t0) / 1e3;
  const b2 = await baseline(file, runs);
  const base = (b1 + b2) / 2; // before and after, so drift in the machine's speed cancels
  return { wall, base, ratio: wall / base, blocks: p.blocks.length, sumOverWhole: p.blockSumOverWhole! };
}

async function main(): Promise<void> {
  if (!existsSync(join(SHARED, 'models', 'resnet18.onnx'))) {
    process.stdout.write(`SKIP: ${join(SHARED, 'models')} is absent\n`);
    return;
  }
  process.stdout.write(`kerf profile: wall time vs loading the whole model once and running it ${PROFILE_DEFAULTS.warmup}+${PROFILE_DEFAULTS.repeats} times (default warm-up + repeats), 1 thread\n\n`);
  process.stdout.write('model       granularity  blocks  profile (s)  baseline (s)  ratio  block-sum/whole\n');
  let verdict = '';
  for (const [name, g] of [['resnet18', 'single'], ['resnet18', 'all'], ['googlenet', 'single'], ['googlenet', 'all']] as const) {
    const r = await one(name, g);
    process.stdout.write(`${name.padEnd(11)} ${g.padEnd(12)} ${String(r.blocks).padStart(6)}  ${r.wall.toFixed(2).padStart(11)}  ${r.base.toFixed(2).padStart(12)}  ${r.ratio.toFixed(2).padStart(5)}  ${r.sumOverWhole.toFixed(3).padStart(15)}\n`);
    if (name === 'resnet18' && g === 'single') {
      const ok = r.wall <= TARGET_S && r.ratio <= TARGET_RATIO;
      verdict = `resnet18 single: ${r.wall.toFixed(2)} s (target ≤ ${TARGET_S} s), ${r.ratio.toFixed(2)}× baseline (target ≤ ${TARGET_RATIO}×): ${ok ? 'MET' : 'MISSED'}`;
    }
  }
  // The same through the CLI, process start and file write included.
  const dir = mkdtempSync(join(tmpdir(), 'kerf-bench-profile-'));
  try {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'kerf.js'), 'profile', join(SHARED, 'models', 'resnet18.onnx'), '--system', 'bench', '--tier', 'cloud', '-o', dir, '--json'], { encoding: 'utf8' });
    const cli = (performance.now() - t0) / 1e3;
    process.stdout.write(`\nkerf profile resnet18.onnx --system bench (CLI, process start included): ${cli.toFixed(2)} s${r.status === 0 ? '' : ` (failed: ${r.stderr.trim()})`}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${verdict}\n`);
}

await main();
