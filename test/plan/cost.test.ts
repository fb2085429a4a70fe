import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hopS, tierServiceS, tierTermsProblem } from '../../src/plan/cost.js';
import { rankPlacements } from '../../src/plan/search.js';
import { problemFromProfiles } from '../../src/plan/problem.js';
import { networkFromObject } from '../../src/plan/network.js';
import { predictSplitLatency, splitCostModelFromProfiles } from '../../src/adapt/decide.js';
import { profile } from './profiles.js';

test('tier cost: blocks and call overhead scale with load, fixed time and wire CPU do not', () => {
  assert.equal(tierServiceS(0.01, undefined), 0.01);
  const t = { callOverheadS: 0.001, fixedS: 0.004, wireSPerByte: 1e-9 };
  assert.ok(Math.abs(tierServiceS(0.01, t, 2, 1e6) - (2 * 0.011 + 0.004 + 0.001)) < 1e-15);
  assert.ok(Math.abs(hopS(1e6, 0.02, 1e7) - 0.12) < 1e-15);
  assert.equal(tierTermsProblem({ fixedS: -1 }, 'device'), 'device: fixedS -1 is not a non-negative number');
  assert.equal(tierTermsProblem(t, 'x'), null);
});

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

for (const withCodecs of [false, true]) test(`plan and place price the same placement the same, to 1e-9: tiers, gateway, wire CPU, rtt once, the result back along the chain${withCodecs ? ', codecs chosen per hop' : ''}`, async () => {
  const { placeModelFromProfiles, pricePlacement, validateCluster } = await import('../../src/plan/place/index.js');
  const MB = 2 ** 20;
  const profiles = [
    profile('device', [0.04, 0.03, 0.05, 0.02], 0.002, withCodecs),
    profile('edge', [0.012, 0.01, 0.014, 0.006], 0.0007, withCodecs),
    profile('cloud', [0.004, 0.003, 0.005, 0.002], 0.0002, withCodecs),
  ];
  const codecOpts = withCodecs ? { codecs: ['zstd-1', 'int8+zstd-1'], lossyCodecs: ['int8+zstd-1'] } : {};
  let coded = 0;
  const fixedS = 0.009;
  const wire = { device: 4e-9, edge: 1e-9, cloud: 0.5e-9 };
  const problem = problemFromProfiles(profiles, 'm', {
    terms: { device: { fixedS, wireSPerByte: wire.device }, edge: { wireSPerByte: wire.edge }, cloud: { wireSPerByte: wire.cloud } },
  });
  const links = [
    { from: 'device', to: 'edge', rttMs: 4, bandwidthMbps: 8 },
    { from: 'edge', to: 'cloud', rttMs: 20, bandwidthMbps: 16 },
    { from: 'device', to: 'cloud', rttMs: 50, bandwidthMbps: 2 },
  ];
  const net = networkFromObject({ links }, 'test');
  const cluster = validateCluster({
    schema: 'kerf.cluster/v1', entry: 'device', messageOverheadMs: 0, memory: { margin: 1, overheadMB: 0 },
    nodes: (['device', 'edge', 'cloud'] as const).map((n) => ({
      name: n, memoryMB: 1024, system: n, wireCpuMsPerMB: wire[n] * 1000 * MB, ...(n === 'device' ? { fixedMs: fixedS * 1000 } : {}),
    })),
    links,
  });
  const model = placeModelFromProfiles(profiles);
  for (const objective of ['latency', 'throughput'] as const) {
    const all = rankPlacements(problem, net, undefined, { topK: 1000, returnResult: true, objective, ...codecOpts });
    assert.equal(all.length, 1 + 4 + 4 + 6, 'every placement of 4 blocks on device, edge and cloud');
    for (const p of all) {
      const stages = p.tiers.filter((t) => t.blocks).map((t) => ({ node: t.system!, first: t.blocks![0], last: t.blocks![1] }));
      const q = pricePlacement(model, cluster, stages, codecOpts);
      const what = `${objective} ${JSON.stringify(stages)}`;
      assert.ok(Math.abs(q.latency - p.totalS) < 1e-9, `${what}: plan ${p.totalS}, place ${q.latency}`);
      assert.ok(Math.abs(q.bottleneck.seconds - p.bottleneckS) < 1e-9, `${what}: plan bottleneck ${p.bottleneckS}, place ${q.bottleneck.seconds}`);
      // the same codec on every hop, both ways
      assert.deepEqual(q.links.map((l) => [l.from, l.to, l.codec ?? 'none', l.ratio ?? 1]), p.transfers.map((t) => [t.from, t.to, t.codec ?? 'none', t.ratio ?? 1]), what);
      coded += p.transfers.filter((t) => t.codec).length;
      for (const t of p.transfers) if (t.kind === 'return') assert.ok(!t.lossy, `${what}: a lossy codec on the return`);
      if (withCodecs) continue;
      // each hop's rtt is paid once: half out, half with the result back
      const rtt = p.transfers.reduce((s, t) => s + t.seconds, 0) - p.transfers.reduce((s, t) => s + t.bytes / (links.find((l) => (l.from === t.from && l.to === t.to) || (l.from === t.to && l.to === t.from))!.bandwidthMbps * 1e6 / 8), 0);
      const hops = stages.length - (stages[0]!.node === 'device' ? 1 : 0);
      const want = q.links.filter((l) => l.kind === 'forward').reduce((s, l) => s + l.rttMs / 1000, 0);
      assert.equal(p.transfers.length, 2 * hops);
      assert.ok(Math.abs(rtt - want) < 1e-12, `${what}: rtt charged ${rtt}, hops' rtt ${want}`);
    }
  }
  if (withCodecs) { assert.ok(coded >= 10, `only ${coded} hops chose a codec: the case does not exercise them`); return; }
  // the adapt controller prices a three-tier split as the planner does without the result's return
  const adaptModel = splitCostModelFromProfiles(profiles);
  const plain = problemFromProfiles(profiles, 'm', { terms: { device: { fixedS } } });
  const p3 = rankPlacements(plain, net, undefined, { topK: 1000 }).find((p) => p.tiers.every((t) => t.blocks))!;
  const adapt = predictSplitLatency(adaptModel, {
    links: [{ bytesPerS: 8e6 / 8, rttS: 0.004 }, { bytesPerS: 16e6 / 8, rttS: 0.02 }],
    tiers: [{ factor: 1, fixedS }, { factor: 1 }, { factor: 1 }],
  }, [p3.tiers[0]!.blocks![1] + 1, p3.tiers[1]!.blocks![1] + 1]);
  assert.ok(Math.abs(adapt - p3.totalS) < 1e-9);
});

test('plan --return-result pays each hop\'s rtt once, as the emulator delays rtt/2 each way', () => {
  const profiles = [profile('device', [0.04, 0.03, 0.05, 0.02], 0), profile('cloud', [0.004, 0.003, 0.005, 0.002], 0)];
  const problem = problemFromProfiles(profiles, 'm');
  const net = networkFromObject({ links: [{ from: 'device', to: 'cloud', rttMs: 100, bandwidthMbps: 8 }] }, 'test');
  const cloud = (ret: boolean) => rankPlacements(problem, net, undefined, { topK: 100, returnResult: ret }).find((p) => !p.tiers[0]!.blocks)!;
  const [out, back] = [cloud(false), cloud(true)];
  // the input (4000 B) out and the result (400 B) back at 1 MB/s; 100 ms of round trip once
  assert.ok(Math.abs(out.totalS - (0.014 + 0.1 + 0.004)) < 1e-12, String(out.totalS));
  assert.ok(Math.abs(back.totalS - (0.014 + 0.1 + 0.004 + 0.0004)) < 1e-12, String(back.totalS));
  assert.deepEqual(back.transfers.map((t) => [t.kind, Math.round(t.seconds * 1e6)]), [['forward', 54000], ['return', 50400]]);
});
