import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  splitCostModel, splitCostModelFromPrefix, predictSplitLatency, SplitSearch, Decider, LinkEstimator, LoadEstimator, splitCostModelFromProfiles,
  type AdaptConditions, type SplitModel,
} from '../../src/adapt/index.js';
import type { Profile } from '../../src/profile/types.js';
import { normal, rng } from './rng.js';

/** Every non-decreasing tuple of allowed boundaries: the exhaustive reference. */
function bruteForce(m: SplitModel, c: AdaptConditions): number {
  const k = m.tiers.length;
  let best = Infinity;
  const rec = (j: number, lo: number, acc: number[]) => {
    if (j === k - 1) { best = Math.min(best, predictSplitLatency(m, c, acc)); return; }
    for (let b = lo; b <= m.blocks; b++) if (m.allowed[b]) rec(j + 1, b, [...acc, b]);
  };
  rec(0, 0, []);
  return best;
}

function randomCase(r: () => number, tiers: number, n: number): { model: SplitModel; cond: AdaptConditions } {
  const model = splitCostModel(
    Array.from({ length: tiers }, (_, j) => ({ name: `t${j}`, blockS: Array.from({ length: n }, () => r() * 0.05 * (tiers - j)) })),
    Array.from({ length: n + 1 }, () => r() * 2e6),
    Array.from({ length: n + 1 }, () => r() < 0.7),
  );
  const cond: AdaptConditions = {
    links: Array.from({ length: tiers - 1 }, () => ({ bytesPerS: 1e5 + r() * 2e7, rttS: r() * 0.05 })),
    tiers: Array.from({ length: tiers }, () => ({ factor: 0.5 + r() * 4, queueS: r() < 0.5 ? 0 : r() * 0.05 })),
  };
  return { model, cond };
}

test('the linear search equals exhaustive search for 2, 3 and 4 tiers', () => {
  const r = rng(1);
  let cases = 0;
  for (const tiers of [2, 3, 4]) {
    for (let i = 0; i < 150; i++) {
      const n = 1 + Math.floor(r() * 9);
      let c;
      try { c = randomCase(r, tiers, n); } catch { continue; } // nothing allowed
      const got = new SplitSearch(c.model).best(c.cond);
      const want = bruteForce(c.model, c.cond);
      assert.ok(Math.abs(got.latencyS - want) < 1e-12, `tiers ${tiers} n ${n}: ${got.latencyS} vs ${want}`);
      assert.ok(Math.abs(predictSplitLatency(c.model, c.cond, got.boundaries) - got.latencyS) < 1e-12);
      for (const b of got.boundaries) assert.equal(c.model.allowed[b], 1);
      cases++;
    }
  }
  assert.ok(cases > 300);
});

test('predicted latency: compute scaled by load, queueing only on tiers that run blocks, transfer per crossing', () => {
  const m = splitCostModel([{ name: 'edge', blockS: [0.1, 0.2] }, { name: 'cloud', blockS: [0.01, 0.02] }], [1000, 500, 100]);
  const c: AdaptConditions = { links: [{ bytesPerS: 1000, rttS: 0.05 }], tiers: [{ factor: 2, queueS: 0.3 }, { factor: 1, queueS: 0.7 }] };
  assert.ok(Math.abs(predictSplitLatency(m, c, [0]) - (0.05 + 1 + 0.7 + 0.03)) < 1e-12); // all cloud: input crosses
  assert.ok(Math.abs(predictSplitLatency(m, c, [1]) - (0.2 + 0.3 + 0.05 + 0.5 + 0.02 + 0.7)) < 1e-12);
  assert.ok(Math.abs(predictSplitLatency(m, c, [2]) - (0.6 + 0.3)) < 1e-12); // all edge: nothing crosses
  assert.throws(() => predictSplitLatency(m, c, [3]), /boundaries/);
  assert.throws(() => predictSplitLatency(m, { ...c, links: [] }, [1]), /links/);
  assert.throws(() => splitCostModel([{ name: 'edge', blockS: [1] }, { name: 'cloud', blockS: [1, 2] }], [0, 0]), /cloud/);
});

