/** 2- and 3-tier pipelines on loopback answer bitwise what the unsplit model answers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel, type Prepared } from '../../src/engine/index.js';
import { Gateway, Worker } from '../../src/serve/index.js';
import { ocrModel, sharedPath } from '../support/shared.js';
import { TOKEN, bytesOf, httpRequest, inferBinary, inputsFor, reference, thirds } from './serve-helpers.js';

/** Start workers for parts 1.. of `cuts` (last first) and a gateway running part 0. */
async function pipeline(prep: Prepared, cuts: number[]): Promise<{ g: Gateway; close(): Promise<void> }> {
  const workers: Worker[] = [];
  let next = null as null | { host: string; port: number };
  for (let k = cuts.length; k >= 1; k--) {
    const w = await Worker.start({ token: TOKEN, model: prep, segment: { cuts, blocks: [k, k] }, name: `t${k}`, next });
    workers.push(w);
    next = w.address;
  }
  const g = await Gateway.start({ model: prep, pipeline: { cuts, next, token: TOKEN } });
  await g.waitReady(10_000);
  return { g, close: async () => { await g.close(); for (const w of workers) await w.close(); } };
}

async function check(file: string, inputShapes?: Record<string, number[]>): Promise<void> {
  const prep = await prepareModel(file, inputShapes ? { inputShapes } : {});
  const [a, b] = thirds(prep);
  const [feeds] = inputsFor(prep, 1);
  const ref = await reference(prep, feeds!);
  for (const cuts of [[a], [a, b]]) {
    const p = await pipeline(prep, cuts);
    try {
      const r = await inferBinary(p.g.url, p.g.name, feeds!);
      assert.equal(r.status, 200, r.error);
      for (const o of prep.model.outputs) {
        assert.ok(bytesOf(ref[o.name]!).equals(r.outputs[o.name]!), `${prep.model.name} cuts ${cuts}: output '${o.name}' differs from the unsplit model`);
      }
      // The same through JSON tensors: float32 survives the round trip exactly.
      const x = prep.model.inputs.map((i) => ({ name: i.name, shape: feeds![i.name]!.dims, datatype: 'FP32', data: Array.from(feeds![i.name]!.data as Float32Array) }));
      const j = await httpRequest(`${p.g.url}/v2/models/${p.g.name}/infer`, 'POST', JSON.stringify({ inputs: x }));
      assert.equal(j.status, 200, j.body.toString());
      const doc = JSON.parse(j.body.toString()) as { outputs: { name: string; data: number[] }[] };
      for (const o of doc.outputs) assert.ok(bytesOf({ data: Float32Array.from(o.data) }).equals(bytesOf(ref[o.name]!)), `${o.name} via JSON differs`);
    } finally {
      await p.close();
    }
  }
}

test('PaddleOCR det (1x3x320x320): 2 and 3 tiers bitwise equal to the unsplit model', async () => {
  await check(ocrModel('det'), { x: [1, 3, 320, 320] });
});

test('PaddleOCR cls: 2 and 3 tiers bitwise equal', async () => {
  await check(ocrModel('cls'), { x: [1, 3, 48, 192] });
});

for (const name of ['resnet18', 'googlenet']) {
  test(`${name}: 2 and 3 tiers bitwise equal to the unsplit model`, async (t) => {
    const file = sharedPath(`models/${name}.onnx`);
    if (!file) { t.skip(`../shared/models/${name}.onnx absent`); return; }
    await check(file);
  });
}
