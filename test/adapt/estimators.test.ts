import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrivalRate, LinkEstimator, LoadEstimator, loadFactor } from '../../src/adapt/index.js';
import { median, trimmedMean, trimmedScv, weightedMedian } from '../../src/adapt/robust.js';
import { LiveMonitor } from '../../src/adapt/monitor.js';
import { splitCostModel } from '../../src/adapt/decide.js';
import { normal, rng } from './rng.js';

const within = (x: number, target: number, rel: number) => Math.abs(x - target) <= rel * target;

/** Transfers over a link of `bytesPerS` and `rttS`, with ±15 % noise and `outliers` of them 4× slow. */
function feed(est: LinkEstimator, r: () => number, from: number, to: number, bytesPerS: number, rttS: number, outliers: number): number[] {
  const rates: number[] = [];
  for (let t = from; t < to; t += 0.5) {
    const bytes = 50_000 + r() * 2_000_000;
    let s = rttS + (bytes / bytesPerS) * Math.exp(0.15 * normal(r));
    if (r() < outliers) s *= 4;
    est.addTransfer(bytes, s, t);
    rates.push(bytes / s);
  }
  return rates;
}

test('link estimator converges to the true rate within 10% despite 20% outliers', () => {
  const r = rng(7);
  const est = new LinkEstimator({ prior: { bytesPerS: 1e5, rttS: 0 } });
  for (let t = 0; t < 30; t += 1) est.addRtt(0.02 * Math.exp(0.1 * normal(r)), t);
  const rates = feed(est, r, 0, 30, 5e6, 0.02, 0.2);
  const e = est.estimate(30);
  assert.ok(e.confident);
  assert.ok(within(e.bytesPerS, 5e6, 0.1), `estimate ${e.bytesPerS} vs 5e6`);
  assert.ok(within(e.rttS, 0.02, 0.1), `rtt ${e.rttS}`);
  // The outliers are material: a plain mean of the per-transfer rates misses by more than 10%.
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  assert.ok(!within(mean, 5e6, 0.1), `plain mean ${mean} should be off`);
});

test('link estimator finds the RTT from transfer sizes alone (Theil–Sen) and tracks a rate step', () => {
  const r = rng(11);
  const est = new LinkEstimator({ prior: { bytesPerS: 1e5, rttS: 0 } });
  feed(est, r, 0, 30, 5e6, 0.05, 0.1);
  const e1 = est.estimate(30);
  assert.ok(Math.abs(e1.rttS - 0.05) < 0.02, `rtt ${e1.rttS}`);
  assert.ok(within(e1.bytesPerS, 5e6, 0.1), `before ${e1.bytesPerS}`);
  feed(est, r, 30, 45, 1e6, 0.05, 0.1);
  const e2 = est.estimate(45);
  assert.ok(within(e2.bytesPerS, 1e6, 0.1), `after the step ${e2.bytesPerS}`);
});

test('link estimator: small transfers tell the fixed part, not the rate (which they would read 2–3× low)', () => {
  // 50 Mbit/s, 4 ms RTT, 2 ms of fixed costs beyond the RTT per transfer (framing, copies).
  const rate = 6.25e6, rtt = 0.004, extra = 0.002;
  const est = new LinkEstimator({ windowS: 10, halfLifeS: 3, prior: { bytesPerS: rate, rttS: rtt } });
  let t = 0;
  for (; t < 10; t += 0.33) est.addTransfer(196e3, rtt + extra + 196e3 / rate, t); // a split sending 196 KB
  const big = est.estimate(t);
  assert.ok(within(big.bytesPerS, rate, 0.1), `big transfers: ${big.bytesPerS}`);
  for (; t < 30; t += 0.33) est.addTransfer(6e3, rtt + extra + 6e3 / rate, t); // then one sending 6 KB
  const small = est.estimate(t);
  assert.ok(within(small.bytesPerS, rate, 0.02), `only small transfers: the rate stays ${small.bytesPerS}`);
  assert.ok(Math.abs(small.rttS - (rtt + extra)) < 0.0005, `and their fixed part shows in the RTT: ${small.rttS}`);
  // Taken as rates they would have read 6 KB / 2.96 ms ≈ 2 MB/s.
  assert.ok(6e3 / (rtt + extra + 6e3 / rate - rtt) < 0.4 * rate);
  // A transfer far slower than the fixed part is informative whatever the last rate said.
  const slow = new LinkEstimator({ windowS: 10, prior: { bytesPerS: 12e6, rttS: 0.01 } });
  for (let i = 0; i < 20; i++) slow.addTransfer(40e3, 0.01 + 40e3 / 0.5e6, i * 0.3);
  assert.ok(within(slow.estimate(6).bytesPerS, 0.5e6, 0.05), `24× below the prior: ${slow.estimate(6).bytesPerS}`);
  // With no transfer able to tell it, a rate far from the declared link returns to it (half-life 2 × 5 s in log scale).
  for (let i = 0; i < 20; i++) slow.addTransfer(100, 0.0105, 10 + i * 0.3);
  const back = slow.estimate(16 + 10).bytesPerS;
  assert.ok(back > 0.5e6 * 1.5 && back < 12e6, `10 s later: ${back}`);
  assert.ok(slow.estimate(6 + 200).bytesPerS > 0.9 * 12e6);
});

