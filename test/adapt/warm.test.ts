/** Hot-swap warming for the controller (likely splits), per-hop link solving in the monitor, and fewest-chunk compositions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitCostModel, bestFeasible, warmCandidates, probeRanges, LOAD_PROBE_MAX_RANGES, LiveMonitor, type AdaptConditions } from '../../src/adapt/index.js';
import { prepareModel } from '../../src/engine/index.js';
import { ChunkStore } from '../../src/serve/index.js';
import { blockCuts } from '../../src/graph/cuts.js';
import { sharedPath } from '../support/shared.js';
import { rng } from './rng.js';

/** Device slow, edge and cloud fast; tensors shrink along the model (as in a CNN). */
function chain() {
  const n = 20;
  const model = splitCostModel(
    [{ name: 'device', blockS: Array(n).fill(0.02) }, { name: 'edge', blockS: Array(n).fill(0.004) }, { name: 'cloud', blockS: Array(n).fill(0.004) }],
    Array.from({ length: n + 1 }, (_, b) => 2e6 / (b + 1)),
    Array.from({ length: n + 1 }, (_, b) => b > 0 && b < n),
  );
  const base: AdaptConditions = {
    links: [{ bytesPerS: 50e6 / 8, rttS: 0.004 }, { bytesPerS: 100e6 / 8, rttS: 0.01 }],
    tiers: [{ factor: 1, queueS: 0 }, { factor: 1, queueS: 0 }, { factor: 1, queueS: 0 }],
    ratePerS: 0,
  };
  return { model, base };
}

test('warm candidates: distinct, capped, without the split in force, covering a slow link and a loaded edge', () => {
  const { model, base } = chain();
  const here = bestFeasible(model, base).boundaries;
  const c = warmCandidates(model, base, 'load-aware', { exclude: here });
  assert.ok(c.length >= 2 && c.length <= 20, `${c.length} candidates`);
  assert.equal(new Set(c.map((b) => b.join(','))).size, c.length, 'distinct');
  assert.ok(!c.some((b) => b.join(',') === here.join(',')), 'the split in force is not warmed again');
  for (const b of c) assert.ok(b.every((x, i) => i === 0 || x > b[i - 1]!), `every tier runs a block: ${b}`);
  const slow = bestFeasible(model, { ...base, links: [{ ...base.links[0]!, bytesPerS: base.links[0]!.bytesPerS / 4 }, base.links[1]!] }).boundaries;
  const loaded = bestFeasible(model, { ...base, ratePerS: 3, tiers: [base.tiers[0]!, { factor: 16, queueS: 0 }, base.tiers[2]!] }).boundaries;
  assert.notDeepEqual(slow, here, 'the scenario has a different best split at 1/4 of the bandwidth');
  assert.notDeepEqual(loaded, here, 'the scenario has a different best split with the edge loaded 16×');
  const keys = c.map((b) => b.join(','));
  assert.ok(keys.includes(slow.join(',')), `slow-link split ${slow} in ${keys.join(' | ')}`);
  assert.ok(keys.includes(loaded.join(',')), `loaded-edge split ${loaded} in ${keys.join(' | ')}`);
  assert.equal(warmCandidates(model, base, 'load-aware', { exclude: here, max: 2 }).length, 2);
  // Bandwidth-only never sees load, so it warms only what bandwidth alone can make best.
  const bw = warmCandidates(model, base, 'bandwidth', { exclude: here });
  assert.ok(!bw.some((b) => b.join(',') === loaded.join(',')) || keys.indexOf(loaded.join(',')) < 0 || bw.length < c.length, 'bandwidth mode warms a narrower set');
  assert.deepEqual(warmCandidates(model, base, 'load-aware', { exclude: here }), c, 'deterministic');
});

test('monitor: with downstream waits reported, each link is solved from its own share (within 10 %)', () => {
  const { model } = chain();
  const r = rng(7);
  const rates = [2e6, 0.5e6], rtts = [0.004, 0.01];
  const mk = (withD: boolean) => new LiveMonitor(model, { linkPriors: [{ bytesPerS: 6e6, rttS: 0.004 }, { bytesPerS: 12e6, rttS: 0.01 }], outputBytes: 4000, shift: null, linkShift: null });
  const m = mk(true), old = mk(false);
  for (let i = 0; i < 60; i++) {
    const atS = i * 0.3;
    const b = [3 + (i % 5), 10 + 2 * (i % 5)];
    const link = [0, 1].map((j) => rtts[j]! + m.linkBytes(b, j) / rates[j]! * (1 + 0.1 * (r() - 0.5)));
    // The edge is busy: long queue and compute, plus a wait on the cloud it reports as d.edge.
    const edge = { queueS: 0.2 + 0.3 * r(), computeS: 0.1 };
    const cloud = { queueS: 0.001, computeS: 0.02 };
    const downS = link[1]! + cloud.queueS + cloud.computeS;
    const remoteS = link[0]! + edge.queueS + edge.computeS + downS;
    const device = { queueS: 0, computeS: 0.05 };
    m.observe({ atS, boundaries: b, tiers: [device, { ...edge, downS }, cloud], remoteS });
    old.observe({ atS, boundaries: b, tiers: [device, edge, cloud], remoteS });
  }
  const s = m.snapshot(18);
  for (const j of [0, 1]) {
    const err = Math.abs(s.links[j]!.bytesPerS / rates[j]! - 1);
    assert.ok(err < 0.1, `link ${j}: ${s.links[j]!.bytesPerS.toFixed(0)} B/s vs ${rates[j]} (error ${(err * 100).toFixed(1)}%)`);
    assert.equal(s.links[j]!.observed, true);
  }
  // Without d.<name> the second link keeps its prior and is not observed; the first is solved by
  // predicting the second from that prior, so it absorbs the error of the prior.
  const o = old.snapshot(18);
  assert.equal(o.links[1]!.observed, false);
  assert.equal(o.links[1]!.bytesPerS, 12e6);
  assert.ok(Math.abs(o.links[0]!.bytesPerS / rates[0]! - 1) > 0.1, `the old way misreads link 0: ${o.links[0]!.bytesPerS.toFixed(0)}`);
});

