import { test } from 'node:test';
import assert from 'node:assert/strict';
import { searchPlacements, describePlacement } from '../../src/plan/search.js';
import { emptyCriteria } from '../../src/plan/criteria.js';
import type { Network, NetworkLink, PlanCriteria, PlanProblem, PlanSearchOptions, SystemCost, PlanTier } from '../../src/plan/types.js';
import { bruteForce } from './brute.js';
import { mulberry32 } from '../../src/util/prng.js';

const rng = mulberry32;

interface Case { problem: PlanProblem; net: Network; criteria: PlanCriteria; opts: PlanSearchOptions }

function randomCase(seed: number, budget: number): Case {
  const r = rng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)]!;
  const nd = int(1, 4), ne = r() < 0.1 ? 0 : int(1, 4), nc = r() < 0.1 ? 0 : int(1, 4);
  const triples = nd * Math.max(ne, 1) * Math.max(nc, 1);
  const maxL = Math.max(1, Math.min(300, Math.floor(Math.sqrt((2 * budget) / triples))));
  const L = r() < 0.15 ? int(1, 3) : int(1, maxL);
  const firstLayer = new Int32Array(L), lastLayer = new Int32Array(L);
  let layer = 0;
  for (let i = 0; i < L; i++) { firstLayer[i] = layer; layer += int(0, 3); lastLayer[i] = layer; layer++; }
  const zeroRate = r() < 0.5 ? 0.3 : 0;
  const sys = (tier: PlanTier, i: number): SystemCost => {
    const speed = 0.2 + r() * 5;
    const time = new Float64Array(L), out = new Float64Array(L), mem = new Float64Array(L);
    for (let b = 0; b < L; b++) {
      time[b] = r() < zeroRate ? 0 : Math.round(r() * 1e6) / 1e6 / speed * 0.05;
      out[b] = int(0, 4_000_000);
      mem[b] = int(0, 50_000_000);
    }
    return { name: `${tier}${i}`, tier, time, out, mem };
  };
  const problem: PlanProblem = {
    model: 'm', blocks: L, firstLayer, lastLayer, cutIds: Array.from({ length: L }, (_, i) => i),
    inputBytes: int(0, 2_000_000),
    device: Array.from({ length: nd }, (_, i) => sys('device', i)),
    edge: Array.from({ length: ne }, (_, i) => sys('edge', i)),
    cloud: Array.from({ length: nc }, (_, i) => sys('cloud', i)),
  };
  const links: NetworkLink[] = [];
  const all = [...problem.device, ...problem.edge, ...problem.cloud];
  for (const a of all) for (const b of all) {
    if (a.tier === b.tier || r() < 0.05) continue;
    if (r() < 0.5 && links.some((l) => l.from === b.name && l.to === a.name)) continue; // some links only one way
    const rttMs = Math.round(r() * 100), mbps = pick([1, 1.6, 10, 20, 50, 100, 1000]);
    links.push({ from: a.name, to: b.name, rttMs, bandwidthMbps: mbps, rttS: rttMs / 1000, bytesPerS: mbps * 125000 });
  }
  const net: Network = { schema: 'kerf.network/v1', format: 'yaml', links };
  const criteria = emptyCriteria();
  for (const t of ['device', 'edge', 'cloud'] as const) {
    const tc = criteria[t];
    if (r() < 0.35) {
      for (let k = int(1, 2); k > 0; k--) {
        const u = r();
        if (u < 0.15) tc.includeLayers.push(-1);
        else if (u < 0.35) tc.excludeLayers.push(-1);
        else if (u < 0.5) tc.includeLayers.push(int(0, layer));
        else if (u < 0.65) tc.excludeLayers.push(int(0, layer));
        else if (u < 0.85) tc.includeSystems.push(`${t}${int(0, 4)}`);
        else tc.excludeSystems.push(`${t}${int(0, 4)}`);
      }
    }
    if (t !== 'cloud' && r() < 0.15) tc.maxUploadBytes = int(0, 3_000_000);
    if (r() < 0.1) tc.maxTimeS = r() * 0.5;
    else if (r() < 0.1) tc.maxTimePct = r() * 100;
    if (r() < 0.1) tc.maxMemoryBytes = int(0, 400_000_000);
  }
  if (r() < 0.15) criteria.minDeviceBlocks = int(0, Math.max(1, Math.floor(L / 2)));
  const quirks = r() < 0.3;
  const opts: PlanSearchOptions = {
    topK: pick([1, 2, 5, 10]),
    objective: r() < 0.3 ? 'throughput' : 'latency',
    returnResult: !quirks && r() < 0.3,
    scissionQuirks: quirks,
  };
  return { problem, net, criteria, opts };
}

