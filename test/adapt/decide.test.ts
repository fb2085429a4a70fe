import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  splitCostModel, splitCostModelFromPrefix, predictSplitLatency, sojourn, RHO_MAX, SATURATED_SLOPE, SplitSearch, Decider, LinkEstimator, LoadEstimator, ArrivalRate, splitCostModelFromProfiles,
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

test('predicted latency: compute scaled by load, transfer per crossing; observed queue is not added', () => {
  const m = splitCostModel([{ name: 'edge', blockS: [0.1, 0.2] }, { name: 'cloud', blockS: [0.01, 0.02] }], [1000, 500, 100]);
  // queueS belongs to the placement in force: it must not change any prediction
  const c: AdaptConditions = { links: [{ bytesPerS: 1000, rttS: 0.05 }], tiers: [{ factor: 2, queueS: 0.3 }, { factor: 1, queueS: 0.7 }] };
  assert.ok(Math.abs(predictSplitLatency(m, c, [0]) - (0.05 + 1 + 0.03)) < 1e-12); // all cloud: input crosses
  assert.ok(Math.abs(predictSplitLatency(m, c, [1]) - (0.2 + 0.05 + 0.5 + 0.02)) < 1e-12);
  assert.ok(Math.abs(predictSplitLatency(m, c, [2]) - 0.6) < 1e-12); // all edge: nothing crosses
  assert.throws(() => predictSplitLatency(m, c, [3]), /boundaries/);
  assert.throws(() => predictSplitLatency(m, { ...c, links: [] }, [1]), /links/);
  assert.throws(() => predictSplitLatency(m, { ...c, ratePerS: -1 }, [1]), /rate/);
  assert.throws(() => splitCostModel([{ name: 'edge', blockS: [1] }, { name: 'cloud', blockS: [1, 2] }], [0, 0]), /cloud/);
});

test('queueing: each server (tier segment, link transfer) costs S/(1 − λS); saturated is finite, convex and steep', () => {
  const m = splitCostModel([{ name: 'edge', blockS: [0.1, 0.2] }, { name: 'cloud', blockS: [0.01, 0.02] }], [1000, 500, 100]);
  const c: AdaptConditions = { links: [{ bytesPerS: 1000, rttS: 0.05 }], tiers: [{ factor: 2 }, { factor: 1 }], ratePerS: 1 };
  const q = (s: number) => s / (1 - s);
  assert.ok(Math.abs(predictSplitLatency(m, c, [1]) - (q(0.2) + 0.05 + q(0.5) + q(0.02))) < 1e-12);
  assert.equal(sojourn(0.3, 0), 0.3);
  assert.ok(Math.abs(sojourn(0.5, 1) - 1) < 1e-12);
  // beyond RHO_MAX: continuous, increasing, convex, and far above any unsaturated sojourn
  const lam = 2, s0 = RHO_MAX / lam;
  assert.ok(Math.abs(sojourn(s0 + 1e-9, lam) - sojourn(s0, lam)) < 1e-5);
  const a = sojourn(0.6, lam), b = sojourn(0.8, lam), d = sojourn(1.0, lam);
  assert.ok(Number.isFinite(d) && a < b && b < d && d - b >= b - a - 1e-9);
  assert.ok(sojourn(0.5, lam) > 30 * 0.5, `saturated server (ρ = 1): ${sojourn(0.5, lam)}`);
});

test('with a request rate the search still equals exhaustive search (2, 3 and 4 tiers)', () => {
  const r = rng(11);
  let cases = 0;
  for (const tiers of [2, 3, 4]) {
    for (let i = 0; i < 150; i++) {
      const n = 1 + Math.floor(r() * 12);
      let c;
      try { c = randomCase(r, tiers, n); } catch { continue; }
      const cond = { ...c.cond, ratePerS: r() * 8 };
      const got = new SplitSearch(c.model).best(cond);
      const want = bruteForce(c.model, cond);
      assert.ok(Math.abs(got.latencyS - want) <= 1e-9 * Math.max(1, want), `tiers ${tiers} n ${n}: ${got.latencyS} vs ${want}`);
      assert.ok(Math.abs(predictSplitLatency(c.model, cond, got.boundaries) - got.latencyS) <= 1e-9 * Math.max(1, want));
      cases++;
    }
  }
  assert.ok(cases > 300);
});

