/** A switch with `reroute`: requests in flight on the old split start over on the new one, and
 * every answer is still the unsplit model's, bitwise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { Gateway, Worker } from '../../src/serve/index.js';
import { blockCuts } from '../../src/graph/cuts.js';
import { sharedPath } from '../support/shared.js';
import { TOKEN, bytesOf, inferBinary, inputsFor, reference } from './serve-helpers.js';

const path = sharedPath('models/squeezenet1_1.onnx');

test('reroute: a switch moves the requests still in flight to the new split; none lost, all exact', { skip: !path }, async () => {
  const prep = await prepareModel(path!);
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  // The gateway runs most of the model (its requests queue for its one compute thread), then
  // moves to a split where it runs little.
  const late = [ids[ids.length - 2]!], early = [ids[1]!];
  const edge = await Worker.start({ token: TOKEN, model: prep, segment: { cuts: late, blocks: [1, 1] }, name: 'edge' });
  const g = await Gateway.start({ model: prep, pipeline: { cuts: late, next: edge.address, token: TOKEN }, switchStrategy: 'hot-swap' });
  try {
    await g.waitReady(10_000);
    const inputs = inputsFor(prep, 4);
    const want = await Promise.all(inputs.map((x) => reference(prep, x)));
    // Warm the new split's chunks, so the switch itself is quick and finds requests still queued.
    await g.switcher.warm([early]);
    const n = 48;
    const pending = Array.from({ length: n }, (_, i) => inferBinary(g.url, g.name, inputs[i % 4]!));
    await new Promise((r) => setTimeout(r, 30));
    const rep = await g.switcher.partition({ cuts: early, reroute: true });
    const got = await Promise.all(pending);
    got.forEach((r, i) => {
      assert.equal(r.status, 200, `request ${i}: ${r.code} ${r.error}`);
      for (const [name, t] of Object.entries(want[i % 4]!)) assert.equal(r.outputs[name]!.compare(bytesOf(t)), 0, `request ${i} output ${name}`);
    });
    assert.ok(rep.rerouted !== undefined && rep.rerouted >= 1, `rerouted ${rep.rerouted} of ${n} (the switch came after all of them finished?)`);
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`kerf_gateway_rerouted_total ${rep.rerouted}\\b`));
    // Without reroute nothing moves, and the report says nothing of it.
    const back = await g.switcher.partition({ cuts: late });
    assert.equal(back.rerouted, undefined);
  } finally {
    await g.close();
    await edge.close();
  }
});