test('link estimator: prior before samples, probe wanted when idle, old samples forgotten', () => {
  const est = new LinkEstimator({ prior: { bytesPerS: 1234, rttS: 0.5 }, idleProbeS: 2, windowS: 10 });
  const e0 = est.estimate(0);
  assert.equal(e0.bytesPerS, 1234);
  assert.equal(e0.confident, false);
  assert.equal(e0.lastSampleS, null);
  assert.equal(est.needsProbe(0), true);
  est.addTransfer(1e6, 1.5, 1);
  assert.equal(est.needsProbe(2), false);
  assert.equal(est.needsProbe(3.5), true);
  assert.ok(within(est.estimate(2).bytesPerS, 1e6, 1e-9));
  assert.equal(est.estimate(20).confident, false);
  assert.throws(() => new LinkEstimator({ windowS: 0 }), /windowS/);
});

test('load factor is robust to outliers and ignores tiny blocks', () => {
  const r = rng(3);
  const samples = [];
  for (let i = 0; i < 40; i++) {
    const profiledS = 0.01 + r() * 0.1;
    let observedS = 2 * profiledS * Math.exp(0.1 * normal(r));
    if (i % 7 === 0) observedS *= 10; // a stall
    samples.push({ observedS, profiledS });
  }
  for (let i = 0; i < 10; i++) samples.push({ observedS: 0.002, profiledS: 0.0001 }); // timer-noise ratios of 20
  for (const estimator of ['trimmed', 'median'] as const) {
    const f = loadFactor(samples, { estimator, trim: 0.2 })!;
    assert.ok(within(f, 2, 0.1), `${estimator}: ${f}`);
  }
  assert.ok(!within(samples.reduce((a, s) => a + s.observedS / s.profiledS, 0) / samples.length, 2, 0.1));
  assert.equal(loadFactor([]), null);
  assert.equal(loadFactor([{ observedS: 1, profiledS: 0 }]), null);
});

test('load estimator: window, queueing delay, last known factor when idle', () => {
  const le = new LoadEstimator({ windowS: 10 });
  for (let t = 0; t < 10; t++) { le.addExec(0.1, 0.1, t); le.addQueue(0.002, t); }
  let e = le.estimate(10);
  assert.ok(within(e.factor, 1, 1e-9));
  assert.ok(within(e.queueS, 0.002, 1e-9));
  for (let t = 20; t < 30; t++) { le.addExec(0.3, 0.1, t); le.addQueue(0.05, t); }
  e = le.estimate(30);
  assert.ok(within(e.factor, 3, 1e-9), `factor ${e.factor}`);
  assert.ok(within(e.queueS, 0.05, 1e-9));
  e = le.estimate(100);
  assert.equal(e.confident, false);
  assert.ok(within(e.factor, 3, 1e-9));
  assert.equal(e.queueS, 0);
});

test('robust helpers', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(trimmedMean([1, 2, 3, 4, 100], 0.2), 3);
  assert.equal(weightedMedian([1, 2, 3], [1, 1, 5]), 3);
  assert.equal(weightedMedian([1, 2, 3], [5, 1, 1]), 1);
});

test('arrival rate converges to a known Poisson rate within 10 % and follows a change', () => {
  const r = rng(21);
  const a = new ArrivalRate({ windowS: 30 });
  let t = 0;
  while (t < 60) { a.add(t); t += -Math.log(1 - r()) / 20; }
  const e = a.estimate(60);
  assert.ok(Math.abs(e - 20) / 20 < 0.1, `rate ${e}`);
  while (t < 100) { a.add(t); t += -Math.log(1 - r()) / 5; }
  const e2 = a.estimate(100);
  assert.ok(Math.abs(e2 - 5) / 5 < 0.2, `rate after the change ${e2}`);
  assert.equal(new ArrivalRate().estimate(5), 0);
});