test('with per-tier overheads and measured variability (Kingman) the search still equals exhaustive search', () => {
  const r = rng(23);
  let cases = 0;
  for (const tiers of [2, 3, 4]) {
    for (let i = 0; i < 150; i++) {
      const n = 1 + Math.floor(r() * 12);
      let model: SplitModel;
      try {
        model = splitCostModel(
          Array.from({ length: tiers }, (_, j) => ({ name: `t${j}`, blockS: Array.from({ length: n }, () => r() * 0.05 * (tiers - j)), overheadS: r() < 0.3 ? 0 : r() * 0.01 })),
          Array.from({ length: n + 1 }, () => r() * 2e6), Array.from({ length: n + 1 }, () => r() < 0.7));
      } catch { continue; }
      const cond: AdaptConditions = {
        links: Array.from({ length: tiers - 1 }, () => ({ bytesPerS: 1e5 + r() * 2e7, rttS: r() * 0.05, serviceScv: r() * 2 })),
        tiers: Array.from({ length: tiers }, () => ({ factor: 0.5 + r() * 4, serviceScv: r() * 2, ...(r() < 0.5 ? { fixedS: r() * 0.02 } : {}) })),
        ...(r() < 0.8 ? { ratePerS: r() * 8, arrivalScv: r() * 2 } : {}),
      };
      const got = new SplitSearch(model).best(cond);
      const want = bruteForce(model, cond);
      assert.ok(Math.abs(got.latencyS - want) <= 1e-9 * Math.max(1, want), `tiers ${tiers} n ${n}: ${got.latencyS} vs ${want}`);
      assert.ok(Math.abs(predictSplitLatency(model, cond, got.boundaries) - got.latencyS) <= 1e-9 * Math.max(1, want));
      cases++;
    }
  }
  assert.ok(cases > 300);
});

