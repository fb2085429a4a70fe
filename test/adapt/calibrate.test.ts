/** Realised-latency calibration: a split that disappointed is priced at what it delivered. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Calibration, Decider, splitCostModel, predictSplitLatency, type AdaptConditions } from '../../src/adapt/index.js';

test('calibration: own ratio after enough requests, the median of the tried splits for the others, clamped, forgotten', () => {
  const c = new Calibration({ memoryS: 60, minRequests: 3, maxRatio: 4 });
  assert.equal(c.ratio([1, 2], 0), 1, 'nothing ran: the model as it is');
  c.add([1, 2], 0.22, 0.2, 2, 1);
  assert.equal(c.own([1, 2], 1), null, 'two requests are not enough');
  c.add([1, 2], 0.22, 0.2, 2, 2);
  assert.ok(Math.abs(c.own([1, 2], 2)! - 1.1) < 1e-12);
  c.add([3, 4], 50, 0.25, 5, 3); // saturated: 200× the prediction, clamped to 4
  assert.equal(c.own([3, 4], 3), 4);
  assert.ok(Math.abs(c.ratio([5, 6], 3) - (1.1 + 2) / 2) < 1e-12, 'an untried split gets the median of the tried ones, each held within 2×');
  c.add([1, 2], 0.2, 0.2, 1, 4);
  c.add([1, 2], 0.2, 0.2, 1, 5);
  assert.ok(Math.abs(c.own([1, 2], 5)! - 1.1) < 1e-12, 'request-weighted median');
  assert.deepEqual(c.snapshot(5).map((x) => x.boundaries), [[1, 2], [3, 4]]);
  c.add([1, 2], NaN, 0.2, 1, 6);
  c.add([1, 2], 0.2, 0, 1, 6);
  assert.equal(c.snapshot(6).find((x) => x.boundaries[0] === 1)!.requests, 6, 'unusable samples are ignored');
  assert.equal(c.own([3, 4], 70), null, 'forgotten after memoryS');
});

test('decide with calibration: a split that disappointed is not switched to again on the model\'s word', () => {
  // Two tiers, 4 blocks: the model says running everything on the device gains 57 % (0.2 s against 0.46 s).
  const m = splitCostModel([{ name: 'device', blockS: [0.05, 0.05, 0.05, 0.05] }, { name: 'edge', blockS: [0.1, 0.1, 0.1, 0.1] }], [1e5, 1e5, 1e5, 1e5, 10]);
  const cond: AdaptConditions = { links: [{ bytesPerS: 1e6, rttS: 0.01 }], tiers: [{ factor: 1 }, { factor: 1 }] };
  const plain = new Decider(m, { mode: 'load-aware', minGain: 0.1, minDwellS: 0 }, { boundaries: [1], atS: 0 });
  const d1 = plain.decide(cond, 1);
  assert.equal(d1.switch, true);
  assert.deepEqual(d1.chosen, [4]);
  // The same decision when [4] ran at 2.5× its prediction and [1] as predicted: no switch.
  const cal = (b: readonly number[]) => (b[0] === 4 ? 2.5 : 1);
  const d2 = new Decider(m, { mode: 'load-aware', minGain: 0.1, minDwellS: 0 }, { boundaries: [1], atS: 0 }).decide(cond, 1, { calibrate: cal });
  assert.equal(d2.switch, false);
  assert.match(d2.reason, /measured ÷ model: current ×1\.00, best ×2\.50/);
  // A ratio common to both (the model 30 % optimistic everywhere) changes nothing.
  const d3 = new Decider(m, { mode: 'load-aware', minGain: 0.1, minDwellS: 0 }, { boundaries: [1], atS: 0 }).decide(cond, 1, { calibrate: () => 1.3 });
  assert.equal(d3.switch, true);
  assert.ok(Math.abs(d3.gain - d1.gain) < 1e-12);
});

test('calibration: a split\'s own recent measured latency is its price while the conditions that set it hold', () => {
  const c = new Calibration({ memoryS: 120, recentS: 30, comparable: 1.25, minRequests: 3 });
  // [1,2] near its device's capacity: the model calls it saturated (5 s), it runs at 0.27 s.
  c.add([1, 2], 0.27, 5.0, 2, 1, 0.25);
  c.add([1, 2], 0.29, 4.0, 2, 2, 0.24);
  c.add([1, 2], 0.4, 4.0, 1, 2.5, 0.25);
  assert.equal(c.measured([1, 2], 0.26, 3), 0.29, 'request-weighted median of the recent comparable samples');
  assert.ok(Math.abs(c.factor([1, 2], 5.2, 0.26, 3) - 0.29 / 5.2) < 1e-12, 'replaces the prediction: beyond the ratio clamp');
  const r = c.ratio([1, 2], 3);
  assert.ok(r >= 1 / 16 && r > 0.29 / 5.2, `the ratio alone is clamped: ${r}`);
  // A step in what sets its latency (unqueued prediction ×1.6): the measurement no longer holds.
  assert.equal(c.measured([1, 2], 0.4, 3), null);
  assert.equal(c.factor([1, 2], 5.2, 0.4, 3), r);
  // Older than recentS: the ratio again.
  assert.equal(c.measured([1, 2], 0.26, 40), null);
  assert.equal(c.factor([1, 2], 5.2, 0.26, 40), c.ratio([1, 2], 40));
  // Too few requests, or samples without an unqueued prediction: no measured price.
  c.add([3, 4], 0.3, 0.3, 2, 5, 0.3);
  assert.equal(c.measured([3, 4], 0.3, 5), null);
  c.add([5, 6], 0.3, 0.3, 9, 5);
  assert.equal(c.measured([5, 6], 0.3, 5), null);
  assert.throws(() => new Calibration({ comparable: 0.5 }), /comparable/);
});

test('decide with measured prices: a split the model wrongly calls saturated is kept while it delivers', () => {
  // Two tiers, 4 blocks. All four on the device ([4]) puts it at ρ ≈ 0.95: the model's headroom
  // prices it as saturated; [3] is its best alternative.
  const m = splitCostModel([{ name: 'device', blockS: [0.07, 0.07, 0.07, 0.07] }, { name: 'edge', blockS: [0.15, 0.15, 0.15, 0.15] }], [1e5, 1e5, 1e5, 1e5, 10]);
  const cond: AdaptConditions = { links: [{ bytesPerS: 5e5, rttS: 0.01 }], tiers: [{ factor: 1 }, { factor: 1 }], ratePerS: 3.4, arrivalScv: 0 };
  const unq: AdaptConditions = { ...cond, ratePerS: 0 };
  assert.ok(predictSplitLatency(m, cond, [4]) > 16 * 0.3, `the model prices [4] as saturated: ${predictSplitLatency(m, cond, [4])}`);
  const plain = new Decider(m, { mode: 'load-aware', minGain: 0.2, minDwellS: 0 }, { boundaries: [4], atS: 0 }).decide(cond, 5);
  assert.equal(plain.switch, true, plain.reason);
  assert.deepEqual(plain.chosen, [3]);
  // [4] ran at 0.3 s (periodic arrivals queue little even at ρ ≈ 0.95): kept, priced at that.
  const cal = new Calibration();
  for (let t = 1; t <= 4; t++) cal.add([4], 0.3, predictSplitLatency(m, cond, [4]), 3, t, predictSplitLatency(m, unq, [4]));
  const d = new Decider(m, { mode: 'load-aware', minGain: 0.2, minDwellS: 0 }, { boundaries: [4], atS: 0 })
    .decide(cond, 5, { calibrate: (b) => cal.factor(b, predictSplitLatency(m, cond, b), predictSplitLatency(m, unq, b), 5) });
  assert.equal(d.switch, false, d.reason);
  assert.ok(Math.abs(d.predictedCurrentS - 0.3) < 1e-9, `priced at what it delivered: ${d.predictedCurrentS}`);
  // [3] is priced at the model × [4]'s error held within 2× (not × 1/16: that error is [4]'s own).
  assert.ok(Math.abs(d.predictedBestS - predictSplitLatency(m, cond, [3]) * 0.5) < 1e-9, `${d.predictedBestS}`);
});
