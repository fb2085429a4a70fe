/** The rollout's way: beside the old version where every host has room for its new parts, else stage by stage. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { besideEstimate, chooseRolloutWay, MEMORY_MARGIN, THREAD_OVERHEAD_BYTES, type TierMemory } from '../../src/serve/rollout-memory.js';
import type { Analysis } from '../../src/graph/cuts.js';

const MB = 1e6;
const tier = (t: string, host: string, rss: number, beside: number, limit: number | null = null, available: number | null = null): TierMemory =>
  ({ tier: t, host, rssBytes: rss * MB, besideBytes: beside * MB, limitBytes: limit === null ? null : limit * MB, availableBytes: available === null ? null : available * MB });

test('beside when every host has room; the reason says how full each declared host gets', () => {
  const w = chooseRolloutWay([tier('gateway', 'gw', 200, 100, 1000), tier('edge', 'a', 300, 150, 512, 4000), tier('cloud', 'b', 300, 150)]);
  assert.equal(w.way, 'beside');
  assert.equal(w.chosen, 'memory');
  assert.match(w.reason, /fit side by side.*a 450 MB of 512 MB/);
  assert.deepEqual(w.hosts.map((h) => h.fits), [true, true, true]);
});

test('stage by stage when a host would pass what it offers, or its machine has not the memory; the reason names it', () => {
  const over = chooseRolloutWay([tier('gateway', 'gw', 200, 100, 1000), tier('edge', 'a', 400, 150, 512)]);
  assert.equal(over.way, 'stage-by-stage');
  assert.match(over.reason, /a: 400 MB in use \+ 150 MB for the new version > 512 MB it offers/);
  assert.deepEqual(over.hosts.map((h) => [h.host, h.fits]), [['gw', true], ['a', false]]);
  const full = chooseRolloutWay([tier('edge', 'a', 100, 300, null, 250)]);
  assert.equal(full.way, 'stage-by-stage');
  assert.match(full.reason, /a: 300 MB for the new version > 250 MB available/);
});

test('tiers on one host share it: each fits alone, together they do not', () => {
  const alone = chooseRolloutWay([tier('edge', 'a', 200, 100, 512)]);
  assert.equal(alone.way, 'beside');
  const together = chooseRolloutWay([tier('edge', 'a', 200, 100, 512), tier('cloud', 'a', 200, 100, 512)]);
  assert.equal(together.way, 'stage-by-stage');
  assert.deepEqual(together.hosts[0]!.tiers, ['edge', 'cloud']);
  assert.equal(together.hosts[0]!.usedBytes, 400 * MB);
});

test('asked for overrides memory (and says so); nothing known is assumed to fit', () => {
  const tight = [tier('edge', 'a', 400, 150, 512)];
  assert.equal(chooseRolloutWay(tight, 'beside').way, 'beside');
  assert.match(chooseRolloutWay(tight, 'beside').reason, /as asked \(though a:/);
  assert.equal(chooseRolloutWay([tier('edge', 'a', 1, 1)], 'stage-by-stage').chosen, 'asked');
  assert.equal(chooseRolloutWay([]).way, 'beside');
});

test('besideEstimate: the placement memory model on the part\'s share of the weights, plus the thread and the prepared file', () => {
  // 3 cuts over a model of 1000 params (4000 bytes): cut 1 after 100 params, cut 2 after 600.
  const cut = (id: number, before: number, bytes: number) => ({ id, after: `n${id}`, tensors: ['t'], bytes, single: true, paramsBefore: before, paramsAfter: 1000 - before, flopsBefore: 0, flopsAfter: 0 });
  const a = {
    order: [], orderStrategy: 'file', nodeFlops: [], tensors: new Map(),
    cuts: [cut(1, 100, 5000), cut(2, 600, 9000), cut(3, 900, 100)],
    totals: { nodes: 4, params: 1000, paramBytes: 4000, flops: 0, inputBytes: 3000, outputBytes: 40 },
  } as unknown as Analysis;
  const est = (w: number, act: number, file = 0): number => Math.ceil(MEMORY_MARGIN * (w + 2 * act) + THREAD_OVERHEAD_BYTES + file);
  assert.equal(besideEstimate(a, null, 1, 1e6, false), est(400, 5000));
  assert.equal(besideEstimate(a, 1, 2, 1e6, false), est(2000, 9000));
  assert.equal(besideEstimate(a, 2, null, 1e6, true), est(1600, 9000, 1e6));
  assert.equal(besideEstimate(a, null, null, 0, false), est(4000, 9000));
});
