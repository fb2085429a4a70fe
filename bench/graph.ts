/**
 * npm run bench:graph — load, cut analysis and split times on real models and a ≥1,000-node
 * model built here; each figure beside a baseline measured in the same run, as a ratio.
 * Targets (reported, not asserted): cut analysis of a 1,000-node graph < 100 ms; splitting a 100 MB model < 2 s.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { loadModel } from '../src/graph/load.js';
import { analyzeCuts, blockCuts, type TensorInfo } from '../src/graph/cuts.js';
import { splitModel } from '../src/graph/slice.js';
import { makeManifest } from '../src/graph/manifest.js';
import { writeSplit } from '../src/graph/save.js';
import { resolveInputShapes, resolveTensorInfo } from '../src/engine/shapes.js';
import { ModelBuilder, Rng } from '../src/graph/builder.js';
import { zooModel } from '../src/zoo/index.js';
import { table } from '../src/cli/format.js';
import { sharedPath } from '../test/support/shared.js';

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; }
function time<T>(f: () => T, reps = 5): { ms: number; value: T } {
  let value!: T;
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); value = f(); ts.push(performance.now() - t0); }
  return { ms: median(ts), value };
}

/** A ResNet-like graph of `blocks` residual blocks (Conv, Relu, Conv, Add, Relu): 5 nodes each. */
function bigGraph(blocks: number): Uint8Array {
  const b = new ModelBuilder({ opset: 13, name: `deep${blocks}` });
  const r = new Rng(5);
  const C = 8;
  b.input('x', 'float32', [1, C, 16, 16]);
  let x = 'x';
  for (let i = 0; i < blocks; i++) {
    b.initializer(`w${i}a`, 'float32', [C, C, 3, 3], r.he([C, C, 3, 3], 0.5));
    b.initializer(`w${i}b`, 'float32', [C, C, 3, 3], r.he([C, C, 3, 3], 0.5));
    b.node('Conv', [x, `w${i}a`], [`c${i}a`], { pads: [1, 1, 1, 1] });
    b.node('Relu', [`c${i}a`], [`r${i}a`]);
    b.node('Conv', [`r${i}a`, `w${i}b`], [`c${i}b`], { pads: [1, 1, 1, 1] });
    b.node('Add', [`c${i}b`, x], [`s${i}`]);
    b.node('Relu', [`s${i}`], [`y${i}`]);
    x = `y${i}`;
  }
  b.output(x, 'float32', [1, C, 16, 16]);
  return b.toBytes();
}

const dir = mkdtempSync(join(tmpdir(), 'kerf-bench-graph-'));
const rows: (string | number)[][] = [];
const notes: string[] = [];
async function benchModel(label: string, file: string, splitCuts: (n: number) => number[]): Promise<void> {
  const bytes = readFileSync(file);
  const parse = time(() => fromBinary(ModelProtoSchema, readFileSync(file)));
  const load = time(() => loadModel(file));
  const model = load.value;
  const shapes = resolveInputShapes(model);
  let t0 = performance.now();
  const info: Map<string, TensorInfo> = await resolveTensorInfo(model, shapes);
  const shapeMs = performance.now() - t0;
  const cuts = time(() => analyzeCuts(model, info), 5);
  const analysis = cuts.value;
  const ids = splitCuts(analysis.cuts.length).map((i) => blockCuts(analysis, 'all')[i]!.id);
  const split = time(() => {
    const s = splitModel(model, analysis, ids);
    writeSplit(join(dir, label), s, makeManifest(model, analysis, s, shapes));
    return s;
  }, 3);
  // Baseline for splitting: writing the model's bytes to disk once (the I/O any split must do).
  const copy = time(() => writeFileSync(join(dir, `${label}.copy`), bytes), 3);
  rows.push([label, model.nodes.length, analysis.cuts.length, (bytes.length / 1e6).toFixed(1),
    load.ms.toFixed(1), (load.ms / parse.ms).toFixed(2), shapeMs.toFixed(0), cuts.ms.toFixed(2),
    split.ms.toFixed(0), (split.ms / copy.ms).toFixed(2)]);
  return;
}

const resnet = sharedPath('models/resnet18.onnx');
const googlenet = sharedPath('models/googlenet.onnx');
if (resnet) await benchModel('resnet18', resnet, (n) => [Math.floor(n / 3), Math.floor((2 * n) / 3)]);
if (googlenet) await benchModel('googlenet', googlenet, (n) => [Math.floor(n / 3), Math.floor((2 * n) / 3)]);
const deep = join(dir, 'deep.onnx');
writeFileSync(deep, bigGraph(220));
await benchModel('deep-1100 (built)', deep, (n) => [Math.floor(n / 4), Math.floor(n / 2), Math.floor((3 * n) / 4)]);
const r50 = join(dir, 'resnet50.onnx');
writeFileSync(r50, zooModel('resnet50'));
await benchModel('resnet50 (zoo, ~100 MB)', r50, (n) => [Math.floor(n / 2)]);

process.stdout.write(table(
  ['model', 'nodes', 'cuts', 'MB', 'load ms', 'load/parse', 'shapes ms', 'cut analysis ms', 'split ms', 'split/copy'], rows) + '\n\n');
process.stdout.write([
  'load/parse: loadModel (read, parse, normalise, sort, sha256 of the file) vs reading the file and a bare protobuf parse.',
  'shapes ms: one onnxruntime run exposing every tensor (dtype and dims of each), done once per model and input shape.',
  'cut analysis: three candidate orders, crossing tensors and bytes, FLOPs and params of every cut.',
  'split/copy: splitting and writing all parts + manifest vs writing the model file once.',
  `targets: cut analysis of the 1,000-node graph < 100 ms; splitting the ~100 MB model < 2,000 ms.`,
  ...notes,
].join('\n') + '\n');
rmSync(dir, { recursive: true, force: true });
