import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelBuilder, Rng } from '../../src/graph/builder.js';
import { parseModel } from '../../src/graph/model.js';
import { loadModel } from '../../src/graph/load.js';
import { analyzeCuts, blockCuts, blocksOf } from '../../src/graph/cuts.js';
import { splitModel } from '../../src/graph/slice.js';
import { prepareModel } from '../../src/engine/prepare.js';
import { verifySplit } from '../../src/engine/verify.js';
import { makeManifest } from '../../src/graph/manifest.js';
import { writeSplit } from '../../src/graph/save.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kerf-cuts-'));

/** x → conv → relu → (a: conv, b: conv) → add(skip) → concat(out, x-derived) : branches, a skip, a Constant. */
function branchy(opts: { opset?: number; batch?: number | string; shuffle?: number } = {}): ModelBuilder {
  const b = new ModelBuilder({ opset: opts.opset ?? 13, name: 'branchy' });
  const N = opts.batch ?? 1;
  const r = new Rng(3);
  b.input('x', 'float32', [N, 3, 8, 8]);
  b.initializer('w0', 'float32', [4, 3, 3, 3], r.he([4, 3, 3, 3]));
  b.initializer('w1', 'float32', [4, 4, 3, 3], r.he([4, 4, 3, 3]));
  b.initializer('w2', 'float32', [4, 4, 1, 1], r.he([4, 4, 1, 1]));
  b.initializer('unused', 'float32', [2], [1, 2]);
  b.constant('scale', 'float32', [], [0.5]);
  b.node('Conv', ['x', 'w0'], ['c0'], { pads: [1, 1, 1, 1] });
  b.node('Relu', ['c0'], ['r0']);
  b.node('Conv', ['r0', 'w1'], ['a'], { pads: [1, 1, 1, 1] });
  b.node('Conv', ['r0', 'w2'], ['bb']);
  b.node('Mul', ['bb', 'scale'], ['bs']);
  b.node('Add', ['a', 'bs'], ['s']);
  b.node('Add', ['s', 'r0'], ['y']);
  b.node('GlobalAveragePool', ['y'], ['p']);
  b.output('p', 'float32', [N, 4, 1, 1]);
  if (opts.shuffle !== undefined) b.shuffleNodes(opts.shuffle);
  return b;
}

function analyzeBuilt(b: ModelBuilder, shapes?: Record<string, number[]>) {
  const model = parseModel(b.toBytes(), { name: 'm', source: 'm.onnx' });
  return prepareModel(model, shapes ? { inputShapes: shapes } : {});
}

test('Constant nodes become initializers, unused initializers are dropped', () => {
  const m = parseModel(branchy().toBytes(), { source: 'b.onnx' });
  assert.ok(m.initializers.has('scale'));
  assert.ok(!m.initializers.has('unused'));
  assert.ok(!m.nodes.some((n) => n.opType === 'Constant'));
});

test('unsorted nodes are sorted topologically', () => {
  const m = parseModel(branchy({ shuffle: 11 }).toBytes(), { source: 'b.onnx' });
  const made = new Set<string>(['x', ...m.initializers.keys()]);
  for (const n of m.nodes) {
    for (const t of n.inputs) assert.ok(!t || made.has(t), `${n.name} reads ${t} before it is made`);
    for (const o of n.outputs) made.add(o);
  }
});

test('cut analysis: crossing tensors, bytes, single-tensor rule, params and FLOPs', async () => {
  const prep = await analyzeBuilt(branchy());
  const { analysis, model } = prep;
  assert.equal(analysis.order.length, 8);
  const names = analysis.order.map((k) => model.nodes[k]!.outputs[0]);
  // After the first Relu only r0 is live: a single-tensor cut of 4×8×8 floats.
  const afterRelu = analysis.cuts[names.indexOf('r0')]!;
  assert.deepEqual(afterRelu.tensors, ['r0']);
  assert.equal(afterRelu.bytes, 4 * 8 * 8 * 4);
  assert.ok(afterRelu.single);
  // Inside the block, r0 stays live for the skip Add: multi-tensor cuts carry it.
  const afterA = analysis.cuts[names.indexOf('a')]!;
  assert.ok(afterA.tensors.includes('r0') && afterA.tensors.length >= 2 && !afterA.single);
  assert.equal(afterA.bytes, afterA.tensors.length * 4 * 8 * 8 * 4);
  // The constant 'scale' never crosses a cut.
  for (const c of analysis.cuts) assert.ok(!c.tensors.includes('scale'));
  // FLOPs: conv0 = 2*(4*8*8)*(3*3*3).
  assert.equal(analysis.cuts[0]!.flopsBefore, 2 * 4 * 64 * 27);
  assert.equal(analysis.totals.flops, 2 * 4 * 64 * 27 + 2 * 4 * 64 * 36 + 2 * 4 * 64 * 4);
  assert.equal(analysis.totals.params, 4 * 27 + 4 * 36 + 16 + 1);
  assert.equal(afterRelu.paramsBefore, 4 * 27);
  assert.equal(afterRelu.paramsAfter, 4 * 36 + 16 + 1);
  // Blocks at single granularity cover the order exactly once.
  const blocks = blocksOf(model, analysis, blockCuts(analysis, 'single').map((c) => c.id));
  assert.equal(blocks.reduce((s, b) => s + b.nodes.length, 0), 8);
  assert.equal(blocks.at(-1)!.outputBytes, 4 * 4);
});

