import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { evaluateNetwork, evaluateOffline, formatOfflineReport, loadAdaptiveDnn, parseWeightsFile, type MeasuredCut, type MeasuredNetwork } from '../../src/adapt/index.js';
import { ROOT, sharedPath } from '../support/shared.js';
import { rng } from './rng.js';

/** A synthetic AdaptiveDNN-like network: 12 cuts, edge work grows with the cut, cloud shrinks,
 * transfer bytes shrink; loads multiply edge and cloud times; every number ±10 % noise. */
function synthetic(seed: number): MeasuredNetwork {
  const r = rng(seed);
  const K = 12;
  const rate = [50, 25, 10];
  const load = [1, 1.6, 2.5];
  const conditions = new Map<string, MeasuredCut[]>();
  for (let code = 0; code < 243; code++) {
    const d = code.toString(3).padStart(5, '0');
    const A = +d[0]!, B = +d[1]!, E = +d[4]!;
    const rows: MeasuredCut[] = [];
    for (let k = 1; k <= K; k++) {
      const noise = () => 1 + 0.2 * (r() - 0.5);
      const edgeS = 0.02 * k * load[E]! * noise();
      const cloudS = 0.03 * (K + 1 - k) * load[B]! * noise();
      const bytes = 2e6 / k;
      const tr = (0.004 + (bytes * 8) / (rate[A]! * 1e6)) * noise();
      rows.push({ cut: k, edgeS, cloudS, totalS: edgeS + cloudS + tr });
    }
    conditions.set(d, rows);
  }
  return { name: 'synthetic', conditions };
}

test('offline: on synthetic data with real load effects, load-aware beats bandwidth-only', () => {
  const rep = evaluateNetwork(synthetic(1));
  assert.equal(rep.conditions, 243);
  const p = rep.policies;
  assert.ok(p['load-aware'].meanRegret < p.bandwidth.meanRegret, JSON.stringify(p));
  assert.ok(p.bandwidth.worstRegret >= p.bandwidth.meanRegret);
  assert.ok(rep.loadAwareMoved > 0 && rep.loadAwareBetter > rep.loadAwareWorse);
});

test('offline: no policy reads the condition it is evaluated on', () => {
  const net = synthetic(2);
  const before = evaluateNetwork(net, { details: true }).details!;
  const r = rng(99);
  // Scramble every number of a few conditions: the choices there must not change.
  const victims = ['01210', '22222', '10102', '02020'];
  const scrambled: MeasuredNetwork = { name: net.name, conditions: new Map(net.conditions) };
  for (const v of victims) {
    scrambled.conditions.set(v, net.conditions.get(v)!.map((c) => ({ cut: c.cut, edgeS: r(), cloudS: r(), totalS: 3 * r() })));
  }
  const after = evaluateNetwork(scrambled, { details: true }).details!;
  for (const v of victims) {
    const b = before.find((x) => x.condition === v)!, a = after.find((x) => x.condition === v)!;
    for (const p of ['bandwidth', 'load-aware', 'load-aware-naive'] as const) assert.equal(a.cuts[p], b.cuts[p], `${v} ${p}`);
  }
});

test('offline: weights file errors name the file and line', () => {
  assert.deepEqual(parseWeightsFile('0.3 0.1 0.1 2\n0.5 0.2 0.2 1\n', 'w.txt').map((r) => r.cut), [1, 2]);
  assert.throws(() => parseWeightsFile('0.3 0.1 0.1 2\n0.5 x 0.2 1\n', 'w.txt'), /w\.txt:2/);
  assert.throws(() => parseWeightsFile('\n', 'w.txt'), /no cuts/);
  assert.throws(() => evaluateNetwork({ name: 'n', conditions: new Map([['10000', [{ cut: 1, edgeS: 1, cloudS: 1, totalS: 3 }]]]) }), /00000/);
});

test('offline: AdaptiveDNN measurements — load-aware mean regret below bandwidth-only, pooled and per network', () => {
  const dir = sharedPath('adaptivednn/benchmarking_outputs');
  if (!dir) return;
  const rep = evaluateOffline(loadAdaptiveDnn(dir));
  assert.equal(rep.networks.length, 3);
  assert.equal(rep.all.conditions, 729);
  assert.ok(rep.all.policies['load-aware'].meanRegret < rep.all.policies.bandwidth.meanRegret);
  for (const n of rep.networks) {
    assert.ok(n.policies['load-aware'].meanRegret < n.policies.bandwidth.meanRegret, `${n.network}: ${JSON.stringify(n.policies)}`);
  }
  // the robustness matters: one noisy probe does worse than the robust estimator
  assert.ok(rep.all.policies['load-aware-naive'].meanRegret > rep.all.policies['load-aware'].meanRegret);
  assert.match(formatOfflineReport(rep), /^alexnet\s+243/m);
});

test('kerf bench adapt-offline: a missing directory is one line and exit 1', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'kerf.js'), 'bench', 'adapt-offline', '--data', '/nonexistent/dir'], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^kerf: \/nonexistent\/dir: cannot read/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  const u = spawnSync(process.execPath, [join(ROOT, 'bin', 'kerf.js'), 'bench', 'adapt-offline', '--probes', 'x'], { encoding: 'utf8' });
  assert.equal(u.status, 2);
});
