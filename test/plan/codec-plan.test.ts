/** The planner prices a hop as encode + bytes ÷ bandwidth + decode and picks the codec per hop. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describePlacement, rankPlacements, searchPlacements } from '../../src/plan/search.js';
import { emptyCriteria } from '../../src/plan/criteria.js';
import { breakEvenBytesPerS } from '../../src/plan/codec-cost.js';
import type { SystemCodecs } from '../../src/plan/codec-cost.js';
import type { Network, NetworkLink, PlanProblem, PlanTier, SystemCost } from '../../src/plan/types.js';
import { mulberry32 } from '../../src/util/prng.js';

const link = (from: string, to: string, mbps: number, rttMs = 2): NetworkLink => ({ from, to, rttMs, bandwidthMbps: mbps, rttS: rttMs / 1000, bytesPerS: mbps * 125000 });
const net = (links: NetworkLink[]): Network => ({ schema: 'kerf.network/v1', format: 'yaml', links });

function codecs(L: number, rows: [string, boolean, number, number, number][]): SystemCodecs {
  return {
    names: rows.map((r) => r[0]), lossy: rows.map((r) => r[1]),
    ratio: rows.map((r) => new Float64Array(L).fill(r[2])), encodeS: rows.map((r) => new Float64Array(L).fill(r[3])), decodeS: rows.map((r) => new Float64Array(L).fill(r[4])),
  };
}

/** Device runs block 0 (sending 1 MB), edge block 1: only the hop's price differs between codecs. */
function twoTier(): PlanProblem {
  const L = 2;
  const sys = (name: string, tier: PlanTier, c: SystemCodecs): SystemCost => ({
    name, tier, time: Float64Array.from([0.001, tier === 'device' ? 10 : 0.001]), out: Float64Array.from([1e6, 2e5]), mem: new Float64Array(L), codecs: c,
  });
  // zstd-1: half the bytes for 4 ms of encoding on the device and 6 ms of decoding on the edge
  const rows: [string, boolean, number, number, number][] = [['zstd-1', false, 2, 0.004, 0.006], ['int8+zstd-1', true, 8, 0.02, 0.02]];
  return {
    model: 'm', blocks: L, firstLayer: Int32Array.from([0, 1]), lastLayer: Int32Array.from([0, 1]), cutIds: [0, null], inputBytes: 5e6,
    device: [sys('dev', 'device', codecs(L, rows))], edge: [sys('edge', 'edge', codecs(L, rows))], cloud: [],
  };
}

test('the codec choice flips at the break-even bandwidth: below it zstd, above it raw', () => {
  const p = twoTier();
  const be = breakEvenBytesPerS(1e6, 2, 0.004, 0.006);
  assert.equal(be, 5e7); // 0.5 MB saved ÷ 10 ms = 400 Mbit/s
  const best = (mbps: number, codecs?: string[]) => {
    const r = rankPlacements(p, net([link('dev', 'edge', mbps)]), emptyCriteria(), { topK: 1, ...(codecs ? { codecs, lossyCodecs: ['int8+zstd-1'] } : {}) })[0]!;
    assert.deepEqual(r.boundaries, [0], 'the split stays device block 0 → edge block 1');
    return r.transfers[0]!;
  };
  const below = best(be / 125000 * 0.97, ['zstd-1']);
  assert.equal(below.codec, 'zstd-1');
  assert.equal(below.wireBytes, 5e5);
  assert.ok(Math.abs(below.seconds - (0.002 + 0.004 + 5e5 / (be * 0.97) + 0.006)) < 1e-12);
  const above = best(be / 125000 * 1.03, ['zstd-1']);
  assert.equal(above.codec, undefined, 'raw above break-even');
  assert.ok(Math.abs(above.seconds - (0.002 + 1e6 / (be * 1.03))) < 1e-12);
  assert.equal(best(1000, ['zstd-1']).codec, undefined, 'at 1 Gbit/s raw wins');
  assert.equal(best(10).codec, undefined, 'no codec unless asked for');
  const lossy = best(10, ['zstd-1', 'int8+zstd-1']);
  assert.equal(lossy.codec, 'int8+zstd-1'); assert.equal(lossy.lossy, true);
});

