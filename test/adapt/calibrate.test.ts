/** Realised-latency calibration: a split that disappointed is priced at what it delivered. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Calibration, Decider, splitCostModel, type AdaptConditions } from '../../src/adapt/index.js';

test('calibration: own ratio after enough requests, the median of the tried splits for the others, clamped, forgotten', () => {
  const c = new Calibration({ memoryS: 60, minRequests: 3, maxRatio: 4 });
  assert.equal(c.ratio([1, 2], 0), 1, 'nothing ran: the model as it is');
  c.add([1, 2], 0.22, 0.2, 2, 1);
  assert.equal(c.own([1, 2], 1), null, 'two requests are not enough');
  c.add([1, 2], 0.22, 0.2, 2, 2);
  assert.ok(Math.abs(c.own([1, 2], 2)! - 1.1) < 1e-12);
  c.add([3, 4], 50, 0.25, 5, 3); // saturated: 200× the prediction, clamped to 4
  assert.equal(c.own([3, 4], 3), 4);
  assert.equal(c.ratio([5, 6], 3), (1.1 + 4) / 2, 'an untried split gets the median of the tried ones');
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