test('every cut of a branchy model chains bitwise equal; carry forwards skip tensors', async () => {
  const prep = await analyzeBuilt(branchy());
  for (const c of prep.analysis.cuts) {
    const r = await verifySplit(prep, [c.id]);
    assert.ok(r.bitwiseEqual, `cut ${c.id}: max abs diff ${r.maxAbsDiff}`);
  }
  const ids = prep.analysis.cuts.map((c) => c.id);
  const r3 = await verifySplit(prep, [ids[1]!, ids[3]!, ids[5]!]);
  assert.ok(r3.bitwiseEqual);
  const split = splitModel(prep.model, prep.analysis, [ids[2]!, ids[4]!]);
  // r0 crosses both cuts; the middle part must read or carry it.
  const mid = split.parts[1]!;
  assert.ok([...mid.inputs, ...mid.carry].some((t) => t.name === 'r0') || mid.outputs.some((t) => t.name === 'r0'));
});

test('several inputs and outputs; a graph output made early travels to the end', async () => {
  const b = new ModelBuilder({ opset: 17, name: 'multi' });
  b.input('x', 'float32', [1, 4]);
  b.input('y', 'float32', [1, 4]);
  b.node('Relu', ['x'], ['rx']);
  b.node('Sigmoid', ['rx'], ['early']);
  b.node('Add', ['rx', 'y'], ['s']);
  b.node('Mul', ['s', 's'], ['m']);
  b.node('Tanh', ['m'], ['late']);
  b.output('early', 'float32', [1, 4]);
  b.output('late', 'float32', [1, 4]);
  const prep = await analyzeBuilt(b);
  const pos = (t: string) => prep.analysis.order.findIndex((k) => prep.model.nodes[k]!.outputs.includes(t));
  const last = prep.analysis.cuts.at(-1)!;
  assert.ok(last.tensors.includes('early'), 'early output crosses later cuts');
  assert.ok(prep.analysis.cuts[0]!.tensors.includes('y') || pos('s') === 0, 'input y is live until consumed');
  for (const c of prep.analysis.cuts) assert.ok((await verifySplit(prep, [c.id])).bitwiseEqual);
  assert.ok((await verifySplit(prep, prep.analysis.cuts.map((c) => c.id))).bitwiseEqual, 'one part per node');
});

test('dynamic batch dim: default batch 1, --input-shape resolves it, parts keep it dynamic', async () => {
  const b = branchy({ batch: 'N' });
  const p1 = await analyzeBuilt(b);
  assert.deepEqual(p1.inputShapes, { x: [1, 3, 8, 8] });
  const p3 = await analyzeBuilt(b, { x: [3, 3, 8, 8] });
  assert.equal(p3.analysis.cuts[1]!.bytes, 3 * p1.analysis.cuts[1]!.bytes);
  assert.ok((await verifySplit(p3, [2, 5])).bitwiseEqual);
  await assert.rejects(analyzeBuilt(b, { x: [3, 3, 8] }), /rank 4/);
  await assert.rejects(analyzeBuilt(b, { nope: [1] }), /'nope', which is not an input/);
});

