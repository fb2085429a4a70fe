/**
 * The reference block `kerf measure` times on every host and on the machine running it: a
 * residual block of two 3×3 convolutions over 64×56×56 (resnet18's layer1, ~0.23 GFLOP), run
 * with one onnxruntime thread as `kerf profile` times blocks. A host's speed is this machine's
 * seconds per run divided by the host's, so a profile taken here applies there.
 */
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kerfError } from '../errors.js';
import { ModelBuilder, Rng } from '../graph/builder.js';
import { Session } from '../engine/ort.js';

export function referenceBlock(): Uint8Array {
  const b = new ModelBuilder({ opset: 13, name: 'kerf_reference_block' });
  const r = new Rng(7);
  b.input('x', 'float32', [1, 64, 56, 56]);
  b.initializer('w0', 'float32', [64, 64, 3, 3], r.he([64, 64, 3, 3]));
  b.initializer('w1', 'float32', [64, 64, 3, 3], r.he([64, 64, 3, 3]));
  b.node('Conv', ['x', 'w0'], ['c0'], { pads: [1, 1, 1, 1] });
  b.node('Relu', ['c0'], ['r0']);
  b.node('Conv', ['r0', 'w1'], ['c1'], { pads: [1, 1, 1, 1] });
  b.node('Add', ['c1', 'x'], ['s']);
  b.node('Relu', ['s'], ['y']);
  b.output('y', 'float32', [1, 64, 56, 56]);
  return b.toBytes();
}

/** Median seconds per run of the reference block over about `seconds` (after 2 warm-up runs). */
export async function timeReferenceBlock(seconds = 1): Promise<{ secondsPerRun: number; runs: number }> {
  const s = await Session.create(referenceBlock(), { label: 'reference block', threads: 1 });
  try {
    const r = new Rng(1);
    const x = { dtype: 'float32' as const, dims: [1, 64, 56, 56], data: r.he([1, 64, 56, 56]) };
    for (let i = 0; i < 2; i++) await s.run({ x });
    const times: number[] = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end || times.length < 3) {
      const t0 = performance.now();
      await s.run({ x });
      times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    return { secondsPerRun: times[Math.floor(times.length / 2)]!, runs: times.length };
  } finally {
    await s.close();
  }
}

/**
 * `timeReferenceBlock` in a child process (`kerf measure --reference-run S`), so it is timed
 * alone, the same way on every host; `onSpawn` may put the child in a cgroup.
 */
export async function referenceInChild(seconds: number, o: { kerfBin?: string; onSpawn?: (pid: number) => Promise<void> } = {}): Promise<{ secondsPerRun: number; runs: number }> {
  const bin = o.kerfBin ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'kerf.js');
  const child = spawn(process.execPath, [bin, 'measure', '--reference-run', String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  if (o.onSpawn && child.pid) await o.onSpawn(child.pid).catch(() => {});
  const code = await exited;
  if (code !== 0) throw kerfError('KERF_ERR_ENGINE', `reference block failed: ${err.trim().split('\n').pop() ?? `exit ${code}`}`);
  return JSON.parse(out.trim().split('\n').pop()!) as { secondsPerRun: number; runs: number };
}
