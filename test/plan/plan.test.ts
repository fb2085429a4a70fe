import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/shared.js';
import { parseNetworkCsv, findNetworkLink, pyRoundInt } from '../../src/plan/network.js';
import { parseNetworkYaml, parseNetwork } from '../../src/plan/network-yaml.js';
import { criteriaFromFlags, parseTierCriteria } from '../../src/plan/criteria.js';
import { problemFromProfiles } from '../../src/plan/problem.js';
import { rankPlacements } from '../../src/plan/search.js';
import { planDocument } from '../../src/plan/document.js';
import type { Profile } from '../../src/profile/types.js';

test('network: Scission CSV (whitespace, header skipped, bandwidth rounded as Python)', () => {
  const n = parseNetworkCsv('source,destination,ping(ms),bandwidth(mbps)\nraspi4,2500,            66.7,  1.6\n\n"a,b",c,1,0.5\n');
  assert.equal(n.links.length, 2);
  assert.deepEqual([n.links[0]!.rttS, n.links[0]!.bytesPerS], [66.7 / 1000, 200000]); // float(ms) / 1000, as Python
  assert.equal(n.links[1]!.from, 'a,b');
  assert.equal(n.links[1]!.bytesPerS, 62500);
  // round(0.000004 × 125000) is 0 in Python, a division by zero later: refuse it up front
  assert.throws(() => parseNetworkCsv('h\npi,e,1,0.000004\n', 'n.csv'), /n\.csv line 2: bandwidth\(mbps\) 0\.000004 must be positive/);
});

test('network: YAML links, reverse lookup, errors name the field', () => {
  const n = parseNetwork('links:\n  - {from: pi, to: edge, rttMs: 20, bandwidthMbps: 8}\n', 'net.yaml');
  assert.equal(findNetworkLink(n, 'edge', 'pi')!.bytesPerS, 1e6);
  assert.equal(findNetworkLink(n, 'pi', 'cloud'), undefined);
  assert.throws(() => parseNetworkYaml('links:\n  - {from: pi, to: e, rttMs: fast, bandwidthMbps: 8}\n', 'n.yaml'), /n\.yaml: links\[0\]\.rttMs must be a round-trip time in milliseconds ≥ 0, got "fast"/);
  assert.throws(() => parseNetworkYaml('{}\n', 'n.yaml'), /n\.yaml: expected 'links:'/);
  assert.throws(() => parseNetworkCsv('h\npi,e,abc,1\n', 'n.csv'), /n\.csv line 2 ping\(ms\): 'abc' is not a number/);
  assert.equal(pyRoundInt(2.5), 2);
  assert.equal(pyRoundInt(3.5), 4);
});

test('criteria: Scission classification of items, and malformed values', () => {
  const t = parseTierCriteria('3, !4, -1, !-1, pi, !gpu', '-d');
  assert.deepEqual(t.includeLayers, [3, -1]);
  assert.deepEqual(t.excludeLayers, [4, -1]);
  assert.deepEqual(t.includeSystems, ['pi']);
  assert.deepEqual(t.excludeSystems, ['gpu']);
  assert.throws(() => parseTierCriteria('1,,2', '-e'), (e: Error & { code?: string }) => e.code === 'KERF_ERR_CRITERIA' && /-e '1,,2': empty item/.test(e.message));
  assert.throws(() => parseTierCriteria('!', '-c'), /names no system/);
  assert.throws(() => parseTierCriteria('-5', '-c'), /'-5' is not a layer/);
  const c = criteriaFromFlags({ deviceTime: '50%', edgeTime: '0.25', deviceUpload: '0.5', privacy: '3', maxMemory: ['edge=100'] });
  assert.equal(c.device.maxTimePct, 50);
  assert.equal(c.edge.maxTimeS, 0.25);
  assert.equal(c.device.maxUploadBytes, 500000);
  assert.equal(c.minDeviceBlocks, 3);
  assert.equal(c.edge.maxMemoryBytes, 100e6);
  assert.throws(() => criteriaFromFlags({ cloudTime: '5 s' }), /--cloud-time '5 s'/);
  assert.throws(() => criteriaFromFlags({ maxMemory: ['gpu=1'] }), /--max-memory 'gpu=1'/);
  assert.throws(() => criteriaFromFlags({ privacy: 'all' }), /--privacy 'all'/);
});