test('external data files beside the model load and split', async () => {
  const dir = tmp();
  const { model, data } = branchy().toBytesWithExternalData('weights.bin', { threshold: 1 });
  assert.ok(data.length > 500, 'weights went to the external file');
  writeFileSync(join(dir, 'm.onnx'), model);
  writeFileSync(join(dir, 'weights.bin'), data);
  const prep = await prepareModel(join(dir, 'm.onnx'));
  assert.ok((await verifySplit(prep, [1, 4])).bitwiseEqual);
  // Parts are standalone: no external references left.
  const split = splitModel(prep.model, prep.analysis, [1]);
  for (const p of split.parts) for (const t of p.proto.graph!.initializer) assert.equal(t.externalData.length, 0);
  writeFileSync(join(dir, 'weights.bin'), data.subarray(0, 10));
  assert.throws(() => loadModel(join(dir, 'm.onnx')), /wants bytes .* of 'weights.bin'/);
});

test('opsets 11 to 21 all split exactly', async () => {
  for (let opset = 11; opset <= 21; opset++) {
    const prep = await analyzeBuilt(branchy({ opset }));
    const r = await verifySplit(prep, [1, 3]);
    assert.ok(r.bitwiseEqual, `opset ${opset}`);
    const split = splitModel(prep.model, prep.analysis, [1]);
    assert.equal(Number(split.parts[0]!.proto.opsetImport[0]!.version), opset);
  }
});

test('If and Loop: subgraphs stay whole, outer-scope reads count as consumption', async () => {
  const bb = new ModelBuilder({ opset: 13, name: 'ctl' });
  const then = bb.subgraph('then');
  then.node('Add', ['r', 'outer'], ['t_out']);
  then.output('t_out', 'float32', [1, 4]);
  const els = bb.subgraph('else');
  els.node('Sub', ['r', 'outer'], ['e_out']);
  els.output('e_out', 'float32', [1, 4]);
  const body = bb.subgraph('body');
  body.input('i', 'int64', []);
  body.input('c_in', 'bool', []);
  body.input('acc', 'float32', [1, 4]);
  body.node('Add', ['acc', 'outer'], ['acc2']);
  body.node('Identity', ['c_in'], ['c_out']);
  body.output('c_out', 'bool', []);
  body.output('acc2', 'float32', [1, 4]);
  const bytes = (() => {
    bb.input('x', 'float32', [1, 4]);
    bb.input('cond', 'bool', []);
    bb.initializer('trip', 'int64', [], [3n]);
    bb.initializer('keep', 'bool', [], [1]);
    bb.node('Relu', ['x'], ['r']);
    bb.node('Neg', ['x'], ['outer']);
    bb.node('If', ['cond'], ['branch'], { then_branch: then, else_branch: els });
    bb.node('Loop', ['trip', 'keep', 'branch'], ['looped'], { body });
    bb.node('Sigmoid', ['looped'], ['y']);
    bb.output('y', 'float32', [1, 4]);
    return bb.toBytes();
  })();
  const model = parseModel(bytes, { source: 'ctl.onnx' });
  const ifNode = model.nodes.find((n) => n.opType === 'If')!;
  assert.deepEqual(new Set(ifNode.implicitInputs), new Set(['r', 'outer']));
  const prep = await prepareModel(model);
  // 'outer' is read inside If and Loop bodies: it must cross every cut before the Loop.
  const loopPos = prep.analysis.order.findIndex((k) => model.nodes[k]!.opType === 'Loop');
  for (const c of prep.analysis.cuts) {
    if (c.id < loopPos && c.id >= prep.analysis.order.findIndex((k) => model.nodes[k]!.opType === 'Neg')) {
      assert.ok(c.tensors.includes('outer'), `cut ${c.id} carries outer`);
    }
  }
  assert.equal(prep.analysis.order.length, 5, 'subgraph nodes are not in the top-level order');
  for (const c of prep.analysis.cuts) assert.ok((await verifySplit(prep, [c.id])).bitwiseEqual, `cut ${c.id}`);
});

