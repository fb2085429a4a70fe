/** prepareModel takes a path, the bytes of an ONNX file or a parsed Model, and the same answer from each; anything else is KERF_ERR_USAGE. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelBuilder } from '../../src/graph/builder.js';
import { parseModel } from '../../src/graph/model.js';
import { prepareModel } from '../../src/engine/prepare.js';

function tiny(): Uint8Array {
  const b = new ModelBuilder({ name: 'tiny' });
  b.input('x', 'float32', [1, 4]);
  b.node('Relu', ['x'], ['r']);
  b.node('Neg', ['r'], ['y']);
  b.output('y', 'float32', [1, 4]);
  return b.toBytes();
}

test('prepareModel: a path, bytes (Uint8Array and Buffer) and a Model give the same cuts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-prepare-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bytes = tiny();
  const file = join(dir, 'tiny.onnx');
  writeFileSync(file, bytes);
  const cuts = (p: Awaited<ReturnType<typeof prepareModel>>): unknown => p.analysis.cuts.map((c) => [c.id, c.tensors]);
  const fromFile = await prepareModel(file);
  for (const p of [await prepareModel(bytes), await prepareModel(Buffer.from(bytes)), await prepareModel(parseModel(bytes))]) {
    assert.deepEqual(cuts(p), cuts(fromFile));
    assert.deepEqual(p.inputShapes, fromFile.inputShapes);
  }
  assert.equal((await prepareModel(bytes, { name: 'renamed' })).model.name, 'renamed');
});

test('prepareModel: bad bytes name the source; other values are refused with KERF_ERR_USAGE', async () => {
  await assert.rejects(prepareModel(new Uint8Array([1, 2, 3])), (e: { code: string; message: string }) => e.code === 'KERF_ERR_ONNX_PARSE' && /model bytes/.test(e.message));
  await assert.rejects(prepareModel(new Uint8Array(0), { name: 'mine' }), (e: { code: string; message: string }) => e.code === 'KERF_ERR_ONNX_PARSE' && /mine: the file is empty/.test(e.message));
  for (const [bad, what] of [[42, 'number'], [null, 'null'], [{ graph: 1 }, 'an Object'], [new ArrayBuffer(4), 'an ArrayBuffer']] as const) {
    await assert.rejects(prepareModel(bad as never), (e: { code: string; message: string }) => e.code === 'KERF_ERR_USAGE' && e.message.includes(`got ${what}`), String(what));
  }
});
