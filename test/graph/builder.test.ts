import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AttributeProto_AttributeType as AT, ModelProtoSchema, TensorProto_DataLocation } from 'onnx-buf';
import { ModelBuilder, Rng, attr, fanIn, mulberry32, seedFor, serializeModel, toFloat16Bits } from '../../src/graph/builder.js';

const OPTS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled' };

async function run(bytes: Uint8Array | string, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
  const s = typeof bytes === 'string' ? await ort.InferenceSession.create(bytes, OPTS) : await ort.InferenceSession.create(bytes, OPTS);
  try { return await s.run(feeds); } finally { await s.release(); }
}

const f32 = (data: number[], dims: number[]) => new ort.Tensor('float32', new Float32Array(data), dims);

test('a dynamic-batch MLP runs in onnxruntime with the expected shape and values', async () => {
  const b = new ModelBuilder({ opset: 13, name: 'mlp' });
  b.input('x', 'float32', ['N', 3]);
  b.initializer('w', 'float32', [3, 2], [1, 0, 0, 1, 1, -1]);
  b.initializer('bias', 'float32', [2], new Float32Array([0.5, -0.5]));
  b.node('MatMul', ['x', 'w'], ['xw']);
  b.node('Add', ['xw', 'bias'], ['pre']);
  b.node('Relu', ['pre'], ['y']);
  b.output('y', 'float32', ['N', 2]);
  const r = await run(b.toBytes(), { x: f32([1, 2, 3, -1, -2, -3, 0, 0, 0, 4, 0, 0], [4, 3]) });
  assert.deepEqual(r.y!.dims, [4, 2]);
  // row k: [x0 + x2 + 0.5, x1 - x2 - 0.5] through ReLU
  assert.deepEqual([...(r.y!.data as Float32Array)], [4.5, 0, 0, 0.5, 0.5, 0, 4.5, 0]);
});

test('attribute types are inferred, float-named attributes stay FLOAT, explicit forms win', () => {
  const c = new ModelBuilder();
  c.input('x', 'float32', [1, 4]);
  c.node('Custom', ['x'], ['y'], {
    alpha: 1, axis: 1, ratio: 0.5, k: 2.5, pads: [0, 1], scales: [1, 2], fl: [0.5, 1], s: 'abc', names: ['a', 'b'],
    big: 5n, forced: attr.float(3), forcedInt: attr.int(3), empty: attr.floats([]),
  }, { domain: 'test.domain' });
  const n = c.toProto().graph!.node[0]!;
  const types = Object.fromEntries(n.attribute.map((a) => [a.name, a.type]));
  assert.deepEqual(types, {
    alpha: AT.FLOAT, axis: AT.INT, ratio: AT.FLOAT, k: AT.FLOAT, pads: AT.INTS, scales: AT.FLOATS, fl: AT.FLOATS, s: AT.STRING,
    names: AT.STRINGS, big: AT.INT, forced: AT.FLOAT, forcedInt: AT.INT, empty: AT.FLOATS,
  });
  const byName = new Map(n.attribute.map((a) => [a.name, a]));
  assert.equal(byName.get('axis')!.i, 1n);
  assert.equal(byName.get('alpha')!.f, 1);
  assert.deepEqual(byName.get('pads')!.ints, [0n, 1n]);
  assert.equal(new TextDecoder().decode(byName.get('s')!.s), 'abc');
  assert.equal(n.domain, 'test.domain');
  const d = new ModelBuilder();
  d.node('X', [], ['y'], { bad: attr.int(1.5) });
  assert.throws(() => d.toProto(), (e: { code?: string; message: string }) => e.code === 'KERF_ERR_GRAPH' && /'bad'/.test(e.message));
});

test('Constant nodes, shuffled nodes and several inputs and outputs run in onnxruntime', async () => {
  const b = new ModelBuilder({ opset: 17 });
  b.input('a', 'float32', [2, 2]);
  b.input('b', 'float32', ['batch', 2]);
  b.constant('two', 'float32', [], [2]);
  b.constant('shape', 'int64', [2], [1n, 4n]);
  b.node('Mul', ['a', 'two'], ['a2']);
  b.node('Add', ['a2', 'b'], ['sum']);
  b.node('Reshape', ['sum', 'shape'], ['flat']);
  b.node('Shape', ['b'], ['bshape']);
  b.output('flat', 'float32', [1, 4]);
  b.output('bshape'); // type left for onnxruntime to infer
  b.output('two');
  b.shuffleNodes(7);
  const order = b.toProto().graph!.node.map((n) => n.opType);
  assert.notDeepEqual(order, ['Constant', 'Constant', 'Mul', 'Add', 'Reshape', 'Shape']);
  const r = await run(b.toBytes(), { a: f32([1, 2, 3, 4], [2, 2]), b: f32([10, 20, 30, 40], [2, 2]) });
  assert.deepEqual([...(r.flat!.data as Float32Array)], [12, 24, 36, 48]);
  assert.deepEqual([...(r.bshape!.data as BigInt64Array)], [2n, 2n]);
  assert.equal(r.two!.data[0], 2);
});