test('shape arithmetic on initializers is recomputed on the consuming side, never shipped', async () => {
  const b = new ModelBuilder({ opset: 13, name: 'reshape' });
  b.input('x', 'float32', [1, 2, 3, 4]);
  b.constant('s1', 'int64', [2], [1n, -1n]);
  b.constant('s2', 'int64', [1], [0n]);
  b.node('Concat', ['s1', 's2'], ['shape3'], { axis: 0 });   // computed from constants only
  b.node('Slice', ['shape3', 's2', 'twoIdx'], ['shape2']);
  b.initializer('twoIdx', 'int64', [1], [2n]);
  b.node('Relu', ['x'], ['r']);
  b.node('Sigmoid', ['r'], ['s']);
  b.node('Reshape', ['s', 'shape2'], ['y']);
  b.output('y', 'float32', [1, 24]);
  const prep = await analyzeBuilt(b);
  assert.equal(prep.analysis.order.length, 3, 'Concat and Slice over constants are constant nodes');
  for (const c of prep.analysis.cuts) {
    assert.ok(c.tensors.every((t) => !t.startsWith('shape')), `cut ${c.id} ships ${c.tensors}`);
    assert.ok((await verifySplit(prep, [c.id])).bitwiseEqual);
  }
  const split = splitModel(prep.model, prep.analysis, [1]);
  assert.ok(split.parts[1]!.proto.graph!.node.some((n) => n.opType === 'Concat'), 'last part recomputes the shape');
  assert.ok(!split.parts[0]!.proto.graph!.node.some((n) => n.opType === 'Concat'), 'first part does not need it');
});

test('bad input: not ONNX, truncated, missing producer, cycle, unknown cut, unwritable dir', async () => {
  assert.throws(() => parseModel(new TextEncoder().encode('hello world, not a model'), { source: 'x.onnx' }), (e: { code: string; message: string }) =>
    e.code === 'KERF_ERR_ONNX_PARSE' && e.message.startsWith('x.onnx:'));
  const good = branchy().toBytes();
  assert.throws(() => parseModel(good.subarray(0, good.length - 7), { source: 't.onnx' }), /t\.onnx: not a valid ONNX model/);
  const miss = new ModelBuilder({ opset: 13, name: 'miss' });
  miss.input('x', 'float32', [1]);
  miss.node('Add', ['x', 'w'], ['y'], {}, { name: 'Add_7' });
  miss.output('y', 'float32', [1]);
  assert.throws(() => parseModel(miss.toBytes(), { source: 'm.onnx' }), /m\.onnx: node 'Add_7' input 'w' has no producer and no initializer/);
  const cyc = new ModelBuilder({ opset: 13, name: 'cyc' });
  cyc.input('x', 'float32', [1]);
  cyc.node('Add', ['x', 'b'], ['a'], {}, { name: 'A' });
  cyc.node('Relu', ['a'], ['b'], {}, { name: 'B' });
  cyc.output('b', 'float32', [1]);
  assert.throws(() => parseModel(cyc.toBytes(), { source: 'c.onnx' }), /cycle/);
  const prep = await analyzeBuilt(branchy());
  assert.throws(() => splitModel(prep.model, prep.analysis, [99]), (e: { code: string; message: string }) => e.code === 'KERF_ERR_CUT' && /99/.test(e.message));
  assert.throws(() => splitModel(prep.model, prep.analysis, [3, 1]), /strictly increasing/);
  const dir = tmp();
  writeFileSync(join(dir, 'afile'), 'x');
  const split = splitModel(prep.model, prep.analysis, [1]);
  const man = makeManifest(prep.model, prep.analysis, split, prep.inputShapes);
  assert.throws(() => writeSplit(join(dir, 'afile', 'out'), split, man), (e: { code: string; message: string }) =>
    e.code === 'KERF_ERR_FILE' && e.message.includes('afile'));
  assert.deepEqual(readdirSync(dir), ['afile'], 'nothing left behind');
  const files = writeSplit(join(dir, 'ok'), split, man);
  assert.equal(files.length, 3);
  const written = JSON.parse(readFileSync(join(dir, 'ok', 'manifest.json'), 'utf8'));
  assert.equal(written.schema, 'kerf.manifest/v1');
  assert.deepEqual(written.parts.map((p: { file: string }) => p.file), ['part-0.onnx', 'part-1.onnx']);
  assert.ok(existsSync(join(dir, 'ok', 'part-1.onnx')));
});

test('order strategies: auto never ships more bytes than file order', async () => {
  const prep = await analyzeBuilt(branchy({ shuffle: 5 }));
  const info = prep.analysis.tensors;
  const sum = (o: 'file' | 'depth' | 'greedy' | 'auto') => analyzeCuts(prep.model, info, { order: o }).cuts.reduce((s, c) => s + c.bytes, 0);
  assert.ok(sum('auto') <= sum('file'));
  assert.ok(sum('auto') <= sum('greedy') && sum('auto') <= sum('depth'));
});