/** A kerf profile of a 6-block model with cut ids 10, 20, … at block ends. */
function profile(system: string, tier: 'device' | 'edge' | 'cloud', speed: number, model = 'tiny'): Profile {
  const blocks = [0, 1, 2, 3, 4, 5].map((i) => ({
    index: i, firstLayer: i * 3, lastLayer: i * 3 + 2, ...(i < 5 ? { cutId: (i + 1) * 10 } : {}),
    latency: { median: (0.01 * (i + 1)) / speed, p90: 0, min: 0, spread: 0, runs: 5 },
    outputBytes: [800_000, 400_000, 200_000, 100_000, 50_000, 4_000][i]!, paramBytes: 1_000_000 * (i + 1),
  }));
  return { schema: 'kerf.profile/v1', model: { name: model, inputBytes: 600_000 }, system: { name: system, tier }, granularity: 'single', source: 'kerf', blocks };
}

const NET_YAML = `links:
  - {from: pi, to: edge1, rttMs: 5, bandwidthMbps: 40}
  - {from: edge1, to: cloud1, rttMs: 20, bandwidthMbps: 200}
  - {from: pi, to: cloud1, rttMs: 40, bandwidthMbps: 10}
`;

test('plan: cuts, tiers and transfers of kerf profiles; load factor, privacy, return-result, throughput', () => {
  const profiles = [profile('pi', 'device', 1), profile('edge1', 'edge', 5), profile('cloud1', 'cloud', 50)];
  const net = parseNetworkYaml(NET_YAML);
  const problem = problemFromProfiles(profiles, 'tiny');
  const [best] = rankPlacements(problem, net, undefined, { topK: 3 });
  assert.ok(best);
  // cuts are the profile's cut ids at the tier boundaries
  best.boundaries.forEach((b, i) => assert.equal(best.cuts[i], (b + 1) * 10));
  const sumT = best.tiers.reduce((s, t) => s + t.computeS, 0) + best.transfers.reduce((s, t) => s + t.seconds, 0);
  assert.ok(Math.abs(sumT - best.totalS) < 1e-12);
  // a heavily loaded cloud pushes work off it
  const loaded = problemFromProfiles(profiles, 'tiny', { load: { cloud1: 1000 } });
  const [b2] = rankPlacements(loaded, net, undefined, { topK: 1 });
  assert.ok(!b2!.tiers[2]!.blocks || b2!.tiers[2]!.blocks[1] - b2!.tiers[2]!.blocks[0] < best.tiers[2]!.blocks![1] - best.tiers[2]!.blocks![0] || b2!.tiers[2]!.system === null);
  // privacy keeps blocks on the device
  const [p3] = rankPlacements(problem, net, criteriaFromFlags({ privacy: '3' }), { topK: 1 });
  assert.ok(p3!.tiers[0]!.blocks![1] >= 2);
  // the result's return costs time
  const [r] = rankPlacements(problem, net, undefined, { topK: 1, returnResult: true });
  assert.ok(r!.transfers.some((t) => t.kind === 'return' && t.to === 'pi'));
  assert.ok(r!.totalS > best.totalS);
  const [tp] = rankPlacements(problem, net, undefined, { topK: 1, objective: 'throughput' });
  assert.equal(tp!.objectiveS, tp!.bottleneckS);
  assert.ok(tp!.bottleneckS <= best.bottleneckS);
  const doc = planDocument(rankPlacements(problem, net, undefined, { topK: 2 }), net, { model: 'tiny', objective: 'latency', returnResult: false, inputBytes: 600_000 });
  assert.equal(doc.schema, 'kerf.plan/v1');
  assert.deepEqual(doc.cuts, best.cuts);
  assert.equal(doc.ranked.length, 2);
  assert.ok(Object.isFrozen(doc.tiers[0]));
});