test('If and Loop subgraphs run in onnxruntime', async () => {
  const b = new ModelBuilder({ opset: 13 });
  b.input('x', 'float32', [3]);
  b.input('cond', 'bool', []);
  const then = b.subgraph('then');
  then.node('Neg', ['x'], ['t_out']); // reads x from the outer scope
  then.output('t_out', 'float32', [3]);
  const els = b.subgraph('else');
  els.constant('e_out', 'float32', [3], [7, 7, 7]);
  els.output('e_out');
  b.node('If', ['cond'], ['chosen'], { then_branch: then, else_branch: els });
  // Loop: 4 iterations of acc = acc + x
  b.constant('trips', 'int64', [], [4n]);
  b.constant('zero', 'float32', [3], [0, 0, 0]);
  const body = b.subgraph('body');
  body.input('i', 'int64', []);
  body.input('c_in', 'bool', []);
  body.input('acc_in', 'float32', [3]);
  body.node('Identity', ['c_in'], ['c_out']);
  body.node('Add', ['acc_in', 'x'], ['acc_out']);
  body.output('c_out', 'bool', []);
  body.output('acc_out', 'float32', [3]);
  b.node('Loop', ['trips', '', 'zero'], ['looped'], { body });
  b.output('chosen', 'float32', [3]);
  b.output('looped', 'float32', [3]);
  const bytes = b.toBytes();
  const x = f32([1, 2, 3], [3]);
  const yes = await run(bytes, { x, cond: new ort.Tensor('bool', [true], []) });
  assert.deepEqual([...(yes.chosen!.data as Float32Array)], [-1, -2, -3]);
  assert.deepEqual([...(yes.looped!.data as Float32Array)], [4, 8, 12]);
  const no = await run(bytes, { x, cond: new ort.Tensor('bool', [false], []) });
  assert.deepEqual([...(no.chosen!.data as Float32Array)], [7, 7, 7]);
});

