import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hopS, tierServiceS, tierTermsProblem } from '../../src/plan/cost.js';
import { rankPlacements } from '../../src/plan/search.js';
import { problemFromProfiles } from '../../src/plan/problem.js';
import { networkFromObject } from '../../src/plan/network.js';
import { predictSplitLatency, splitCostModelFromProfiles } from '../../src/adapt/decide.js';
import type { Profile } from '../../src/profile/types.js';

test('tier cost: blocks and call overhead scale with load, fixed time and wire CPU do not', () => {
  assert.equal(tierServiceS(0.01, undefined), 0.01);
  const t = { callOverheadS: 0.001, fixedS: 0.004, wireSPerByte: 1e-9 };
  assert.ok(Math.abs(tierServiceS(0.01, t, 2, 1e6) - (2 * 0.011 + 0.004 + 0.001)) < 1e-15);
  assert.ok(Math.abs(hopS(1e6, 0.02, 1e7) - 0.12) < 1e-15);
  assert.equal(tierTermsProblem({ fixedS: -1 }, 'device'), 'device: fixedS -1 is not a non-negative number');
  assert.equal(tierTermsProblem(t, 'x'), null);
});

function profile(tier: 'device' | 'edge' | 'cloud', blockS: number[], callOverheadS: number): Profile {
  return {
    schema: 'kerf.profile/v1',
    model: { name: 'm', inputBytes: 4000 },
    system: { name: tier, tier, cpu: 'x', cores: 1, memoryBytes: 1, threads: 1, hostname: 'h' },
    granularity: 'single', source: 'kerf', callOverheadS,
    blocks: blockS.map((s, i) => ({
      index: i, firstLayer: i, lastLayer: i, cutId: i, outputTensors: ['t'],
      latency: { median: s, p90: s, min: s, spread: 0, runs: 1 }, outputBytes: [3000, 1000, 2500, 400][i]!, paramBytes: 0, flops: 0,
    })),
    whole: { latency: { median: 1, p90: 1, min: 1, spread: 0, runs: 1 } },
    settings: { repeats: 1, warmup: 1, threads: 1, optimization: 'disabled', method: 'trace', seed: 0, runtime: 'x' },
    createdAt: '2026-01-01T00:00:00Z',
  } as Profile;
}

test('plan and adapt price the same split the same (blocks, call overhead, gateway fixed time, transfers)', () => {
  const profiles = [
    profile('device', [0.04, 0.03, 0.05, 0.02], 0.002),
    profile('edge', [0.012, 0.01, 0.014, 0.006], 0.0007),
    profile('cloud', [0.004, 0.003, 0.005, 0.002], 0.0002),
  ];
  const fixedS = 0.009;
  const problem = problemFromProfiles(profiles, 'm', { terms: { device: { fixedS } } });
  const links = [
    { from: 'device', to: 'edge', rttMs: 4, bandwidthMbps: 8 },
    { from: 'edge', to: 'cloud', rttMs: 20, bandwidthMbps: 16 },
    { from: 'device', to: 'cloud', rttMs: 50, bandwidthMbps: 2 },
  ];
  const net = networkFromObject({ links }, 'test');
  const all = rankPlacements(problem, net, undefined, { topK: 1000 });
  const model = splitCostModelFromProfiles(profiles);
  const conditions = {
    links: [{ bytesPerS: 8e6 / 8, rttS: 0.004 }, { bytesPerS: 16e6 / 8, rttS: 0.02 }],
    tiers: [{ factor: 1, fixedS }, { factor: 1 }, { factor: 1 }],
  };
  let compared = 0;
  for (const p of all) {
    // Placements that use all three tiers are the chain the adapt controller prices.
    if (!p.tiers.every((t) => t.blocks)) continue;
    const bounds = [p.tiers[0]!.blocks![1] + 1, p.tiers[1]!.blocks![1] + 1];
    const adapt = predictSplitLatency(model, conditions, bounds);
    assert.ok(Math.abs(adapt - p.totalS) < 1e-12, `split ${bounds}: plan ${p.totalS}, adapt ${adapt}`);
    // The plan's figure is the blocks plus what the terms add: nothing priced twice, nothing left out.
    const parts = p.tiers.reduce((s, t) => s + t.computeS + (t.overheadS ?? 0), 0) + p.transfers.reduce((s, t) => s + t.seconds, 0);
    assert.ok(Math.abs(parts - p.totalS) < 1e-12);
    compared++;
  }
  assert.equal(compared, 3, 'every three-tier split of 4 blocks was compared');
  // The device pays its gateway time and call overhead once, in every placement.
  const dev = all.find((p) => !p.tiers[1]!.blocks && !p.tiers[2]!.blocks)!;
  assert.ok(Math.abs(dev.totalS - (0.14 + 0.002 + fixedS)) < 1e-12);
  assert.ok(Math.abs(dev.tiers[0]!.overheadS! - (0.002 + fixedS)) < 1e-12);
  // A gateway that runs no segment (all on cloud) still does its own work, but makes no call.
  const cloud = all.find((p) => !p.tiers[0]!.blocks && !p.tiers[1]!.blocks)!;
  assert.ok(Math.abs(cloud.tiers[0]!.overheadS! - fixedS) < 1e-12);
  assert.ok(Math.abs(cloud.tiers[2]!.overheadS! - 0.0002) < 1e-12);
});