test('plan: profiles of another model or shape are refused, naming the file', () => {
  assert.throws(() => problemFromProfiles([profile('pi', 'device', 1), profile('e', 'edge', 1, 'other')], 'tiny', { labels: ['a.json', 'b.json'] }),
    (e: Error & { code?: string }) => e.code === 'KERF_ERR_PROFILE' && /b\.json: is a profile of model 'other', not 'tiny'/.test(e.message));
  const short = profile('e', 'edge', 1);
  short.blocks.pop();
  assert.throws(() => problemFromProfiles([profile('pi', 'device', 1), short], 'tiny'), /has 5 blocks but .* has 6/);
  assert.throws(() => problemFromProfiles([profile('pi', 'device', 1)], 'tiny', { load: { ghost: 2 } }), /system 'ghost', which has no profile/);
});

function kerf(args: string[], cwd: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'kerf.js'), ...args], { encoding: 'utf8', cwd });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('kerf plan CLI: table, plan.json, and one-line errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-plan-'));
  try {
    for (const p of [profile('pi', 'device', 1), profile('edge1', 'edge', 5), profile('cloud1', 'cloud', 50)]) {
      writeFileSync(join(dir, `tiny.${p.system.name}.profile.json`), JSON.stringify(p));
    }
    writeFileSync(join(dir, 'net.yaml'), NET_YAML);
    const ok = kerf(['plan', 'tiny', '--profiles', '.', '--network', 'net.yaml', '-e', '!-1'], dir);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^#\s+total ms\s+MB sent\s+device\s+edge\s+cloud/m);
    const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8'));
    assert.equal(plan.schema, 'kerf.plan/v1');
    assert.ok(plan.tiers[1].system === 'edge1');
    assert.ok(Array.isArray(plan.cuts) && plan.cuts.every((c: number) => c % 10 === 0));
    const js = kerf(['plan', 'tiny', '--profiles', '.', '--network', 'net.yaml', '--json', '-o', 'p2.json', '--objective', 'throughput'], dir);
    assert.equal(JSON.parse(js.out).objective, 'throughput');
    const par = kerf(['plan', 'tiny', '--profiles', '.', '--network', 'net.yaml', '--pareto', '--return-result', '-o', 'p3.json'], dir);
    assert.equal(par.code, 0, par.err);
    assert.match(par.out, /Pareto front: \d+ placements? no other beats on latency, bottleneck and bytes leaving the device\n#\s+latency ms\s+bottleneck ms/);
    const front = JSON.parse(readFileSync(join(dir, 'p3.json'), 'utf8')).pareto;
    assert.ok(front.length >= 2 && front.some((p: { tiers: { blocks: unknown }[] }) => !p.tiers[1]!.blocks && !p.tiers[2]!.blocks), 'all on the device sends nothing: it is on the front');
    writeFileSync(join(dir, 'partial.yaml'), 'links:\n  - {from: pi, to: edge1, rttMs: 5, bandwidthMbps: 40}\n');
    const miss = kerf(['plan', 'tiny', '--profiles', '.', '--network', 'partial.yaml'], dir);
    assert.equal(miss.code, 1);
    assert.match(miss.err, /^kerf: partial\.yaml: no link mentions cloud system 'cloud1'\n$/);
    const unk = kerf(['plan', 'huge', '--profiles', '.', '--network', 'net.yaml'], dir);
    assert.match(unk.err, /unknown model 'huge': .*profiles there are of: tiny/);
    const crit = kerf(['plan', 'tiny', '--profiles', '.', '--network', 'net.yaml', '--device-time', 'x%'], dir);
    assert.match(crit.err, /--device-time 'x%'/);
    writeFileSync(join(dir, 'tiny.alien.profile.json'), JSON.stringify(profile('alien', 'edge', 1, 'resnet')));
    const alien = kerf(['plan', 'tiny', '--profiles', '.', '--network', 'net.yaml'], dir);
    assert.match(alien.err, /tiny\.alien\.profile\.json: is a profile of model 'resnet', not 'tiny'/);
    for (const r of [miss, unk, crit, alien]) assert.doesNotMatch(r.err, /\n\s+at /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
