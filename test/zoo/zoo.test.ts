import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { fromBinary } from '@bufbuild/protobuf';
import { AttributeProto_AttributeType as AT, ModelProtoSchema, type GraphProto, type NodeProto } from 'onnx-buf';
import { Rng } from '../../src/graph/builder.js';
import { resolveZooName, zooBuilder, zooInfo, zooModel, zooNames } from '../../src/zoo/index.js';
import { ROOT, sharedPath } from '../support/shared.js';

/** torchvision's published figures (docs "Table of all available classification weights"): params, GFLOPS (= G multiply-accumulates). */
const TORCHVISION: Record<string, { params: number; gmacs: number; convs?: number }> = {
  resnet18: { params: 11_689_512, gmacs: 1.81, convs: 20 },
  resnet34: { params: 21_797_672, gmacs: 3.66, convs: 36 },
  resnet50: { params: 25_557_032, gmacs: 4.09, convs: 53 },
  resnet101: { params: 44_549_160, gmacs: 7.80, convs: 104 },
  resnet152: { params: 60_192_808, gmacs: 11.51, convs: 155 },
  mobilenet_v2: { params: 3_504_872, gmacs: 0.30, convs: 52 },
  vgg11: { params: 132_863_336, gmacs: 7.61, convs: 8 },
  vgg13: { params: 133_047_848, gmacs: 11.31, convs: 10 },
  vgg16: { params: 138_357_544, gmacs: 15.47, convs: 13 },
  vgg19: { params: 143_667_240, gmacs: 19.63, convs: 16 },
  googlenet: { params: 6_624_904, gmacs: 1.50, convs: 57 },
};

const ints = (n: NodeProto, name: string, dflt: number[]): number[] => {
  const a = n.attribute.find((x) => x.name === name);
  return a ? a.ints.map(Number) : dflt;
};
const int = (n: NodeProto, name: string, dflt: number): number => {
  const a = n.attribute.find((x) => x.name === name);
  return a && a.type === AT.INT ? Number(a.i) : dflt;
};

/**
 * An independent shape walk over the ops the zoo uses (batch 1): multiply-accumulates of Conv and Gemm,
 * trainable parameters (initializers minus BatchNorm running statistics) and the final output shape.
 */
function analyse(g: GraphProto): { macs: number; params: number; convs: number; out: number[] } {
  const shapes = new Map<string, number[]>();
  for (const t of g.initializer) shapes.set(t.name, t.dims.map(Number));
  for (const i of g.input) shapes.set(i.name, [1, 3, 224, 224]);
  const stats = new Set<string>();
  let macs = 0, convs = 0;
  const pool = (n: NodeProto, s: number[]): number[] => {
    const k = ints(n, 'kernel_shape', []), st = ints(n, 'strides', [1, 1]), p = ints(n, 'pads', [0, 0, 0, 0]);
    const ceil = int(n, 'ceil_mode', 0) === 1;
    const dim = (x: number, i: number) => {
      const span = x + p[i]! + p[i + 2]! - k[i]!;
      let o = (ceil ? Math.ceil(span / st[i]!) : Math.floor(span / st[i]!)) + 1;
      if (ceil && (o - 1) * st[i]! >= x + p[i]!) o--; // ONNX/torch: the last window starts inside the input
      return o;
    };
    return [s[0]!, s[1]!, dim(s[2]!, 0), dim(s[3]!, 1)];
  };
  for (const n of g.node) {
    const s = shapes.get(n.input[0] ?? '');
    let out: number[];
    switch (n.opType) {
      case 'Constant': out = []; break;
      case 'Conv': {
        const w = shapes.get(n.input[1]!)!;
        const o = pool(n, s!).slice(2);
        out = [s![0]!, w[0]!, o[0]!, o[1]!];
        macs += out.reduce((a, b) => a * b, 1) * w[1]! * w[2]! * w[3]!;
        convs++;
        break;
      }
      case 'Gemm': {
        const w = shapes.get(n.input[1]!)!;
        assert.equal(int(n, 'transB', 0), 1);
        assert.equal(w[1], s![1], `${n.name}: Gemm inner dims`);
        out = [s![0]!, w[0]!];
        macs += s![0]! * s![1]! * w[0]!;
        break;
      }
      case 'BatchNormalization': stats.add(n.input[3]!); stats.add(n.input[4]!); out = s!; break;
      case 'MaxPool': case 'AveragePool': out = pool(n, s!); break;
      case 'GlobalAveragePool': out = [s![0]!, s![1]!, 1, 1]; break;
      case 'Flatten': out = [s![0]!, s!.slice(1).reduce((a, b) => a * b, 1)]; break;
      case 'Concat': {
        const parts = n.input.map((i) => shapes.get(i)!);
        for (const p of parts) assert.deepEqual([p[0], p[2], p[3]], [s![0], s![2], s![3]], `${n.name}: Concat shapes`);
        out = [s![0]!, parts.reduce((a, p) => a + p[1]!, 0), s![2]!, s![3]!];
        break;
      }
      case 'Add': assert.deepEqual(shapes.get(n.input[1]!), s, `${n.name}: Add shapes`); out = s!; break;
      case 'Relu': case 'Clip': out = s!; break;
      default: throw new Error(`unexpected op ${n.opType}`);
    }
    shapes.set(n.output[0]!, out);
  }
  const params = g.initializer.filter((t) => !stats.has(t.name)).reduce((a, t) => a + t.dims.reduce((x, d) => x * Number(d), 1), 0);
  return { macs, params, convs, out: shapes.get(g.output[0]!.name)! };
}