test('cost model from kerf profiles', () => {
  const prof = (tier: 'edge' | 'cloud', s: number[]): Profile => ({
    schema: 'kerf.profile/v1', model: { name: 'm', inputBytes: 600 }, system: { name: tier, tier }, granularity: 'all', source: 'kerf',
    blocks: s.map((x, i) => ({ index: i, firstLayer: i, lastLayer: i, latency: { median: x, p90: x, min: x, spread: 0, runs: 1 }, outputBytes: 100 * (i + 1), paramBytes: 0 })),
  });
  const m = splitCostModelFromProfiles([prof('edge', [0.1, 0.2]), prof('cloud', [0.01, 0.02])]);
  assert.deepEqual([...m.boundaryBytes], [600, 100, 200]);
  assert.deepEqual([...m.prefix[0]!], [0, 0.1, 0.1 + 0.2]);
  assert.deepEqual(m.tiers, ['edge', 'cloud']);
});

// Two tiers where the best cut moves with bandwidth: edge 20 ms per block, cloud 4 ms.
const BYTES = [600e3, 800e3, 400e3, 150e3, 150e3, 300e3, 40e3, 40e3, 200e3, 100e3, 0];
const MODEL = splitCostModel([{ name: 'edge', blockS: Array(10).fill(0.02) }, { name: 'cloud', blockS: Array(10).fill(0.004) }], BYTES);
const RTT = 0.01;
const at = (bytesPerS: number, edge = 1): AdaptConditions => ({ links: [{ bytesPerS, rttS: RTT }], tiers: [{ factor: edge, queueS: 0 }, { factor: 1, queueS: 0 }] });
const bestAt = (bw: number, edge = 1) => new SplitSearch(MODEL).best(at(bw, edge)).boundaries[0]!;

/** A bandwidth where the best cut changes (bisection on log bandwidth). */
function tieBandwidth(): number {
  let lo = 1e5, hi = 1e8;
  assert.notEqual(bestAt(lo), bestAt(hi));
  for (let i = 0; i < 60; i++) {
    const mid = Math.sqrt(lo * hi);
    if (bestAt(mid) === bestAt(lo)) lo = mid; else hi = mid;
  }
  return Math.sqrt(lo * hi);
}

/** Decisions every 0.5 s on a noisy link of rate bw(t); returns the switches after the first decision. */
function replay(d: Decider, bw: (t: number) => number, seconds: number, seed: number, raw = false): { t: number; to: number }[] {
  const r = rng(seed);
  const link = new LinkEstimator({ prior: { bytesPerS: bw(0), rttS: RTT } });
  const load = [new LoadEstimator(), new LoadEstimator()];
  const switches: { t: number; to: number }[] = [];
  for (let t = 0; t < seconds; t += 0.5) {
    const bytes = 100e3 + r() * 400e3;
    const rate = bw(t) * Math.exp(0.25 * normal(r));
    link.addTransfer(bytes, RTT + bytes / rate, t);
    link.addRtt(RTT, t);
    for (const le of load) le.addExec(0.1 * Math.exp(0.2 * normal(r)), 0.1, t);
    const e = link.estimate(t), l0 = load[0]!.estimate(t), l1 = load[1]!.estimate(t);
    const cond: AdaptConditions = {
      links: [raw ? { bytesPerS: rate, rttS: RTT } : { bytesPerS: e.bytesPerS, rttS: e.rttS }],
      tiers: [{ factor: raw ? 1 : l0.factor, queueS: l0.queueS }, { factor: raw ? 1 : l1.factor, queueS: l1.queueS }],
    };
    const dec = d.decide(cond, t);
    assert.ok(dec.reason.length > 0);
    if (dec.switch && dec.current !== null) switches.push({ t, to: dec.chosen[0]! });
  }
  return switches;
}

test('no flapping under noisy measurements near a tie (and the noise is real: no hysteresis flaps)', () => {
  const tie = tieBandwidth();
  for (const mode of ['bandwidth', 'load-aware'] as const) {
    const calm = replay(new Decider(MODEL, { mode }), () => tie, 300, 5);
    assert.ok(calm.length <= 1, `${mode}: ${calm.length} switches in 300 s`);
  }
  const jumpy = replay(new Decider(MODEL, { mode: 'bandwidth', minGain: 0, minDwellS: 0 }), () => tie, 300, 5, true);
  assert.ok(jumpy.length > 20, `unsmoothed, no hysteresis: only ${jumpy.length} switches`);
});

