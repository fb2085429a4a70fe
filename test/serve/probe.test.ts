/** The `probe` control operation: a worker runs a range of the model it holds loaded (its
 * segment's, or a cached chunk's) and reports the run's seconds; a probe for a later tier is
 * passed down the chain; nothing is loaded for it, and mistakes name what is wrong. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { Worker } from '../../src/serve/index.js';
import { NextHop } from '../../src/serve/nexthop.js';
import type { ProbeResult } from '../../src/serve/worker.js';
import { sharedPath } from '../support/shared.js';
import { TOKEN, thirds } from './serve-helpers.js';

const path = sharedPath('models/squeezenet1_1.onnx');

test('probe: a worker runs a loaded range and says how long it took; later tiers are reached through it', { skip: !path }, async () => {
  const prep = await prepareModel(path!);
  const [a, b] = thirds(prep);
  const cloud = await Worker.start({ token: TOKEN, model: prep, segment: { cuts: [a, b], blocks: [2, 2] }, name: 'cloud' });
  const edge = await Worker.start({ token: TOKEN, model: prep, segment: { cuts: [a, b], blocks: [1, 1] }, shared: true, next: cloud.address, name: 'edge' });
  const hop = NextHop.open(edge.address, { token: TOKEN, info: 'probe test' });
  const probe = async (body: unknown): Promise<ProbeResult> => JSON.parse(new TextDecoder().decode(await hop.control('probe', JSON.stringify(body), { timeoutMs: 10_000 }))) as ProbeResult;
  try {
    await hop.waitConnected(10_000);
    // The edge holds a..b (its segment, composed of one chunk); the first range it holds is run.
    const r = await probe({ tier: 'edge', ranges: [[null, a], [a, b], [b, null]] });
    assert.equal(r.tier, 'edge');
    assert.deepEqual([r.start, r.end], [a, b]);
    assert.ok(r.seconds! > 0 && r.seconds! < 5, `seconds ${r.seconds}`);
    assert.equal(r.none, undefined);
    // No tier named: this one.
    assert.deepEqual([(await probe({ ranges: [[a, b]] })).tier], ['edge']);
    // The cloud is reached through the edge; it holds b..outputs.
    const c = await probe({ tier: 'cloud', ranges: [[a, b], [b, null]] });
    assert.equal(c.tier, 'cloud');
    assert.deepEqual([c.start, c.end], [b, null]);
    assert.ok(c.seconds! > 0);
    // Nothing loaded matches: nothing runs, nothing is loaded.
    const chunks = edge.store!.list().length;
    const none = await probe({ tier: 'edge', ranges: [[null, a]] });
    assert.equal(none.seconds, undefined);
    assert.match(none.none!, /none of the 1 ranges is loaded on edge/);
    assert.equal(edge.store!.list().length, chunks);
    // A cached chunk no segment uses any more still serves a probe.
    await edge.load({ id: 'early', cuts: [a], blocks: [0, 0], shared: true, next: null });
    await edge.unload('early');
    assert.ok(edge.store!.list().some((x) => x.start === null && x.end === a && x.refs === 0), JSON.stringify(edge.store!.list()));
    const cached = await probe({ tier: 'edge', ranges: [[null, a]] });
    assert.deepEqual([cached.start, cached.end], [null, a]);
    assert.ok(cached.seconds! > 0);
    // Mistakes: a tier past the last one, ranges that are not ranges.
    await assert.rejects(probe({ tier: 'fog', ranges: [[a, b]] }), /no tier 'fog' after cloud/);
    await assert.rejects(probe({ tier: 'edge' }), /ranges/);
    await assert.rejects(probe(null), /body must be/);
    await assert.rejects(probe({ tier: 'edge', ranges: [[1e99, 'x']] }).then((x) => { throw new Error(x.none); }), /none of the 1 ranges/);
    await assert.rejects(probe({ tier: 'edge', ranges: [[a]] }), /is not \[start, end\]/);
  } finally {
    await hop.close();
    await edge.close();
    await cloud.close();
  }
});