test('every zoo model has torchvision\'s parameter count exactly and its published multiply-accumulates', () => {
  assert.deepEqual(new Set(zooNames()), new Set(Object.keys(TORCHVISION)));
  for (const name of zooNames()) {
    const ref = TORCHVISION[name]!;
    const g = zooBuilder(name).toProto({ data: false }).graph!;
    const a = analyse(g);
    assert.equal(a.params, ref.params, `${name} params`);
    assert.ok(Math.abs(a.macs / 1e9 - ref.gmacs) <= 0.006, `${name}: ${a.macs / 1e9} GMACs vs torchvision ${ref.gmacs}`);
    if (ref.convs !== undefined) assert.equal(a.convs, ref.convs, `${name} Conv count`);
    assert.deepEqual(a.out, [1, 1000], `${name} output shape`);
    const info = zooInfo(name);
    assert.equal(info.params, a.params, `${name}: zooInfo params`);
    assert.equal(info.macs, a.macs, `${name}: zooInfo MACs`);
    assert.equal(info.nodes, g.node.length, `${name}: zooInfo nodes`);
    assert.equal(g.input[0]!.name, 'input');
    assert.equal(g.output[0]!.name, 'logits');
  }
  // the layer order torchvision's export leaves: Conv → BatchNormalization → Relu
  const r50 = zooBuilder('resnet50').toProto({ data: false }).graph!.node.map((n) => n.opType);
  assert.deepEqual(r50.slice(0, 4), ['Conv', 'BatchNormalization', 'Relu', 'MaxPool']);
  assert.deepEqual(r50.slice(-3), ['GlobalAveragePool', 'Flatten', 'Gemm']);
});

test('with BatchNorm folded, resnet18, googlenet and mobilenet_v2 match the torch exports in ../shared node for node', (t) => {
  for (const name of ['resnet18', 'googlenet', 'mobilenet_v2']) {
    const file = sharedPath(`models/${name}.onnx`);
    if (!file) { t.skip('../shared absent'); return; }
    const ref = fromBinary(ModelProtoSchema, readFileSync(file)).graph!;
    const mine = zooBuilder(name, { batchNorm: 'folded' }).toProto({ data: false }).graph!;
    const key = (n: NodeProto) => {
      const at = n.attribute.map((a) => `${a.name}=${a.type === AT.INTS ? a.ints.join(',') : a.type === AT.INT ? a.i : a.type === AT.FLOAT ? a.f : a.type}`).sort();
      return `${n.opType} ${n.name} ${n.input.length} ${at.join(' ')}`;
    };
    // torch adds Identity nodes for weights it deduplicated; they carry no layer
    const refNodes = ref.node.filter((n) => n.opType !== 'Identity').map(key).sort();
    assert.deepEqual(mine.node.map(key).sort(), refNodes, name);
    // torch stores identical (here: all-zero folded bias) weights once and fans them out through Identity nodes
    const size = new Map(ref.initializer.map((t) => [t.name, t.dims.reduce((x, d) => x * Number(d), 1)]));
    const refElems = [...size.values()].reduce((a, b) => a + b, 0) +
      ref.node.filter((n) => n.opType === 'Identity').reduce((a, n) => a + size.get(n.input[0]!)!, 0);
    const mineElems = mine.initializer.reduce((a, t) => a + t.dims.reduce((x, d) => x * Number(d), 1), 0);
    assert.equal(mineElems, refElems, `${name} weight elements`);
  }
});

async function logits(bytes: Uint8Array, batch: number, seed = 1): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  try {
    const x = new Rng(seed).normals(batch * 3 * 224 * 224);
    return (await s.run({ input: new ort.Tensor('float32', x, [batch, 3, 224, 224]) })).logits!;
  } finally {
    await s.release();
  }
}

function checkLogits(name: string, y: ort.Tensor, batch: number): void {
  assert.deepEqual(y.dims, [batch, 1000], name);
  const d = y.data as Float32Array;
  assert.ok(d.every(Number.isFinite), `${name}: non-finite logits`);
  const mean = d.reduce((a, v) => a + v, 0) / d.length;
  const std = Math.sqrt(d.reduce((a, v) => a + (v - mean) ** 2, 0) / d.length);
  // He-scaled weights: logits of a unit-variance input stay O(1) rather than exploding or collapsing
  assert.ok(std > 0.1 && std < 10, `${name}: logits std ${std}`);
}

