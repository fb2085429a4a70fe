/**
 * Micro-benchmark of the adaptation decision: time per decision (search over all cuts plus the
 * hysteresis check) for 100 and 1,000 blocks, two and three tiers, without and with a request
 * rate (the linear path and the queueing path).
 * Run: npx tsc -p . && node dist/bench/adapt.js
 */
import { splitCostModel, Decider, type AdaptConditions } from '../src/adapt/index.js';

const BASELINE_US = 100; // the budget for 100 blocks

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function measure(blocks: number, tiers: number, rate: boolean): { perDecisionUs: number; decisions: number } {
  const r = rng(blocks * 10 + tiers + (rate ? 1 : 0) * 7919);
  const names = ['device', 'edge', 'cloud'].slice(3 - tiers);
  const model = splitCostModel(
    names.map((name, j) => ({ name, blockS: Array.from({ length: blocks }, () => (0.001 + r() * 0.01) / (j + 1)) })),
    Array.from({ length: blocks + 1 }, () => r() * 4e6),
  );
  const d = new Decider(model, { mode: 'load-aware', minGain: 0.1, minDwellS: 5 });
  // a pool of varying conditions so the search cannot be constant-folded
  const pool: AdaptConditions[] = Array.from({ length: 64 }, () => ({
    links: Array.from({ length: tiers - 1 }, () => ({ bytesPerS: 1e6 + r() * 2e7, rttS: r() * 0.02 })),
    tiers: Array.from({ length: tiers }, () => ({ factor: 1 + r() * 3, queueS: r() * 0.01 })),
    // λ > 0 takes the queueing path (convex sojourn, divide and conquer), the live controller's
    ...(rate ? { ratePerS: 1 + r() * 5 } : {}),
  }));
  let sink = 0;
  for (let i = 0; i < 2000; i++) sink += d.decide(pool[i & 63]!, i).predictedBestS; // warm-up
  const budgetNs = 400e6;
  let n = 0;
  const t0 = process.hrtime.bigint();
  let el = 0n;
  while (el < BigInt(budgetNs)) {
    for (let i = 0; i < 200; i++, n++) sink += d.decide(pool[n & 63]!, n * 0.1).predictedBestS;
    el = process.hrtime.bigint() - t0;
  }
  if (!Number.isFinite(sink)) throw new Error('unreachable');
  return { perDecisionUs: Number(el) / 1e3 / n, decisions: n };
}

const rows: { blocks: number; tiers: number; rate: boolean; us: number }[] = [];
for (const rate of [false, true]) {
  for (const tiers of [2, 3]) {
    for (const blocks of [100, 1000]) {
      const m = measure(blocks, tiers, rate);
      rows.push({ blocks, tiers, rate, us: m.perDecisionUs });
    }
  }
}
process.stdout.write('adapt decision (load-aware, with hysteresis), time per decision; λ: request rate in the conditions (queueing path)\n');
process.stdout.write('tiers  blocks   λ     µs/decision   baseline   ratio\n');
for (const r of rows) {
  process.stdout.write(`${String(r.tiers).padStart(5)}  ${String(r.blocks).padStart(6)}   ${(r.rate ? '1–6' : '0').padEnd(4)}  ${r.us.toFixed(2).padStart(11)}   ${String(BASELINE_US).padStart(6)} µs   ${(r.us / BASELINE_US).toFixed(3)}\n`);
}
const worst100 = Math.max(...rows.filter((r) => r.blocks === 100).map((r) => r.us));
process.stdout.write(`100 blocks: ${worst100.toFixed(2)} µs per decision, ${worst100 < BASELINE_US ? 'within' : 'OVER'} the ${BASELINE_US} µs budget\n`);