test('lossy codecs never price the result\'s return; the return gets the lossless one', () => {
  const p = twoTier();
  const r = rankPlacements(p, net([link('dev', 'edge', 1)]), emptyCriteria(), { topK: 1, returnResult: true, codecs: ['zstd-1', 'int8+zstd-1'], lossyCodecs: ['int8+zstd-1'] })[0]!;
  const back = r.transfers.find((t) => t.kind === 'return')!;
  assert.equal(back.codec, 'zstd-1');
});

test('with codecs the pruned search returns what pricing every placement returns', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const r = mulberry32(seed);
    const L = 2 + Math.floor(r() * 9);
    const names = ['lz4', 'zstd-1', 'int8+zstd-1'];
    const sys = (tier: PlanTier, i: number): SystemCost => {
      const speed = 0.2 + r() * 5;
      const c: SystemCodecs = {
        names, lossy: [false, false, true],
        ratio: names.map(() => Float64Array.from({ length: L }, () => 1 + r() * 6)),
        encodeS: names.map(() => Float64Array.from({ length: L }, () => r() * 0.05 / speed)),
        decodeS: names.map(() => Float64Array.from({ length: L }, () => r() * 0.05 / speed)),
      };
      return {
        name: `${tier}${i}`, tier, time: Float64Array.from({ length: L }, () => r() * 0.05 / speed), out: Float64Array.from({ length: L }, () => Math.floor(r() * 4e6)),
        mem: new Float64Array(L), ...(r() < 0.85 ? { codecs: c } : {}),
      };
    };
    const problem: PlanProblem = {
      model: 'm', blocks: L, firstLayer: Int32Array.from({ length: L }, (_, i) => i), lastLayer: Int32Array.from({ length: L }, (_, i) => i),
      cutIds: Array.from({ length: L }, (_, i) => i), inputBytes: Math.floor(r() * 2e6),
      device: [sys('device', 0), sys('device', 1)], edge: [sys('edge', 0), sys('edge', 1)], cloud: [sys('cloud', 0)],
    };
    const all = [...problem.device, ...problem.edge, ...problem.cloud];
    const links: NetworkLink[] = [];
    for (const a of all) for (const b of all) if (a.tier !== b.tier) links.push(link(a.name, b.name, [1, 10, 50, 100, 1000][Math.floor(r() * 5)]!, Math.round(r() * 50)));
    const network = net(links);
    const opts = { topK: 3, returnResult: r() < 0.5, codecs: r() < 0.5 ? names : ['zstd-1'], lossyCodecs: ['int8+zstd-1'] };
    const got = searchPlacements(problem, network, emptyCriteria(), opts);
    // every placement, priced one by one by the description
    const every: number[] = [];
    for (let d = 0; d < 2; d++) {
      every.push(describePlacement(problem, network, { value: 0, d, e: -1, c: -1, x: L - 1, y: L - 1 }, 0, opts).totalS);
      for (let x = -1; x <= L - 2; x++) every.push(describePlacement(problem, network, { value: 0, d, e: -1, c: 0, x, y: x }, 0, opts).totalS);
      for (let e = 0; e < 2; e++) {
        for (let x = -1; x <= L - 2; x++) every.push(describePlacement(problem, network, { value: 0, d, e, c: -1, x, y: L - 1 }, 0, opts).totalS);
        for (let x = -1; x <= L - 3; x++) for (let y = x + 1; y <= L - 2; y++) every.push(describePlacement(problem, network, { value: 0, d, e, c: 0, x, y }, 0, opts).totalS);
      }
    }
    every.sort((a, b) => a - b);
    got.forEach((g, i) => {
      const described = describePlacement(problem, network, g, i + 1, opts).totalS;
      assert.ok(Math.abs(g.value - described) < 1e-9, `seed ${seed}: search ${g.value} vs description ${described}`);
      assert.ok(Math.abs(g.value - every[i]!) < 1e-9, `seed ${seed} rank ${i + 1}: ${g.value} vs exhaustive ${every[i]}`);
    });
  }
});