test('resnet18, resnet50, mobilenet_v2 and googlenet load and run in onnxruntime with finite logits', async () => {
  for (const name of ['resnet18', 'resnet50', 'googlenet']) checkLogits(name, await logits(zooModel(name), 1), 1);
  // dynamic batch: one model, two images, two different rows
  const y = await logits(zooModel('mobilenet_v2', { batch: 'N' }), 2);
  checkLogits('mobilenet_v2', y, 2);
  const d = y.data as Float32Array;
  assert.notDeepEqual([...d.subarray(0, 1000)], [...d.subarray(1000)]);
});

test('vgg16 (553 MB of weights) runs once', async () => {
  checkLogits('vgg16', await logits(zooModel('vgg16'), 1), 1);
});

test('weights are seeded: the same seed gives the same bytes, another seed other weights', () => {
  const a = zooModel('mobilenet_v2', { seed: 1 });
  const b = zooModel('mobilenet_v2', { seed: 1 });
  const c = zooModel('mobilenet_v2', { seed: 2 });
  assert.ok(Buffer.from(a).equals(Buffer.from(b)));
  assert.equal(a.length, c.length);
  assert.ok(!Buffer.from(a).equals(Buffer.from(c)));
  const m = fromBinary(ModelProtoSchema, a);
  assert.equal(m.opsetImport[0]!.version, 13n);
  assert.equal(m.graph!.input[0]!.type!.value.case, 'tensorType');
});

test('names resolve with aliases; mistakes are usage errors naming the culprit', () => {
  assert.equal(resolveZooName('ResNet-50'), 'resnet50');
  assert.equal(resolveZooName('zoo:mobilenetv2'), 'mobilenet_v2');
  assert.equal(resolveZooName('inception'), 'googlenet');
  assert.equal(resolveZooName('VGG16'), 'vgg16');
  const usage = (re: RegExp) => (e: { code?: string; message: string }) => e.code === 'KERF_ERR_USAGE' && re.test(e.message);
  assert.throws(() => resolveZooName('alexnet'), usage(/'alexnet'.*resnet18/));
  assert.throws(() => zooInfo('resnet18', { opset: 9 }), usage(/opset 9/));
  assert.throws(() => zooInfo('resnet18', { batch: 0 }), usage(/batch 0/));
  assert.throws(() => zooInfo('resnet18', { batchNorm: 'fused' as never }), usage(/fused/));
});

const exec = promisify(execFile);
const KERF = join(ROOT, 'bin', 'kerf.js');

test('kerf zoo list and kerf zoo export (external data, dynamic batch) work from the command line', async () => {
  const list = JSON.parse((await exec(process.execPath, [KERF, 'zoo', 'list', '--json'])).stdout) as { models: { name: string; params: number; macs: number; nodes: number }[] };
  assert.equal(list.models.length, zooNames().length);
  const r50 = list.models.find((m) => m.name === 'resnet50')!;
  assert.equal(r50.params, 25_557_032);
  assert.ok(r50.nodes > 100);
  const text = (await exec(process.execPath, [KERF, 'zoo', 'list'])).stdout;
  assert.match(text, /resnet50\s+25\.56 M\s+4\.09 G\s+175/);

  const dir = mkdtempSync(join(tmpdir(), 'kerf-zoo-'));
  try {
    const out = join(dir, 'm.onnx');
    await exec(process.execPath, [KERF, 'zoo', 'export', 'mobilenet-v2', '-o', out, '--external-data', 'm.bin', '--batch', 'N', '--seed', '3']);
    assert.ok(existsSync(join(dir, 'm.bin')));
    assert.ok(readFileSync(out).length < 200_000, 'weights went to the external file');
    const s = await ort.InferenceSession.create(out, { intraOpNumThreads: 2 });
    const y = (await s.run({ input: new ort.Tensor('float32', new Rng(4).normals(3 * 3 * 224 * 224), [3, 3, 224, 224]) })).logits!;
    await s.release();
    checkLogits('mobilenet_v2 (external data)', y, 3);
    // same seed in memory gives the same logits as the exported files
    const inMem = await logits(zooModel('mobilenet_v2', { batch: 'N', seed: 3 }), 3, 4);
    assert.deepEqual([...(y.data as Float32Array)], [...(inMem.data as Float32Array)]);

    const bad = await exec(process.execPath, [KERF, 'zoo', 'export', 'nosuchnet', '-o', join(dir, 'x.onnx')]).then(() => null, (e: { code: number; stderr: string }) => e);
    assert.ok(bad, 'an unknown model must fail');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^kerf: unknown zoo model 'nosuchnet'/);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
