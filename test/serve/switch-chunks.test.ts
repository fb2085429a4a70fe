/** Hot-swap's chunk sessions: compositions are bitwise the unsplit model, loaded chunks are reused, idle ones evicted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel, randomInputs, type Prepared } from '../../src/engine/index.js';
import { ChunkStore, Segment, type SegmentRunner } from '../../src/serve/index.js';
import { blockCuts } from '../../src/graph/cuts.js';
import type { WireTensor } from '../../src/serve/frames.js';
import { sharedPath } from '../support/shared.js';
import { bytesOf, reference } from './serve-helpers.js';

const path = sharedPath('models/squeezenet1_1.onnx');

function wire(prep: Prepared, seed: number): WireTensor[] {
  const f = randomInputs(prep.model, prep.inputShapes, seed);
  return Object.entries(f).map(([name, t]) => ({ name, dtype: t.dtype, dims: t.dims, data: t.data }) as WireTensor);
}

async function runAll(seg: SegmentRunner, inputs: WireTensor[]): Promise<Map<string, Buffer>> {
  const out = await seg.run(seg.check(inputs));
  return new Map(out.map((t) => [t.name, bytesOf(t)]));
}

test('every single-tensor block as its own session, composed in order, is bitwise the unsplit model', { skip: !path }, async () => {
  const prep = await prepareModel(path!);
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const store = new ChunkStore(prep, { cacheBytes: Infinity });
  try {
    for (let k = 0; k <= ids.length; k++) await (await store.compose(k ? ids[k - 1]! : null, k < ids.length ? ids[k]! : null)).segment.close();
    const { segment, report } = await store.compose(null, null);
    assert.equal(report.loaded, 0, 'the whole range is covered by the blocks already loaded');
    assert.equal(segment.parts.length, ids.length + 1);
    const inputs = wire(prep, 7);
    const ref = await reference(prep, randomInputs(prep.model, prep.inputShapes, 7));
    const got = await runAll(segment, inputs);
    for (const o of prep.model.outputs) assert.ok(got.get(o.name)!.equals(bytesOf(ref[o.name]!)), `output ${o.name} differs`);
    await segment.close();
  } finally { await store.close(); }
});

test('a middle range composed from chunks equals one session over it, reusing what is loaded', { skip: !path }, async () => {
  const prep = await prepareModel(path!);
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const [a, m, b, c] = [ids[3]!, ids[8]!, ids[14]!, ids[20]!];
  const store = new ChunkStore(prep, { cacheBytes: Infinity });
  const one = await Segment.create(prep, { cuts: [a, c], blocks: [1, 1] });
  try {
    const s1 = await store.compose(a, m);
    const s2 = await store.compose(m, b);
    assert.deepEqual([s1.report.loaded, s2.report.loaded], [1, 1]);
    // a..c: a..m and m..b are reused, only b..c is new.
    const s3 = await store.compose(a, c);
    assert.deepEqual([s3.report.loaded, s3.report.reused], [1, 2]);
    assert.deepEqual(s3.segment.parts.map((p) => [p.bounds.start, p.bounds.end]), [[a, m], [m, b], [b, c]]);
    assert.deepEqual([...s3.segment.accepts.keys()].sort(), [...one.accepts.keys()].sort());
    // Feed both the tensors crossing cut a, computed by the model's first part.
    const head = await store.compose(null, a);
    const crossing = await head.segment.run(head.segment.check(wire(prep, 3)));
    const x = await runAll(s3.segment, crossing);
    const y = await runAll(one, crossing);
    assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort());
    for (const [k, buf] of y) assert.ok(x.get(k)!.equals(buf), `tensor ${k} differs`);
    assert.equal(store.list().filter((l) => l.refs > 0).length, 4);
    for (const s of [s1, s2, s3, head]) await s.segment.close();
    assert.ok(store.list().every((l) => l.refs === 0));
  } finally { await one.close(); await store.close(); }
});

test('idle chunks are kept within the cache budget and dropped beyond it, least recently used first', { skip: !path }, async () => {
  const prep = await prepareModel(path!);
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const store = new ChunkStore(prep, { cacheBytes: 0 });
  try {
    const s1 = await store.compose(null, ids[10]!);
    const s2 = await store.compose(ids[10]!, null);
    assert.equal(store.list().length, 2);
    await s1.segment.close();
    // Over a zero budget, the idle chunk goes; the one in use stays.
    assert.deepEqual(store.list().map((l) => [l.start, l.end]), [[ids[10]!, null]]);
    await assert.rejects(s1.segment.run(new Map()), { code: 'KERF_ERR_CLOSED' });
    await s2.segment.close();
    assert.equal(store.list().length, 0);
    assert.equal(store.bytes, 0);
  } finally { await store.close(); }
  const keep = new ChunkStore(prep);
  try {
    const s = await keep.compose(null, ids[10]!);
    await s.segment.close();
    // Within the default budget (3 × the model's parameter bytes) it stays for the next split.
    assert.equal(keep.list().length, 1);
    const again = await keep.compose(null, ids[10]!);
    assert.equal(again.report.loaded, 0);
    await again.segment.close();
    await assert.rejects(keep.compose(ids[10]!, ids[10]!), { code: 'KERF_ERR_CUT' });
  } finally { await keep.close(); }
});