const squeeze = sharedPath('models/squeezenet1_1.onnx');

test('chunk store: among compositions that load nothing, the one of the fewest chunks', { skip: !squeeze }, async () => {
  const prep = await prepareModel(squeeze!);
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const [a, m, b] = [ids[3]!, ids[8]!, ids[14]!];
  const store = new ChunkStore(prep, { cacheBytes: Infinity });
  try {
    // The whole a..b (one split), then the pieces a..m and m..b (others).
    for (const [x, y] of [[a, b], [a, m], [m, b]] as const) {
      const r = await store.compose(x, y);
      assert.equal(r.report.loaded, 1, `${x}..${y} loaded as one chunk`);
      await r.segment.close();
    }
    const { segment, report } = await store.compose(a, b);
    assert.deepEqual([report.loaded, report.reused], [0, 1], 'one chunk, nothing loaded');
    assert.deepEqual(segment.parts.map((p) => [p.bounds.start, p.bounds.end]), [[a, b]]);
    await segment.close();
    // Fewest parameters loaded still comes first: a..c loads only b..c, whatever it reuses;
    // asked again, it loads nothing and takes the two-chunk cover.
    const c = ids[20]!;
    const s2 = await store.compose(a, c);
    assert.equal(s2.report.loaded, 1);
    assert.deepEqual(s2.segment.parts.at(-1)!.bounds.start, b);
    await s2.segment.close();
    const s3 = await store.compose(a, c);
    assert.equal(s3.report.loaded, 0);
    assert.deepEqual(s3.segment.parts.map((p) => [p.bounds.start, p.bounds.end]), [[a, b], [b, c]]);
    await s3.segment.close();
  } finally { await store.close(); }
});

test('probe ranges: every range of blocks whose profiled time (with the overhead) is 10–50 ms, cheapest first, as cut ids', () => {
  const n = 8;
  // edge blocks of 4 ms each, 1 ms overhead; cut ids are 10 × the boundary
  const model = splitCostModel(
    [{ name: 'device', blockS: Array(n).fill(0.06) }, { name: 'edge', blockS: Array(n).fill(0.004), overheadS: 0.001 }],
    Array(n + 1).fill(1000), Array.from({ length: n + 1 }, (_, b) => b > 0 && b < n),
  );
  const cutOf = [-1, ...Array.from({ length: n - 1 }, (_, i) => 10 * (i + 1)), -1];
  const r = probeRanges(model, 1, cutOf);
  // 3 blocks (13 ms) … 8 blocks (33 ms): lengths 3..8, n − len + 1 ranges of each
  assert.equal(r.length, [3, 4, 5, 6, 7, 8].reduce((a, len) => a + n - len + 1, 0));
  assert.ok(r.every((x, i) => i === 0 || x.profiledS >= r[i - 1]!.profiledS), 'cheapest first');
  assert.ok(r.every((x) => x.profiledS >= 0.01 && x.profiledS <= 0.05));
  assert.deepEqual(r[0]!.cuts, [null, 30], 'the first 3 blocks: from the inputs to cut 30');
  assert.deepEqual(r.at(-1)!.cuts, [null, null], 'the whole model: inputs to outputs');
  assert.ok(Math.abs(r[0]!.profiledS - 0.013) < 1e-12);
  // a tier whose every block is beyond the band (60 ms) has none
  assert.deepEqual(probeRanges(model, 0, cutOf), []);
});

test('probe ranges: the likely splits\' segments (warmed, served) go first, so the cap never drops what the tier holds loaded', () => {
  const n = 40;
  // 1 ms edge blocks: every range of 10..40 blocks is in the band, 496 of them, over the cap
  const model = splitCostModel(
    [{ name: 'device', blockS: Array(n).fill(0.06) }, { name: 'edge', blockS: Array(n).fill(0.001) }],
    Array(n + 1).fill(1000), Array.from({ length: n + 1 }, (_, b) => b > 0 && b < n),
  );
  const cutOf = [-1, ...Array.from({ length: n - 1 }, (_, i) => 10 * (i + 1)), -1];
  const warmed = [10]; // the edge runs blocks 1..40: cut 10 to the outputs, 39 ms
  const plain = probeRanges(model, 1, cutOf);
  assert.equal(plain.length, LOAD_PROBE_MAX_RANGES);
  assert.ok(!plain.some((x) => x.cuts[0] === 10 && x.cuts[1] === null), 'cheapest first alone: the warmed segment is past the cap');
  const r = probeRanges(model, 1, cutOf, [warmed, [390]]);
  assert.equal(r.length, LOAD_PROBE_MAX_RANGES);
  assert.deepEqual(r[0]!.cuts, [10, null], 'the warmed segment first');
  assert.ok(!r.some((x) => x.cuts[0] === 390), 'the served segment (1 block, 1 ms) is below the band: not probed');
  assert.ok(r.slice(1).every((x, i) => i === 0 || x.profiledS >= r[i]!.profiledS), 'the rest cheapest first');
  assert.deepEqual(r.slice(1), plain.slice(0, LOAD_PROBE_MAX_RANGES - 1), 'the rest as before');
});