test('switches when bandwidth really changes, to the right cut, soon after the change', () => {
  const tie = tieBandwidth();
  const hi = tie * 4, lo = tie / 4;
  const d = new Decider(MODEL, { mode: 'bandwidth' });
  const sw = replay(d, (t) => (t < 60 ? hi : lo), 120, 9);
  assert.equal(sw.length, 1, JSON.stringify(sw));
  assert.equal(sw[0]!.to, bestAt(lo));
  assert.ok(sw[0]!.t > 60 && sw[0]!.t < 75, `switched at ${sw[0]!.t}`);
  assert.deepEqual(d.current, [bestAt(lo)]);
});

test('load-aware moves work off a loaded edge; bandwidth-only does not; the decision says why', () => {
  const bw = 1e6;
  const edgeLoaded = at(bw, 3);
  const la = new Decider(MODEL, { mode: 'load-aware' }, { boundaries: [bestAt(bw)], atS: 0 });
  const bo = new Decider(MODEL, { mode: 'bandwidth' }, { boundaries: [bestAt(bw)], atS: 0 });
  const dl = la.decide(edgeLoaded, 10), db = bo.decide(edgeLoaded, 10);
  assert.equal(db.switch, false);
  assert.equal(db.reason, 'current placement is the best');
  assert.deepEqual(db.inputs.tiers, [{ factor: 1, queueS: 0 }, { factor: 1, queueS: 0 }]);
  assert.equal(dl.switch, true, dl.reason);
  assert.ok(dl.chosen[0]! < bestAt(bw));
  assert.equal(dl.chosen[0], bestAt(bw, 3));
  assert.ok(dl.gain >= 0.1 && dl.predictedBestS < dl.predictedCurrentS);
  assert.match(dl.reason, /gain \d+\.\d% ≥ 10\.0%/);
  assert.equal(dl.inputs.tiers[0]!.factor, 3);
});

test('hysteresis: minimum dwell, then minimum gain', () => {
  const d = new Decider(MODEL, { mode: 'load-aware', minGain: 0.1, minDwellS: 5 }, { boundaries: [bestAt(1e6)], atS: 0 });
  const loaded = at(1e6, 3);
  const early = d.decide(loaded, 1);
  assert.equal(early.switch, false);
  assert.match(early.reason, /dwell/);
  assert.equal(d.decide(loaded, 6).switch, true);
  // a small predicted gain never switches
  const d2 = new Decider(MODEL, { mode: 'load-aware', minGain: 0.99, minDwellS: 0 }, { boundaries: [bestAt(1e6)], atS: 0 });
  const r = d2.decide(loaded, 100);
  assert.equal(r.switch, false);
  assert.match(r.reason, /< minimum/);
  assert.throws(() => new Decider(MODEL, { mode: 'sometimes' as 'bandwidth' }), /adapt mode/);
});

test('a three-tier chain decides device, edge and cloud boundaries', () => {
  const m = splitCostModelFromPrefix(['device', 'edge', 'cloud'], [[0, 1, 2, 3], [0, 0.1, 0.2, 0.3], [0, 0.01, 0.02, 0.03]], [1e6, 1e3, 1e3, 0]);
  const fast: AdaptConditions = { links: [{ bytesPerS: 1e9, rttS: 0 }, { bytesPerS: 1e9, rttS: 0 }], tiers: [{ factor: 1, queueS: 0 }, { factor: 1, queueS: 0 }, { factor: 1, queueS: 0 }] };
  assert.deepEqual(new SplitSearch(m).best(fast).boundaries, [0, 0]);
  const slowUplink: AdaptConditions = { ...fast, links: [{ bytesPerS: 1e5, rttS: 0 }, { bytesPerS: 1e9, rttS: 0 }] };
  assert.deepEqual(new SplitSearch(m).best(slowUplink).boundaries, [1, 1]);
  const cloudFar: AdaptConditions = { ...fast, links: [{ bytesPerS: 1e5, rttS: 0 }, { bytesPerS: 1e9, rttS: 5 }] };
  assert.deepEqual(new SplitSearch(m).best(cloudFar).boundaries, [1, 3]);
});
