/**
 * Plans are portable and checked once: kerf plan records the model's path (relative to the
 * plan) and sha256; kerf up, kerf split --plan and kerf repartition --to read them through the
 * same validator; kerf up from another folder finds the model, refuses another file there,
 * and the running pipeline shows the plan, every tier's metrics and changeable links.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelBuilder, Rng } from '../../src/graph/builder.js';
import { ROOT, ocrModel } from '../support/shared.js';
import { alive, httpRequest, inferBinary, sleep } from '../serve/serve-helpers.js';
import { prepareModel } from '../../src/engine/index.js';
import { inputsFor } from '../serve/serve-helpers.js';

const KERF = join(ROOT, 'bin', 'kerf.js');
const kerf = (args: string[], cwd: string) => spawnSync(process.execPath, [KERF, ...args], { encoding: 'utf8', cwd, timeout: 60_000 });
const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

function tinyModel(file: string, seed = 1): void {
  const b = new ModelBuilder({ opset: 13, name: 'tiny' });
  const r = new Rng(seed);
  b.input('x', 'float32', [1, 3, 8, 8]);
  b.initializer('w', 'float32', [4, 3, 3, 3], r.he([4, 3, 3, 3]));
  b.initializer('w2', 'float32', [4, 4, 3, 3], r.he([4, 4, 3, 3]));
  b.node('Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1] });
  b.node('Relu', ['c'], ['r']);
  b.node('Conv', ['r', 'w2'], ['c2'], { pads: [1, 1, 1, 1] });
  b.node('Relu', ['c2'], ['y']);
  b.output('y', 'float32', [1, 4, 8, 8]);
  writeFileSync(file, b.toBytes());
}

function profile(system: string, tier: string, speed: number): unknown {
  const blocks = [0, 1, 2].map((i) => ({
    index: i, firstLayer: i, lastLayer: i, ...(i < 2 ? { cutId: i + 1 } : {}),
    latency: { median: 0.01 / speed, p90: 0.011 / speed, min: 0.009 / speed, spread: 0.1, runs: 5 }, outputBytes: 1000, paramBytes: 100,
  }));
  return { schema: 'kerf.profile/v1', model: { name: 'tiny', inputBytes: 768 }, system: { name: system, tier }, granularity: 'single', source: 'kerf', blocks };
}

test('kerf plan records modelPath and modelSha256; split --plan and repartition --to use the one validator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-portable-'));
  try {
    for (const d of ['models', 'plans', 'profiles', 'elsewhere']) mkdirSync(join(dir, d));
    tinyModel(join(dir, 'models', 'tiny.onnx'));
    for (const [s, t, v] of [['pi', 'device', 1], ['box', 'edge', 5], ['dc', 'cloud', 50]] as const) {
      writeFileSync(join(dir, 'profiles', `tiny.${s}.profile.json`), JSON.stringify(profile(s, t, v)));
    }
    writeFileSync(join(dir, 'net.yaml'), 'links:\n  - {from: pi, to: box, rttMs: 5, bandwidthMbps: 1}\n  - {from: box, to: dc, rttMs: 20, bandwidthMbps: 100}\n  - {from: pi, to: dc, rttMs: 40, bandwidthMbps: 1}\n');
    const r = kerf(['plan', 'models/tiny.onnx', '--profiles', 'profiles', '--network', 'net.yaml', '-o', 'plans/plan.json', '-d', '!-1', '-e', '!-1', '-c', '!-1'], dir);
    assert.equal(r.status, 0, r.stderr);
    const plan = JSON.parse(readFileSync(join(dir, 'plans', 'plan.json'), 'utf8'));
    assert.equal(plan.modelPath, '../models/tiny.onnx');
    assert.equal(plan.modelSha256, sha(join(dir, 'models', 'tiny.onnx')));
    assert.deepEqual(plan.cuts, [1, 2]);
    // split --plan from another folder: the model given is the one planned for.
    const ok = kerf(['split', '../models/tiny.onnx', '--plan', '../plans/plan.json', '-o', 'parts'], join(dir, 'elsewhere'));
    assert.equal(ok.status, 0, ok.stderr);
    // a different file at that path is refused, naming both
    tinyModel(join(dir, 'models', 'other.onnx'), 2);
    const other = kerf(['split', 'models/other.onnx', '--plan', 'plans/plan.json', '-o', 'parts2'], dir);
    assert.equal(other.status, 1);
    assert.match(other.stderr, /^kerf: plans\/plan\.json: made for another file than models\/other\.onnx: the plan's 'modelSha256' is [0-9a-f]{12}…, models\/other\.onnx has sha256 [0-9a-f]{12}… \(the plan was made from \.\.\/models\/tiny\.onnx\)/);
    // malformed plans: split --plan and repartition --to refuse them the same way, naming the field
    const bad: [string, (p: Record<string, unknown>) => void, RegExp][] = [
      ['v9.json', (p) => { p.schema = 'kerf.plan/v9'; }, /field 'schema' is 'kerf\.plan\/v9'/],
      ['tiers.json', (p) => { p.tiers = 'x'; }, /field 'tiers' must be a list of the 3 tiers/],
      ['cuts.json', (p) => { p.cuts = [1]; }, /field 'cuts' has 1 cut id \(1\) but the tiers use 3 tiers/],
    ];
    for (const [name, edit, msg] of bad) {
      const p = JSON.parse(JSON.stringify(plan));
      edit(p);
      writeFileSync(join(dir, 'plans', name), JSON.stringify(p));
      const s = kerf(['split', 'models/tiny.onnx', '--plan', `plans/${name}`, '-o', `p-${name}`], dir);
      const q = kerf(['repartition', '--to', `plans/${name}`, '--url', 'http://127.0.0.1:1'], dir);
      for (const [verb, res] of [['split', s], ['repartition', q]] as const) {
        assert.equal(res.status, 1, `${verb} ${name}: ${res.stderr}`);
        assert.match(res.stderr, new RegExp(`^kerf: plans/${name.replace('.', '\\.')}: ${msg.source}`), `${verb} ${name}`);
        assert.equal(res.stderr.split('\n').length, 2, `${verb} ${name}: one line`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kerf up plan.json from another folder: model found by modelPath, the plan shown, every tier in /metrics, links changeable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-portable-up-'));
  mkdirSync(join(dir, 'models'));
  mkdirSync(join(dir, 'plans'));
  const model = join(dir, 'models', 'cls.onnx');
  copyFileSync(ocrModel('cls'), model);
  const t = (tier: string, system: string, blocks: [number, number]) => ({ tier, system, blocks, layers: blocks, computeS: 0.002, sendsBytes: 100 });
  const plan = {
    schema: 'kerf.plan/v1', model: 'cls', modelPath: '../models/cls.onnx', modelSha256: sha(model), objective: 'latency', returnResult: false, inputBytes: 1,
    totalS: 0.01, bottleneckS: 0.004, objectiveS: 0.01, bytesSent: 200, cuts: [20, 43], boundaries: [3, 9],
    tiers: [t('device', 'pi', [0, 3]), t('edge', 'box', [4, 9]), t('cloud', 'dc', [10, 20])],
    transfers: [{ from: 'pi', to: 'box', bytes: 100, seconds: 0.001, kind: 'forward' }, { from: 'box', to: 'dc', bytes: 100, seconds: 0.001, kind: 'forward' }],
    network: { links: [{ from: 'pi', to: 'box', rttMs: 2, bandwidthMbps: 200 }, { from: 'box', to: 'dc', rttMs: 4, bandwidthMbps: 500 }] },
    criteria: {}, ranked: [],
  };
  writeFileSync(join(dir, 'plans', 'plan.json'), JSON.stringify(plan));
  const proc = spawn(process.execPath, [KERF, 'up', join(dir, 'plans', 'plan.json'), '--input-shape', 'x=1x3x48x192', '--json'], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  type Ready = { url: string; model: string; processes: { pid: number; name: string }[]; links: { from: string; to: string; control: string; config: { rateBps: number } }[] };
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kerf up not ready: ${err}`)), 60_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('"ready"'));
      if (line) { clearTimeout(timer); resolve(JSON.parse(line) as Ready); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`kerf up exited ${code}: ${err}`)); });
  });
  const pids = ready.processes.map((p) => p.pid);
  try {
    assert.deepEqual(ready.processes.map((p) => p.name), ['device(pi)', 'edge(box)', 'cloud(dc)']);
    // GET /v1/partition shows the plan it started from
    const st = JSON.parse((await httpRequest(`${ready.url}/v1/partition`, 'GET')).body.toString()) as { plan: { model: string; totalS: number } | null; cuts: number[] };
    assert.deepEqual([st.cuts, st.plan?.model, st.plan?.totalS], [[20, 43], 'cls', 0.01]);
    // every tier's series on the gateway's /metrics, labelled by tier
    const prep = await prepareModel(model, { inputShapes: { x: [1, 3, 48, 192] } });
    assert.equal((await inferBinary(ready.url, ready.model, inputsFor(prep, 1)[0]!)).status, 200);
    const metrics = (await httpRequest(`${ready.url}/metrics`, 'GET')).body.toString();
    assert.match(metrics, /kerf_gateway_requests_total/);
    for (const tier of ['edge(box)', 'cloud(dc)']) assert.match(metrics, new RegExp(`kerf_worker_requests_total\\{tier="${tier.replace(/[()]/g, '\\$&')}",segment="[^"]+",outcome="ok"\\} 1`), metrics);
    assert.equal(metrics.match(/^# TYPE kerf_worker_requests_total /gm)?.length, 1, 'one family, several tiers');
    // the links: listed with their control API, changeable while serving
    assert.deepEqual(ready.links.map((l) => [l.from, l.to, l.config.rateBps]), [['device(pi)', 'edge(box)', 200e6], ['edge(box)', 'cloud(dc)', 500e6]]);
    const put = await httpRequest(`${ready.links[0]!.control}/config`, 'PUT', JSON.stringify({ rate: '5mbit', delay: '3ms' }));
    assert.equal(put.status, 200, put.body.toString());
    assert.equal((JSON.parse(put.body.toString()) as { rateBps: number }).rateBps, 5e6);
  } finally {
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    process.kill(proc.pid!, 'SIGTERM');
    assert.equal(await exited, 0);
    for (let i = 0; i < 100 && pids.some(alive); i++) await sleep(50);
    assert.deepEqual(pids.filter(alive), []);
  }
  // Another file at modelPath: refused before anything starts, in one line.
  tinyModel(model);
  const r = spawnSync(process.execPath, [KERF, 'up', join(dir, 'plans', 'plan.json')], { encoding: 'utf8', cwd: tmpdir(), timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^kerf: .*plans\/plan\.json: made for another file than .*models\/cls\.onnx: the plan's 'modelSha256' is/);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.equal(r.stdout, '');
  rmSync(dir, { recursive: true, force: true });
});