test('variability: arrival gaps near 0 for a fixed rate and near 1 for Poisson; service variability of a bursty tier', () => {
  const r = rng(31);
  const periodic = new ArrivalRate({ windowS: 20 }), poisson = new ArrivalRate({ windowS: 200 });
  for (let t = 0; t < 20; t += 1 / 3) periodic.add(t + 0.002 * normal(r));
  assert.ok(periodic.scv(20) < 0.01, `periodic ${periodic.scv(20)}`);
  let t = 0;
  while (t < 200) { poisson.add(t); t += -Math.log(1 - r()) / 3; }
  assert.ok(Math.abs(poisson.scv(200) - 1) < 0.25, `poisson ${poisson.scv(200)}`);
  assert.equal(new ArrivalRate().scv(1), 1, 'too few arrivals: assume Poisson');
  // A tier whose runs are either hit (2×) or not, half the time each: cs² = 1/9 of the ratios.
  const steady = new LoadEstimator({ windowS: 100 }), bursty = new LoadEstimator({ windowS: 100 });
  for (let i = 0; i < 60; i++) {
    steady.addExec(0.1 * (1 + 0.01 * normal(r)), 0.1, i);
    bursty.addExec(i % 2 ? 0.2 : 0.1, 0.1, i);
  }
  assert.ok(steady.estimate(60).serviceScv < 0.001);
  assert.ok(Math.abs(bursty.estimate(60).serviceScv - 1 / 9) < 0.02, `bursty ${bursty.estimate(60).serviceScv}`);
  assert.equal(new LoadEstimator().estimate(0).serviceScv, 1);
  assert.equal(trimmedScv([1, 1, 1]), null);
});

test('a tier running one tiny block reads as unloaded once its per-request overhead is counted', () => {
  // 3 blocks; the edge runs only block 1 (0.2 ms), and each request costs it 0.5 ms more.
  const model = splitCostModel([
    { name: 'device', blockS: [0.01, 0.0002, 0.01] },
    { name: 'edge', blockS: [0.01, 0.0002, 0.01], overheadS: 0.0005 },
    { name: 'cloud', blockS: [0.01, 0.0002, 0.01] },
  ], [1000, 1000, 1000, 100]);
  const mon = new LiveMonitor(model, { linkPriors: [], outputBytes: 100, minProfiledS: 0 });
  const live = new LiveMonitor(model, { linkPriors: [], outputBytes: 100 }); // default: runs under 5 ms tell nothing
  const r = rng(5);
  for (let i = 0; i < 20; i++) {
    const o = { atS: i, boundaries: [1, 2], tiers: [{ queueS: 0, computeS: 0.01 }, { queueS: 0, computeS: 0.0007 * (1 + 0.05 * normal(r)) }, { queueS: 0, computeS: 0.01 }], remoteS: 0.05 };
    mon.observe(o);
    // On a tier held to a CPU quota a run this short fits the quota's budget and runs at full speed, loaded or not.
    live.observe({ ...o, tiers: [o.tiers[0]!, { queueS: 0, computeS: 0.0007 * 1.7 }, o.tiers[2]!] });
  }
  assert.equal(live.conditions(20).tiers[1]!.factor, 1, 'tiny runs keep the last factor (here the prior)');
  assert.equal(live.snapshot(20).tiers[1]!.confident, false);
  const f = mon.conditions(20).tiers[1]!.factor;
  assert.ok(Math.abs(f - 1) < 0.1, `edge factor ${f} (3.5 without the overhead)`);
  // The gateway's own work per request (event-loop busy time ÷ requests answered) is the first tier's fixed time.
  assert.equal(mon.conditions(20).tiers[0]!.fixedS, undefined);
  mon.observeFront(0.03, 1, 18);
  mon.observeFront(0.09, 3, 19);
  mon.observeFront(0.5, 0, 19.5); // no request answered: nothing to attribute
  assert.ok(Math.abs(mon.conditions(20).tiers[0]!.fixedS! - 0.03) < 1e-12);
  assert.equal(mon.conditions(40).tiers[0]!.fixedS, undefined, 'forgotten after the window');
});

