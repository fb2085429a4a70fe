import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dominates, paretoFront, planObjectives, planPareto } from '../../src/plan/pareto.js';
import { describePlacement, rankPlacements, searchPlacements } from '../../src/plan/search.js';
import { problemFromProfiles } from '../../src/plan/problem.js';
import { networkFromObject } from '../../src/plan/network.js';
import { deviceBytes, place, placeModelFromProfiles, placePareto, validateCluster } from '../../src/plan/place/index.js';
import { mulberry32 } from '../../src/util/prng.js';
import { profile } from './profiles.js';

test('paretoFront: dominance, ties kept, NaN dropped, lexicographic order; equals the O(n²) definition', () => {
  assert.ok(dominates([1, 2], [1, 3]) && !dominates([1, 3], [1, 2]) && !dominates([1, 2], [1, 2]) && !dominates([0, 3], [1, 2]));
  assert.deepEqual(paretoFront([[3, 1], [2, 2], [2, 2], [1, 3], [2, 3], [NaN, 0], [4, 1]], (x) => x), [[1, 3], [2, 2], [2, 2], [3, 1]]);
  // a later item can dominate earlier ones
  assert.deepEqual(paretoFront(['b', 'a'], (s) => (s === 'a' ? [1, 1, 1] : [1, 1, 2])), ['a']);
  const r = mulberry32(9);
  for (let t = 0; t < 200; t++) {
    const pts = Array.from({ length: 1 + Math.floor(r() * 60) }, () => [0, 1, 2].map(() => Math.floor(r() * 6)));
    const want = pts.filter((p) => !pts.some((q) => dominates(q, p)));
    const got = paretoFront(pts, (p) => p);
    assert.equal(got.length, want.length, `trial ${t}`);
    for (const p of want) assert.ok(got.includes(p), `trial ${t}: ${p} missing`);
    for (let i = 1; i < got.length; i++) {
      const a = got[i - 1]!, b = got[i]!;
      const c = a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;
      assert.ok(c < 0 || (c === 0 && pts.indexOf(a) < pts.indexOf(b)), `trial ${t}: order`);
    }
  }
});

const profiles = [
  profile('device', [0.04, 0.03, 0.05, 0.02], 0.002, true),
  profile('edge', [0.012, 0.01, 0.014, 0.006], 0.0007, true),
  profile('cloud', [0.004, 0.003, 0.005, 0.002], 0.0002, true),
];
const links = [
  { from: 'device', to: 'edge', rttMs: 4, bandwidthMbps: 8 },
  { from: 'edge', to: 'cloud', rttMs: 20, bandwidthMbps: 16 },
  { from: 'device', to: 'cloud', rttMs: 50, bandwidthMbps: 2 },
];
const codecOpts = { codecs: ['zstd-1', 'int8+zstd-1'], lossyCodecs: ['int8+zstd-1'] };

test('kerf plan --pareto: the front of every placement × every codec of the device hop, ranked by latency', () => {
  const problem = problemFromProfiles(profiles, 'm');
  const net = networkFromObject({ links }, 'test');
  const opts = { returnResult: true, ...codecOpts };
  const front = planPareto(problem, net, undefined, opts);
  // brute force: describe every placement with every codec on its device hop
  const all = searchPlacements(problem, net, undefined, { ...opts, topK: 1000 }).flatMap((r) =>
    ['none', ...codecOpts.codecs].flatMap((c) => { try { return [describePlacement(problem, net, r, 0, opts, c)]; } catch { return []; } }));
  const vec = (p: Parameters<typeof planObjectives>[0]): number[] => { const o = planObjectives(p); return [o.latencyS, o.bottleneckS, o.deviceBytes]; };
  for (const p of front) assert.ok(!all.some((q) => dominates(vec(q), vec(p))), `rank ${p.rank} is dominated`);
  for (const q of all) if (!all.some((o) => dominates(vec(o), vec(q)))) assert.ok(front.some((p) => vec(p).every((x, i) => x === vec(q)[i])), `non-dominated ${JSON.stringify(vec(q))} missing`);
  assert.deepEqual(front.map((p) => p.rank), front.map((_, i) => i + 1));
  for (let i = 1; i < front.length; i++) assert.ok(front[i - 1]!.totalS <= front[i]!.totalS);
  // the extremes: the fastest plan, and all on the device (nothing leaves it)
  assert.equal(front[0]!.totalS, rankPlacements(problem, net, undefined, { ...opts, topK: 1 })[0]!.totalS);
  assert.ok(front.some((p) => planObjectives(p).deviceBytes === 0));
  // codecs are a dimension: the same split appears with different codecs on the device hop
  const key = (p: (typeof front)[number]): string => JSON.stringify(p.tiers.map((t) => t.blocks));
  assert.ok(front.some((p) => front.some((q) => q !== p && key(q) === key(p) && q.transfers[0]?.codec !== p.transfers[0]?.codec)), 'no split on the front with two codecs');
  assert.ok(front.length >= 4 && front.length < all.length);
});

test('kerf place --pareto: exact front of a small cluster; it contains the optimum and covers the planner\'s front', () => {
  const cluster = validateCluster({
    schema: 'kerf.cluster/v1', entry: 'device', messageOverheadMs: 0, wireCpuMsPerMB: 0, memory: { margin: 1, overheadMB: 0 },
    nodes: (['device', 'edge', 'cloud'] as const).map((n) => ({ name: n, memoryMB: 1024, system: n })),
    links,
  });
  const model = placeModelFromProfiles(profiles);
  const { front, priced } = placePareto(model, cluster, codecOpts);
  // chains of 1..3 distinct nodes over 4 blocks, the entry's hop with 3 codec choices
  assert.ok(priced > 40, String(priced));
  const vec = (p: (typeof front)[number]): number[] => [p.latency, p.bottleneck.seconds, deviceBytes(p)];
  for (const p of front) for (const q of front) assert.ok(!dominates(vec(q), vec(p)));
  const best = place(model, cluster, { solver: 'exact', ...codecOpts });
  assert.ok(Math.abs(Math.min(...front.map((p) => p.bottleneck.seconds)) - best.bottleneck.seconds) < 1e-12);
  // every point of the planner's front (device → edge → cloud only) is matched or beaten
  const planFront = planPareto(problemFromProfiles(profiles, 'm'), networkFromObject({ links }, 'test'), undefined, { returnResult: true, ...codecOpts });
  for (const p of planFront) {
    const v = [p.totalS, p.bottleneckS, planObjectives(p).deviceBytes];
    assert.ok(front.some((q) => vec(q).every((x, i) => x <= v[i]! + 1e-12)), `plan point ${JSON.stringify(v)} not covered`);
  }
  assert.throws(() => placePareto(model, { ...cluster, entry: undefined } as never), /needs the cluster's entry/);
});
