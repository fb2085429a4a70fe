/** prepareModelInThread: the same prepared model as prepareModel (parts serialize byte for byte,
 * same cuts and hash, weights shared not copied), errors with their codes, and the serving
 * thread's loop stays free while the thread works. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelBuilder, Rng } from '../../src/graph/builder.js';
import { prepareModel } from '../../src/engine/prepare.js';
import { prepareModelInThread } from '../../src/engine/prepare-thread.js';
import { blockCuts } from '../../src/graph/cuts.js';
import { serializeModel } from '../../src/graph/slice.js';
import { segmentBounds, segmentPart } from '../../src/serve/segment.js';

/** Convs with attributes, a Constant node and a dynamic batch: fields proto2 leaves at defaults. */
function net(): Uint8Array {
  const b = new ModelBuilder({ opset: 13, name: 'pt' });
  const r = new Rng(7);
  b.input('x', 'float32', ['N', 3, 16, 16]);
  let x = 'x', c = 3;
  for (let i = 0; i < 4; i++) {
    b.initializer(`w${i}`, 'float32', [8, c, 3, 3], r.he([8, c, 3, 3]));
    b.node('Conv', [x, `w${i}`], [`c${i}`], { pads: [1, 1, 1, 1], strides: [1, 1] });
    b.node('Relu', [`c${i}`], [`r${i}`]);
    x = `r${i}`; c = 8;
  }
  b.constant('k', 'float32', [1], Float32Array.of(0.5));
  b.node('Mul', [x, 'k'], ['m']);
  b.node('GlobalAveragePool', ['m'], ['y']);
  b.output('y', 'float32', ['N', 8, 1, 1]);
  return b.toBytes();
}

test('prepareModelInThread gives what prepareModel gives: parts byte for byte, cuts, hash, shared weights', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-prep-thread-'));
  try {
    const f = join(dir, 'pt.onnx');
    writeFileSync(f, net());
    const opts = { inputShapes: { x: [2, 3, 16, 16] } };
    const [a, b] = [await prepareModel(f, opts), await prepareModelInThread(f, opts)];
    assert.equal(b.model.sha256, a.model.sha256);
    assert.deepEqual(b.inputShapes, a.inputShapes);
    assert.deepEqual(b.analysis.cuts, a.analysis.cuts);
    assert.deepEqual([...b.analysis.tensors], [...a.analysis.tensors]);
    const w = (p: typeof a): Uint8Array => p.model.initializers.get('w0')!.rawData;
    assert.ok(w(b).buffer instanceof SharedArrayBuffer, 'the weights stay in shared memory');
    assert.ok(Buffer.from(w(b)).equals(Buffer.from(w(a))));
    // proto2 defaults read through the prototype, as on a message parsed here
    assert.equal(b.model.nodes[0]!.proto.domain, '');
    const ids = blockCuts(a.analysis, 'single').map((x) => x.id);
    const cuts = [ids[1]!, ids[3]!];
    for (const k of [0, 1, 2]) {
      const pa = serializeModel(segmentPart(a, segmentBounds(a, { cuts, blocks: [k, k] })).proto);
      const pb = serializeModel(segmentPart(b, segmentBounds(b, { cuts, blocks: [k, k] })).proto);
      assert.ok(Buffer.from(pa).equals(Buffer.from(pb)), `part ${k} serializes the same`);
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('prepareModelInThread: errors keep their codes and name the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-prep-thread-'));
  try {
    await assert.rejects(prepareModelInThread(join(dir, 'none.onnx')), (e: { code: string; message: string }) => e.code === 'KERF_ERR_FILE' && /none\.onnx/.test(e.message));
    writeFileSync(join(dir, 'junk.onnx'), Buffer.from('not a model at all'));
    await assert.rejects(prepareModelInThread(join(dir, 'junk.onnx')), (e: { code: string; message: string }) => e.code === 'KERF_ERR_ONNX_PARSE' && /junk\.onnx/.test(e.message));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('prepareModel with the tensors an earlier preparation found uses them; with some missing it runs the model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-prep-thread-'));
  try {
    const f = join(dir, 'pt.onnx');
    writeFileSync(f, net());
    const opts = { inputShapes: { x: [2, 3, 16, 16] } };
    const a = await prepareModel(f, opts);
    // Marked so that taking them (not finding them again) shows: batch 2 recorded as 5.
    const marked = new Map([...a.analysis.tensors].map(([n, t]) => [n, { dtype: t.dtype, dims: [5, ...t.dims.slice(1)] }]));
    const b = await prepareModelInThread(f, { ...opts, tensors: marked });
    assert.deepEqual(b.analysis.tensors.get('y')!.dims, [5, 8, 1, 1]);
    const partial = new Map(marked);
    partial.delete('c2');
    const c = await prepareModel(f, { ...opts, tensors: partial });
    assert.deepEqual(c.analysis.tensors.get('y')!.dims, [2, 8, 1, 1]);
    assert.deepEqual(c.analysis.cuts, a.analysis.cuts);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