test('external data round-trips: same outputs from a model and a weights file side by side', async () => {
  const rng = new Rng(3);
  const b = new ModelBuilder({ opset: 13 });
  b.input('x', 'float32', [1, 64]);
  b.initializer('w1', 'float32', [64, 128], rng.he([128, 64], 1));
  b.initializer('small', 'float32', [128], rng.normals(128, 0.1)); // 512 bytes: stays inline
  b.initializer('w2', 'float32', [128, 10], rng.he([10, 128], 1));
  b.node('MatMul', ['x', 'w1'], ['h']);
  b.node('Add', ['h', 'small'], ['h2']);
  b.node('MatMul', ['h2', 'w2'], ['y']);
  b.output('y', 'float32', [1, 10]);
  const { model, data } = b.toBytesWithExternalData('weights.bin');
  const proto = fromBinary(ModelProtoSchema, model);
  const inits = new Map(proto.graph!.initializer.map((t) => [t.name, t]));
  assert.equal(inits.get('w1')!.dataLocation, TensorProto_DataLocation.EXTERNAL);
  assert.equal(inits.get('w1')!.rawData.length, 0);
  assert.equal(inits.get('small')!.dataLocation, TensorProto_DataLocation.DEFAULT);
  const entries = Object.fromEntries(inits.get('w2')!.externalData.map((e) => [e.key, e.value]));
  assert.equal(entries.location, 'weights.bin');
  assert.equal(Number(entries.offset) % 64, 0);
  assert.equal(Number(entries.length), 128 * 10 * 4);
  assert.ok(model.length < 2000 && data.length >= (64 * 128 + 128 * 10) * 4);

  const dir = mkdtempSync(join(tmpdir(), 'kerf-builder-'));
  try {
    writeFileSync(join(dir, 'm.onnx'), model);
    writeFileSync(join(dir, 'weights.bin'), data);
    const x = new Rng(9).normals(64);
    const ext = await run(join(dir, 'm.onnx'), { x: new ort.Tensor('float32', x, [1, 64]) });
    const inl = await run(b.toBytes(), { x: new ort.Tensor('float32', x, [1, 64]) });
    assert.deepEqual([...(ext.y!.data as Float32Array)], [...(inl.y!.data as Float32Array)]);
    const w2 = new Float32Array(readFileSync(join(dir, 'weights.bin')).buffer.slice(Number(entries.offset), Number(entries.offset) + 8));
    const inline = fromBinary(ModelProtoSchema, b.toBytes()).graph!.initializer.find((t) => t.name === 'w2')!.rawData;
    assert.deepEqual([...w2], [...new Float32Array(inline.slice(0, 8).buffer)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => b.toBytesWithExternalData('../escape.bin'), (e: { code?: string }) => e.code === 'KERF_ERR_FILE');
});

test('every opset from 11 to 21 loads and runs', async () => {
  for (let opset = 11; opset <= 21; opset++) {
    const b = new ModelBuilder({ opset });
    b.input('x', 'float32', ['N', 1, 4, 4]);
    b.initializer('w', 'float32', [2, 1, 3, 3], new Rng(opset).he([2, 1, 3, 3]));
    b.node('Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1] });
    b.node('Relu', ['c'], ['r']);
    b.node('MaxPool', ['r'], ['y'], { kernel_shape: [2, 2], strides: [2, 2] });
    b.output('y', 'float32', ['N', 2, 2, 2]);
    const r = await run(b.toBytes(), { x: new ort.Tensor('float32', new Rng(1).normals(32), [2, 1, 4, 4]) });
    assert.deepEqual(r.y!.dims, [2, 2, 2, 2], `opset ${opset}`);
    assert.equal(fromBinary(ModelProtoSchema, b.toBytes()).opsetImport[0]!.version, BigInt(opset));
  }
});

test('int64, float16, bool and uint8 initializers encode as onnxruntime reads them', async () => {
  const b = new ModelBuilder({ opset: 13 });
  b.initializer('i64', 'int64', [3], [-1n, 2n ** 40n, 3n]);
  b.initializer('h', 'float16', [4], [1.5, -2, 65504, 0.000061035156]);
  b.initializer('flags', 'bool', [3], [true, false, true]);
  b.initializer('u8', 'uint8', [2], [0, 255]);
  b.node('Identity', ['i64'], ['o_i64']);
  b.node('Cast', ['h'], ['o_h'], { to: 1 });
  b.node('Identity', ['flags'], ['o_flags']);
  b.node('Identity', ['u8'], ['o_u8']);
  for (const o of ['o_i64', 'o_h', 'o_flags', 'o_u8']) b.output(o);
  const r = await run(b.toBytes(), {});
  assert.deepEqual([...(r.o_i64!.data as BigInt64Array)], [-1n, 2n ** 40n, 3n]);
  assert.deepEqual([...(r.o_h!.data as Float32Array)], [1.5, -2, 65504, 0.00006103515625]);
  assert.deepEqual([...(r.o_flags!.data as Uint8Array)].map(Boolean), [true, false, true]);
  assert.deepEqual([...(r.o_u8!.data as Uint8Array)], [0, 255]);
  assert.equal(toFloat16Bits(1), 0x3c00);
  assert.equal(toFloat16Bits(-2), 0xc000);
  assert.equal(toFloat16Bits(1e6), 0x7c00); // overflow → +inf
  assert.equal(toFloat16Bits(5.960464477539063e-8), 0x0001); // smallest subnormal
});

test('mistakes name the culprit', () => {
  const b = new ModelBuilder();
  b.input('x', 'float32', [1]);
  assert.throws(() => b.node('Relu', ['x'], ['x']), (e: { code?: string; message: string }) => e.code === 'KERF_ERR_GRAPH' && /'x' produced twice/.test(e.message));
  assert.throws(() => b.initializer('w', 'float32', [2, 2], [1, 2, 3]), (e: { code?: string; message: string }) => e.code === 'KERF_ERR_SHAPE' && /'w'/.test(e.message));
  assert.throws(() => b.input('y', 'float32', [-1]), (e: { code?: string }) => e.code === 'KERF_ERR_SHAPE');
  assert.throws(() => b.initializer('c', 'complex64', [1], [1]), (e: { code?: string }) => e.code === 'KERF_ERR_GRAPH');
  b.node('Relu', ['x'], ['y'], {}, { name: 'r' });
  assert.throws(() => b.node('Relu', ['y'], ['z'], {}, { name: 'r' }), (e: { message: string }) => /'r' used twice/.test(e.message));
});

test('seeded random numbers are reproducible and independent per seed', () => {
  const a = mulberry32(42), b = mulberry32(42), c = mulberry32(43);
  const sa = Array.from({ length: 100 }, a), sb = Array.from({ length: 100 }, b), sc = Array.from({ length: 100 }, c);
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  assert.ok(sa.every((v) => v >= 0 && v < 1));
  assert.notEqual(seedFor(0, 'conv1.weight'), seedFor(0, 'conv2.weight'));
  assert.notEqual(seedFor(0, 'conv1.weight'), seedFor(1, 'conv1.weight'));
  const n = new Rng(5).normals(20000);
  const mean = n.reduce((s, v) => s + v, 0) / n.length;
  const v = n.reduce((s, x) => s + (x - mean) ** 2, 0) / n.length;
  assert.ok(Math.abs(mean) < 0.03 && Math.abs(v - 1) < 0.05, `mean ${mean} var ${v}`);
  assert.equal(fanIn([64, 32, 3, 3]), 288);
});

/** Second moment of the output of a 50-layer Conv(1×1)→ReLU stack with He weights of the given gain. */
async function deepStackMoment(gain: number): Promise<number> {
  // 1×1 kernels: no zero padding, so every output sees its full fan-in and only the init scale matters.
  const C = 64, H = 4, L = 50;
  const b = new ModelBuilder({ opset: 13 });
  let x = b.input('x', 'float32', [1, C, H, H]);
  for (let l = 0; l < L; l++) {
    const w = b.initializer(`w${l}`, 'float32', [C, C, 1, 1], new Rng(seedFor(11, `w${l}`)).he([C, C, 1, 1], gain));
    const [c] = b.node('Conv', [x, w], [`c${l}`], { kernel_shape: [1, 1] });
    [x] = b.node('Relu', [c!], [`r${l}`]);
  }
  b.output(x, 'float32', [1, C, H, H]);
  const input = new Rng(2).normals(C * H * H);
  const r = await run(b.toBytes(), { x: new ort.Tensor('float32', input, [1, C, H, H]) });
  const y = r[x]!.data as Float32Array;
  return y.reduce((s, v) => s + v * v, 0) / y.length;
}

test('He-scaled weights keep activations alive through 50 Conv→ReLU layers (and gain 1 does not)', async () => {
  // Input second moment is 1; the first ReLU halves it and He scaling keeps it there.
  const he = await deepStackMoment(2);
  assert.ok(he > 0.05 && he < 5, `He stack second moment ${he}`);
  const halved = await deepStackMoment(1);
  assert.ok(halved < 1e-9, `gain-1 stack second moment ${halved} should vanish (~2^-50)`);
});

test('the one-copy serialiser writes what the generic protobuf writer writes, and leaves the proto intact', () => {
  const b = new ModelBuilder({ opset: 13 });
  b.input('x', 'float32', [1, 512]);
  b.initializer('big', 'float32', [512, 1024], () => new Rng(1).he([1024, 512], 1)); // 2 MB: takes the fast path
  b.initializer('small', 'int64', [2], [1n, 2n]);
  b.node('MatMul', ['x', 'big'], ['y']);
  b.output('y', 'float32', [1, 1024]);
  b.meta('k', 'v');
  const proto = b.toProto();
  const fast = serializeModel(proto);
  const slow = toBinary(ModelProtoSchema, proto);
  assert.equal(fast.length, slow.length);
  assert.ok(equals(ModelProtoSchema, fromBinary(ModelProtoSchema, fast), fromBinary(ModelProtoSchema, slow)));
  assert.equal(proto.graph!.initializer[0]!.rawData.length, 512 * 1024 * 4);
  assert.ok(Buffer.from(toBinary(ModelProtoSchema, proto)).equals(Buffer.from(slow)), 'proto unchanged');
  // A proto that crossed to another thread (structured clone: unset fields absent, not defaulted).
  const cloned = serializeModel(structuredClone(proto));
  assert.ok(equals(ModelProtoSchema, fromBinary(ModelProtoSchema, cloned), fromBinary(ModelProtoSchema, slow)));
});
