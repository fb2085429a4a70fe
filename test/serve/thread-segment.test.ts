/** ThreadSegment: a segment served from its own thread answers bitwise what the same segment on the serving thread answers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { blockCuts } from '../../src/graph/cuts.js';
import { Segment } from '../../src/serve/segment.js';
import { ThreadSegment, restorablePriority } from '../../src/serve/thread-segment.js';
import type { WireTensor } from '../../src/serve/frames.js';
import { sharedPath } from '../support/shared.js';
import { inputsFor } from './serve-helpers.js';

const path = sharedPath('models/squeezenet1_1.onnx');
const bytesOf = (t: WireTensor): Buffer => { const d = t.data as ArrayBufferView; return Buffer.from(d.buffer, d.byteOffset, d.byteLength); };

test('ThreadSegment: bitwise equal to Segment, warmed up, carries pass through, closes cleanly', { skip: !path }, async () => {
  const prep = await prepareModel(path!);
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const cuts = [ids[4]!, ids[12]!];
  const head = await Segment.create(prep, { cuts, blocks: [0, 0] });
  const main = await Segment.create(prep, { cuts, blocks: [1, 1] });
  const th = await ThreadSegment.create(prep, { cuts, blocks: [1, 1] }, { label: 'mid' });
  try {
    assert.deepEqual([...th.accepts.keys()], [...main.accepts.keys()]);
    assert.deepEqual(th.outputs.map((t) => t.name), main.outputs.map((t) => t.name));
    assert.ok(th.bytes > 0 && th.loadS > 0);
    assert.equal(typeof th.stats.warmS, 'number', `warm-up ran: ${th.stats.warmError ?? ''}`);
    assert.equal(th.stats.niced, false, 'the thread does not stay at nice 19');
    assert.equal(th.stats.lowPriority, restorablePriority() !== null);
    for (const inputs of inputsFor(prep, 3)) {
      const wire = Object.entries(inputs).map(([name, t]) => ({ name, ...t }) as WireTensor);
      const mid = await head.run(head.check(wire));
      // Several requests in flight at once come back to the right callers.
      const [a, b, c] = await Promise.all([main.run(main.check(mid)), th.run(th.check(mid)), th.run(th.check(mid))]);
      assert.deepEqual(b.map((t) => t.name), a.map((t) => t.name));
      a.forEach((t, i) => { assert.equal(bytesOf(b[i]!).compare(bytesOf(t)), 0, t.name); assert.equal(bytesOf(c[i]!).compare(bytesOf(t)), 0, t.name); });
      // The caller's tensors are untouched (the thread got copies).
      assert.ok(mid.every((t) => (t.data as ArrayBufferView).byteLength > 0));
    }
    assert.throws(() => th.check([]), /mid: tensor '.*' is missing/);
  } finally {
    await th.close();
    await main.close();
    await head.close();
  }
  assert.equal(th.closed, true);
  await th.close();
  await assert.rejects(th.run(new Map()), /closed/);
});