test('Kingman: c = 1 is M/M/1, periodic arrivals and steady service queue little until saturation, which stays steep', () => {
  for (const [s, lam] of [[0.1, 3], [0.25, 3], [0.2, 1]] as const) {
    assert.ok(Math.abs(sojourn(s, lam, 1) - s / (1 - s * lam)) < 1e-12);
    // c = 0.05 (a camera at a fixed rate, steady compute): a fraction of M/M/1's wait
    const w = sojourn(s, lam, 0.05) - s, wMM1 = s / (1 - s * lam) - s;
    assert.ok(Math.abs(w - 0.05 * wMM1) < 1e-12);
  }
  // Beyond RHO_MAX: continuous, convex, and at least M/M/1's slope whatever c is.
  for (const c of [0, 0.05, 1, 3]) {
    const lam = 3, s0 = RHO_MAX / lam;
    assert.ok(Math.abs(sojourn(s0 + 1e-9, lam, c) - sojourn(s0, lam, c)) < 1e-5, `c ${c}: continuous`);
    const slope = (sojourn(s0 + 0.02, lam, c) - sojourn(s0 + 0.01, lam, c)) / 0.01;
    assert.ok(slope >= SATURATED_SLOPE - 1e-6, `c ${c}: slope ${slope}`);
    const a = sojourn(s0 - 0.01, lam, c), b = sojourn(s0, lam, c), d = sojourn(s0 + 0.01, lam, c);
    assert.ok(d - b >= b - a - 1e-12, `c ${c}: convex at the joint`);
  }
  // Each tier's and link's own service variability, with the arrivals' (predicted per server).
  const m = splitCostModel([{ name: 'edge', blockS: [0.1, 0.2], overheadS: 0.01 }, { name: 'cloud', blockS: [0.01, 0.02] }], [1000, 500, 100]);
  const c: AdaptConditions = { links: [{ bytesPerS: 1000, rttS: 0.05, serviceScv: 0 }], tiers: [{ factor: 2, serviceScv: 0.2 }, { factor: 1, serviceScv: 0 }], ratePerS: 1, arrivalScv: 0 };
  const want = sojourn(2 * 0.11, 1, 0.1) + 0.05 + sojourn(0.5, 1, 0) + sojourn(0.02, 1, 0);
  assert.ok(Math.abs(predictSplitLatency(m, c, [1]) - want) < 1e-12);
  // The overhead is charged to every tier, also one running no block (each tier handles every request).
  assert.ok(Math.abs(predictSplitLatency(m, { ...c, ratePerS: 0 }, [2]) - (2 * (0.3 + 0.01) + 0)) < 1e-12);
  assert.ok(Math.abs(predictSplitLatency(m, { ...c, ratePerS: 0 }, [0]) - (2 * 0.01 + 0.05 + 1 + 0.03)) < 1e-12);
  assert.throws(() => splitCostModel([{ name: 'edge', blockS: [1], overheadS: -1 }, { name: 'cloud', blockS: [1] }], [0, 0]), /edge.*overhead/);
  // A measured fixed time per request (a gateway's HTTP handling) adds to the tier's service, unscaled by its factor.
  const withFixed: AdaptConditions = { ...c, tiers: [{ factor: 2, serviceScv: 0.2, fixedS: 0.03 }, { factor: 1, serviceScv: 0 }] };
  assert.ok(Math.abs(predictSplitLatency(m, withFixed, [1]) - (sojourn(2 * 0.11 + 0.03, 1, 0.1) + 0.05 + sojourn(0.5, 1, 0) + sojourn(0.02, 1, 0))) < 1e-12);
  assert.throws(() => predictSplitLatency(m, { ...c, tiers: [{ factor: 0 }, { factor: 1 }] }, [1]), /load factor/);
  assert.throws(() => predictSplitLatency(m, { ...c, tiers: [{ factor: 1, fixedS: -1 }, { factor: 1 }] }, [1]), /fixed time/);
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

// The live scenario in small: device (slow) → edge → cloud. Boundaries [b1, b2].
const CHAIN = splitCostModel(
  [
    { name: 'device', blockS: Array(8).fill(0.04) },
    { name: 'edge', blockS: Array(8).fill(0.01) },
    { name: 'cloud', blockS: Array(8).fill(0.01) },
  ],
  [600e3, 400e3, 100e3, 100e3, 50e3, 50e3, 20e3, 20e3, 0],
);
const chain = (edgeFactor: number, rate: number, queueS = 0): AdaptConditions => ({
  links: [{ bytesPerS: 6.25e6, rttS: 0.004 }, { bytesPerS: 12.5e6, rttS: 0.1 }],
  tiers: [{ factor: 1, queueS: 0 }, { factor: edgeFactor, queueS }, { factor: 1, queueS: 0 }],
  ratePerS: rate,
});

test('a saturated edge is avoided: its work shrinks until it is far from saturation', () => {
  const s = new SplitSearch(CHAIN);
  const idle = s.best(chain(1, 3)).boundaries;
  const edgeWork = (b: number[], f: number) => f * (CHAIN.prefix[1]![b[1]!]! - CHAIN.prefix[1]![b[0]!]!);
  // loaded ×8: running the idle placement's edge part would saturate the edge at 3 req/s
  assert.ok(3 * edgeWork(idle, 8) >= 1, `idle placement ${idle} would not saturate: ${edgeWork(idle, 8)}`);
  const loaded = s.best(chain(8, 3));
  assert.ok(3 * edgeWork(loaded.boundaries, 8) < 0.5, `loaded: ${loaded.boundaries}, edge ρ ${3 * edgeWork(loaded.boundaries, 8)}`);
  assert.ok(loaded.latencyS < predictSplitLatency(CHAIN, chain(8, 3), idle) / 2);
  // the observed queue of the placement in force changes nothing
  assert.deepEqual(s.best(chain(8, 3, 5)).boundaries, loaded.boundaries);
  // the decider switches there in load-aware mode, not in bandwidth mode
  const la = new Decider(CHAIN, { mode: 'load-aware' }, { boundaries: idle, atS: 0 }).decide(chain(8, 3), 10);
  const bo = new Decider(CHAIN, { mode: 'bandwidth' }, { boundaries: idle, atS: 0 }).decide(chain(8, 3), 10);
  assert.equal(la.switch, true, la.reason);
  assert.deepEqual(la.chosen, loaded.boundaries);
  assert.equal(bo.switch, false, bo.reason);
  assert.equal(bo.inputs.ratePerS, 0);
});

test('no flapping with queueing under noisy load and Poisson arrivals near a tie (live settings)', () => {
  // an edge factor where the best placement changes at 3 req/s
  const s = new SplitSearch(CHAIN);
  const key = (f: number) => s.best(chain(f, 3)).boundaries.join(',');
  let lo = 1, hi = 8;
  assert.notEqual(key(lo), key(hi));
  for (let i = 0; i < 50; i++) { const mid = (lo + hi) / 2; if (key(mid) === key(lo)) lo = mid; else hi = mid; }
  const tie = (lo + hi) / 2;
  // the live controller: a decision every second, dwell 3 s, confirm 2 s, load window 6 s, rate window 20 s
  const run = (raw: boolean, seed: number): number => {
    const r = rng(seed);
    const d = raw ? new Decider(CHAIN, { mode: 'load-aware', minGain: 0, minDwellS: 0 })
      : new Decider(CHAIN, { mode: 'load-aware', minGain: 0.1, minDwellS: 3, confirmS: 2 });
    const edge = new LoadEstimator({ windowS: 6 });
    const arrivals = new ArrivalRate({ windowS: 20 });
    let switches = 0, next = 0, last = tie;
    for (let t = 0; t < 300; t += 1) {
      while (next <= t) { // Poisson arrivals at 3 req/s, each one an edge execution with ±20 % noise
        last = tie * Math.exp(0.2 * normal(r));
        arrivals.add(next);
        edge.addExec(0.05 * last, 0.05, next);
        next += -Math.log(1 - r()) / 3;
      }
      const dec = d.decide(raw ? chain(last, 3) : chain(edge.estimate(t).factor, arrivals.estimate(t)), t);
      if (dec.switch && dec.current !== null) switches++;
    }
    return switches;
  };
  for (const seed of [3, 4, 5, 6, 7]) {
    const n = run(false, seed);
    assert.ok(n <= 2, `seed ${seed}: ${n} switches in 300 s (tie at edge factor ${tie.toFixed(3)})`);
  }
  const raw = run(true, 3);
  assert.ok(raw > 20, `the noise is real: raw inputs without hysteresis switch ${raw} times`);
});

test('flap damping: a return to the placement just left waits a doubled dwell; a confirmation filters a one-off excursion', () => {
  const d = new Decider(MODEL, { mode: 'load-aware', minGain: 0.1, minDwellS: 3 }, { boundaries: [bestAt(1e6)], atS: 0 });
  const home = bestAt(1e6), away = bestAt(1e6, 3);
  assert.equal(d.decide(at(1e6, 3), 10).switch, true);
  const back = d.decide(at(1e6), 14); // 4 s > 3 s, but going back needs 6 s
  assert.equal(back.switch, false);
  assert.match(back.reason, /damped/);
  assert.equal(d.decide(at(1e6), 16).switch, true);
  assert.deepEqual(d.current, [home]);
  const again = d.decide(at(1e6, 3), 25); // second return: 12 s
  assert.equal(again.switch, false);
  assert.equal(d.decide(at(1e6, 3), 28).switch, true);
  assert.deepEqual(d.current, [away]);
  const c = new Decider(MODEL, { mode: 'load-aware', minGain: 0.1, minDwellS: 0, confirmS: 2, confirmBelowGain: 0.99 }, { boundaries: [home], atS: 0 });
  const first = c.decide(at(1e6, 3), 10);
  assert.equal(first.switch, false);
  assert.match(first.reason, /confirm/);
  assert.equal(c.decide(at(1e6), 11).switch, false); // the excursion ended: nothing pending
  assert.equal(c.decide(at(1e6, 3), 12).switch, false);
  assert.equal(c.decide(at(1e6, 3), 14).switch, true);
});

test('a detected level shift stands in for confirmation; minimum gain and dwell still hold', () => {
  // Two tiers, 4 blocks: device slow, edge fast; the input is large, later tensors small.
  const m = splitCostModel([{ name: 'device', blockS: [0.01, 0.01, 0.01, 0.01] }, { name: 'edge', blockS: [0.004, 0.004, 0.004, 0.004] }], [4e5, 2e5, 1e5, 5e4, 1e3]);
  const cond = (bytesPerS: number): AdaptConditions => ({ links: [{ bytesPerS, rttS: 0.002 }], tiers: [{ factor: 1, queueS: 0 }, { factor: 1, queueS: 0 }] });
  const opts = { mode: 'bandwidth' as const, minGain: 0.1, minDwellS: 3, confirmS: 2, confirmBelowGain: 0.5 };
  const start = new SplitSearch(m).best(cond(40e6)).boundaries;
  // A bandwidth at which another cut is better by a gain between the minimum and 50 %.
  let rate = 40e6, probe = new Decider(m, opts, { boundaries: start, atS: 0 }).decide(cond(rate), 10);
  while (!(probe.gain >= 0.1 && probe.gain < 0.5) && rate > 1e4) { rate /= 1.25; probe = new Decider(m, opts, { boundaries: start, atS: 0 }).decide(cond(rate), 10); }
  assert.ok(probe.gain >= 0.1 && probe.gain < 0.5, `scenario: a gain in [10 %, 50 %) (got ${(probe.gain * 100).toFixed(1)} %)`);
  const plain = new Decider(m, opts, { boundaries: start, atS: 0 });
  assert.equal(plain.decide(cond(rate), 10).switch, false, 'unconfirmed: waits');
  assert.equal(plain.decide(cond(rate), 12.5).switch, true, 'confirmed after confirmS');
  const shifted = new Decider(m, opts, { boundaries: start, atS: 0 });
  assert.equal(shifted.decide(cond(rate), 10, { shifted: true }).switch, true, 'after a shift: at once');
  const early = new Decider(m, opts, { boundaries: start, atS: 9 });
  assert.match(early.decide(cond(rate), 10, { shifted: true }).reason, /dwell/, 'dwell still applies');
  const same = new Decider(m, opts, { boundaries: start, atS: 0 });
  assert.equal(same.decide(cond(40e6), 10, { shifted: true }).switch, false, 'no better placement: no switch');
});