test('level-shift detection follows a load step after 3 samples; lone outliers do not restart the window', () => {
  const plain = new LoadEstimator({ windowS: 6 });
  const fast = new LoadEstimator({ windowS: 6, shift: { run: 3, ratio: 1.5 } });
  let t = 0;
  for (; t < 6; t += 0.33) { plain.addExec(0.1, 0.1, t); fast.addExec(0.1, 0.1, t); }
  // lone outliers (one in four) never restart the window
  for (let i = 0; i < 12; i++, t += 0.33) { const o = i % 4 === 0 ? 0.8 : 0.1; plain.addExec(o, 0.1, t); fast.addExec(o, 0.1, t); }
  // (a bursty minority of hit runs is load: it stays in the mean, exactly as without detection)
  assert.equal(fast.estimate(t).factor, plain.estimate(t).factor);
  assert.ok(fast.estimate(t).samples > 10);
  // a step to 8× load
  for (let i = 0; i < 3; i++, t += 0.33) { plain.addExec(0.8, 0.1, t); fast.addExec(0.8, 0.1, t); }
  assert.ok(Math.abs(fast.estimate(t).factor - 8) < 0.8, `after 3 loaded samples: ${fast.estimate(t).factor}`);
  assert.ok(plain.estimate(t).factor < 4, `without detection the step shows late: ${plain.estimate(t).factor}`);
  // links: a 5× bandwidth drop
  const link = new LinkEstimator({ windowS: 10, halfLifeS: 3, shift: { run: 3, ratio: 1.5 }, prior: { bytesPerS: 6.25e6, rttS: 0.004 } });
  for (let i = 0; i < 30; i++) link.addTransfer(100e3, 0.004 + 100e3 / 6.25e6, i * 0.33);
  link.addRtt(0.004, 10);
  for (let i = 0; i < 3; i++) link.addTransfer(100e3, 0.004 + 100e3 / 1.25e6, 10 + i * 0.33);
  const e = link.estimate(11);
  assert.ok(Math.abs(e.bytesPerS - 1.25e6) / 1.25e6 < 0.1, `after 3 slow transfers: ${e.bytesPerS}`);
  assert.throws(() => new LoadEstimator({ shift: { run: 3, ratio: 1 } }), /ratio/);
  // A big step (beyond bigRatio) needs only bigRun samples; lone big outliers still never restart it.
  const big = new LoadEstimator({ windowS: 6, shift: { run: 3, ratio: 1.5, bigRatio: 4, bigRun: 2 } });
  let u = 0;
  for (; u < 6; u += 0.33) big.addExec(0.1, 0.1, u);
  for (let i = 0; i < 12; i++, u += 0.33) big.addExec(i % 4 === 0 ? 1.6 : 0.1, 0.1, u);
  assert.ok(big.estimate(u).samples > 10, 'lone 16× outliers do not restart the window');
  assert.equal(big.addExec(1.6, 0.1, u), false);
  assert.equal(big.addExec(1.6, 0.1, u + 0.33), true, 'two samples 16× slower: a shift');
  assert.ok(Math.abs(big.estimate(u + 0.33).factor - 16) < 1e-9);
  assert.throws(() => new LoadEstimator({ shift: { run: 3, ratio: 1.5, bigRatio: 1.2 } }), /bigRatio/);
  // A huge step with a large excess in seconds is followed after one sample; the same ratio on a
  // short run (a small excess), or a large excess below the ratio, is not.
  const HUGE = { run: 3, ratio: 1.5, bigRatio: 4, bigRun: 2, hugeRatio: 6, hugeExcess: 0.15 };
  const settled = (profiledS: number): LoadEstimator => {
    const e = new LoadEstimator({ windowS: 6, shift: HUGE });
    for (let i = 0; i < 18; i++) e.addExec(profiledS, profiledS, i * 0.33);
    return e;
  };
  assert.equal(settled(0.005).addExec(0.005 * 12, 0.005, 6), false, '12× on a 5 ms run: +55 ms, not enough');
  assert.equal(settled(0.1).addExec(0.1 * 5, 0.1, 6), false, '5× on a 100 ms run: +0.4 s but below 6×');
  const huge = settled(0.03);
  assert.equal(huge.addExec(0.03 * 12, 0.03, 6), true, '12× on a 30 ms run (+0.33 s): a shift at once');
  assert.equal(huge.estimate(6).samples, 1);
  assert.ok(Math.abs(huge.estimate(6).factor - 12) < 1e-9);
  // and back down: one idle run after the loaded ones
  for (let i = 1; i <= 3; i++) huge.addExec(0.03 * 12, 0.03, 6 + i * 0.33);
  assert.equal(huge.addExec(0.03, 0.03, 7.5), true, 'one run at the profiled time, 0.33 s faster: a shift');
  assert.ok(Math.abs(huge.estimate(7.5).factor - 1) < 1e-9);
  assert.throws(() => new LoadEstimator({ shift: { run: 3, ratio: 1.5, hugeRatio: 6 } }), /hugeExcess/);
});