const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * (1 + Math.abs(a));

function check(seed: number, budget: number): void {
  const { problem, net, criteria, opts } = randomCase(seed, budget);
  const fast = searchPlacements(problem, net, criteria, opts);
  const all = bruteForce(problem, net, criteria, { ...opts, topK: Infinity });
  const want = all.slice(0, opts.topK);
  const ctx = `seed ${seed}: L=${problem.blocks} ${problem.device.length}/${problem.edge.length}/${problem.cloud.length} ${JSON.stringify(opts)}`;
  assert.equal(fast.length, want.length, `${ctx}: count`);
  const byKey = new Map(all.map((s) => [`${s.d}|${s.e}|${s.c}|${s.x}|${s.y}`, s.value]));
  const keys = new Set<string>();
  fast.forEach((f, i) => {
    assert.ok(close(f.value, want[i]!.value), `${ctx}: rank ${i + 1} value ${f.value} vs brute ${want[i]!.value}`);
    const k = `${f.d}|${f.e}|${f.c}|${f.x}|${f.y}`;
    assert.ok(byKey.has(k), `${ctx}: kerf returned ${k}, which brute force rejects`);
    assert.ok(close(f.value, byKey.get(k)!), `${ctx}: ${k} valued ${f.value}, brute ${byKey.get(k)}`);
    assert.ok(!keys.has(k), `${ctx}: duplicate ${k}`);
    keys.add(k);
    const p = describePlacement(problem, net, f, i + 1, opts);
    assert.ok(close(p.objectiveS, f.value), `${ctx}: described ${p.objectiveS} vs ${f.value}`);
  });
}

test('search equals brute force on 250 random profiles, criteria and objectives', () => {
  for (let seed = 1; seed <= 250; seed++) check(seed, 40_000);
});

test('search equals brute force on larger profiles (up to 300 blocks)', () => {
  for (let seed = 1001; seed <= 1012; seed++) check(seed, 400_000);
});

test('ties (exact in binary) rank by system and block indices, as brute force', () => {
  const L = 40;
  const flat = (tier: PlanTier, name: string): SystemCost => ({
    name, tier, time: new Float64Array(L).fill(0.25), out: new Float64Array(L).fill(1024), mem: new Float64Array(L),
  });
  const first = Int32Array.from({ length: L }, (_, i) => i);
  const problem: PlanProblem = {
    model: 'flat', blocks: L, firstLayer: first, lastLayer: first, cutIds: [], inputBytes: 1024,
    device: [flat('device', 'd')], edge: [flat('edge', 'e')], cloud: [flat('cloud', 'c')],
  };
  const mk = (from: string, to: string): NetworkLink => ({ from, to, rttMs: 0, bandwidthMbps: 8.388608, rttS: 0, bytesPerS: 1048576 });
  const net: Network = { schema: 'kerf.network/v1', format: 'yaml', links: [mk('d', 'e'), mk('e', 'c'), mk('d', 'c')] };
  const fast = searchPlacements(problem, net, emptyCriteria(), { topK: 7 });
  const want = bruteForce(problem, net, emptyCriteria(), { topK: 7 });
  assert.deepEqual(fast.map((f) => [f.d, f.e, f.c, f.x, f.y]), want.map((f) => [f.d, f.e, f.c, f.x, f.y]));
});
