/** Parts with large weights are serialized on a low-priority helper thread: same bytes as on the main thread. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { serializeModel } from '../../src/graph/slice.js';
import { OFF_THREAD_BYTES, segmentBounds, segmentPart, serializePart } from '../../src/serve/segment.js';
import { sharedPath } from '../support/shared.js';

const path = sharedPath('models/resnet18.onnx');

test('serializePart: off-thread bytes equal serializeModel, for large and small parts, and the model is left untouched', { skip: !path }, async () => {
  const prep = await prepareModel(path!);
  const weights = (p: ReturnType<typeof segmentPart>): number => (p.proto.graph?.initializer ?? []).reduce((a, t) => a + (t.rawData?.byteLength ?? 0), 0);
  const big = segmentPart(prep, segmentBounds(prep, { cuts: [17, 34], blocks: [2, 2] }));
  const small = segmentPart(prep, segmentBounds(prep, { cuts: [17, 34], blocks: [0, 0] }));
  assert.ok(weights(big) >= OFF_THREAD_BYTES, 'the large part takes the helper thread');
  assert.ok(weights(small) < OFF_THREAD_BYTES, 'the small part stays on the main thread');
  const before = big.proto.graph!.initializer.map((t) => t.rawData);
  // two at once: replies are matched to their requests
  const [a, b] = await Promise.all([serializePart(big), serializePart(small)]);
  assert.deepEqual(Buffer.from(a!), Buffer.from(serializeModel(big.proto)));
  assert.deepEqual(Buffer.from(b!), Buffer.from(serializeModel(small.proto)));
  // the part's own weights (views of the model) were copied, not moved away
  big.proto.graph!.initializer.forEach((t, i) => assert.equal(t.rawData, before[i]));
  assert.ok(before.every((d) => d === undefined || d.byteLength > 0 || d.length === 0));
});
