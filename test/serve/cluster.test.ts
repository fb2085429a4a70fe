/** `kerf up placement.json`: N-stage pipelines from a placement, CPU shares as cgroups, no leftovers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareModel, type Prepared } from '../../src/engine/index.js';
import { blockCuts, blocksOf } from '../../src/graph/cuts.js';
import { place, validateCluster, type Placement, type PlaceModel } from '../../src/plan/place/index.js';
import { placementToUp, up } from '../../src/serve/up.js';
import { CGROUP_CPU_ROOT, CpuGroup, cpuQuotaUnavailable, sweepStaleCpuGroups } from '../../src/serve/cpu.js';
import { ocrModel } from '../support/shared.js';
import { KERF, alive, bytesOf, inferBinary, inputsFor, reference, sleep } from './serve-helpers.js';

const MODEL = ocrModel('cls');
const SHAPE = { x: [1, 3, 48, 192] };
const OUT = 'softmax_0.tmp_0';
const noCgroup = cpuQuotaUnavailable();

/** Blocks at single granularity, costed by FLOPs (a stand-in for a profile). */
function placeModel(prep: Prepared): PlaceModel {
  const cuts = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const blocks = blocksOf(prep.model, prep.analysis, cuts).map((b) => ({
    seconds: Math.max(b.flops, 1e5) / 1e9, outputBytes: b.outputBytes, paramBytes: b.paramBytes, ...(b.cutId !== undefined ? { cutId: b.cutId } : {}),
  }));
  return { name: 'cls', inputBytes: prep.analysis.totals.inputBytes, blocks };
}

/** A 3-node chain behind an entry that can hold nothing, so the placement has 3 stages. */
function chainCluster(entryHolds: boolean) {
  return validateCluster({
    // no wire CPU: these tests are about the runtime, and the tiny model's compute is
    // far below what moving its tensors would cost, which would steer the stages elsewhere
    schema: 'kerf.cluster/v1', entry: 'gw', wireCpuMsPerMB: 0,
    nodes: [{ name: 'gw', memoryMB: entryHolds ? 512 : 1, speed: 0.5 }, { name: 'n1', memoryMB: 512, speed: 0.5 }, { name: 'n2', memoryMB: 512, speed: 0.5 }, { name: 'n3', memoryMB: 512, speed: 0.5 }],
    links: [
      { from: 'gw', to: 'n1', bandwidthMbps: 200, rttMs: 2 }, { from: 'n1', to: 'n2', bandwidthMbps: 100, rttMs: 4 },
      { from: 'n2', to: 'n3', bandwidthMbps: 100, rttMs: 4 }, { from: 'n3', to: 'gw', bandwidthMbps: 200, rttMs: 2 },
    ],
  });
}

function gone(pids: number[], ms: number): Promise<boolean> {
  return (async () => {
    const end = performance.now() + ms;
    while (performance.now() < end) { if (pids.every((p) => !alive(p))) return true; await sleep(50); }
    return pids.every((p) => !alive(p));
  })();
}

test('placementToUp: stages become tiers in order, cut ids the cuts, links and CPU shares from the cluster', () => {
  const stage = (i: number, node: string, cutIn: number | null, cutOut: number | null, speed: number) => ({
    index: i, node, blocks: { first: i, last: i }, cutIn, cutOut, inputBytes: 1, outputBytes: 1, memoryBytes: 1, memoryLimitBytes: 64 << 20,
    weightBytes: 0, activationBytes: 0, computeSeconds: 0.01 * (i + 1), speed, sendTo: null, sendSeconds: 0,
  });
  const p = {
    schema: 'kerf.placement/v1', model: { name: 'm', blocks: 3, inputBytes: 4 }, entry: 'gw', objective: 'throughput', solver: 'exact', optimal: true,
    bottleneck: { seconds: 0.03, kind: 'compute', where: 'stage 2' }, throughput: 33, latency: 0.1, lowerBound: 0.03, gap: 0,
    stages: [stage(0, 'b', null, 4, 2), stage(1, 'a', 4, 9, 1), stage(2, 'c', 9, null, 0.5)],
    links: [
      { from: 'gw', to: 'b', bytes: 4, seconds: 0, bandwidthMbps: 50, rttMs: 10 }, { from: 'b', to: 'a', bytes: 1, seconds: 0, bandwidthMbps: 20, rttMs: 4 },
      { from: 'a', to: 'c', bytes: 1, seconds: 0, bandwidthMbps: 10, rttMs: 0 }, { from: 'c', to: 'gw', bytes: 1, seconds: 0, bandwidthMbps: 50, rttMs: 10 },
    ],
    memoryModel: { margin: 1.1, overheadBytes: 0, activations: 'estimated' },
  } as unknown as Placement;
  const o = placementToUp(p, 'm.onnx', { referenceCpus: 0.25, cpus: { c: 0.3, gw: 1 } });
  assert.deepEqual(o.cuts, [4, 9]);
  assert.equal(o.local, false);
  assert.deepEqual(o.tiers!.map((t) => [t.name, t.cpus]), [['gw', 1], ['b', 0.5], ['a', 0.25], ['c', 0.3]]);
  assert.deepEqual(o.tiers!.map((t) => t.profiledS), [undefined, 0.01, 0.02, 0.03]);
  assert.deepEqual(o.links, [{ rateBps: 50e6, delayMs: 5 }, { rateBps: 20e6, delayMs: 2 }, { rateBps: 10e6, delayMs: 0 }]);
  // Entry on stage 0's node: the gateway runs stage 0 itself.
  const local = placementToUp({ ...p, entry: 'b' } as Placement, 'm.onnx');
  assert.equal(local.local, true);
  assert.deepEqual(local.tiers!.map((t) => [t.name, t.cpus]), [['b', 2], ['a', 1], ['c', 0.5]]);
  assert.equal(local.links!.length, 2);
  const bad: [unknown, RegExp][] = [
    [{ ...p, schema: 'kerf.plan/v1' }, /not kerf\.placement\/v1/],
    [{ ...p, stages: [] }, /non-empty/],
    [{ ...p, stages: [stage(0, 'b', null, null, 1), stage(1, 'a', null, null, 1)] }, /no cut id at its end/],
    [{ ...p, stages: [stage(0, 'b', null, 4, 1), stage(1, 'a', 5, null, 1)] }, /starts at cut 5 but stage 0 ends at cut 4/],
    [{ ...p, links: p.links.filter((l) => l.to !== 'a') }, /no link b -> a/],
  ];
  for (const [doc, msg] of bad) assert.throws(() => placementToUp(doc as Placement, 'm.onnx'), (e: Error & { code?: string }) => e.code === 'KERF_ERR_PLACE' && msg.test(e.message));
  assert.throws(() => placementToUp(p, 'm.onnx', { cpus: { zz: 1 } }), /no node 'zz'/);
});

test('CpuGroup: quota written, process added, group removed; stale groups of dead owners swept', { skip: noCgroup ?? false }, async () => {
  const g = await CpuGroup.create('test-group', 0.3, { periodUs: 50_000 });
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  try {
    assert.equal(readFileSync(join(g.path, 'cpu.cfs_quota_us'), 'utf8').trim(), '15000');
    assert.equal(readFileSync(join(g.path, 'cpu.cfs_period_us'), 'utf8').trim(), '50000');
    await g.add(child.pid!);
    assert.deepEqual(await g.procs(), [child.pid]);
    assert.ok(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8').includes(g.path.slice(CGROUP_CPU_ROOT.length)));
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
  await g.remove();
  await g.remove();
  assert.equal(existsSync(g.path), false);
  await assert.rejects(g.add(process.pid), /removed/);
  // An owner that died: its empty group goes, a live owner's stays.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const stale = await CpuGroup.create('stale', 0.5, { owner: dead });
  const mine = await CpuGroup.create('mine', 0.5);
  try {
    assert.ok(sweepStaleCpuGroups().includes(stale.path));
    assert.equal(existsSync(stale.path), false);
    assert.equal(existsSync(mine.path), true);
  } finally {
    await mine.remove();
    await stale.remove();
  }
});

test('kerf up placement.json: 3 stages answer bitwise as the whole model, in cgroups with their shares; SIGTERM removes them all', async () => {
  const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
  const feeds = inputsFor(prep, 3);
  const refs = await Promise.all(feeds.map(async (f) => bytesOf((await reference(prep, f))[OUT]!)));
  const placement = place(placeModel(prep), chainCluster(false));
  assert.equal(placement.stages.length, 3);
  const dir = mkdtempSync(join(tmpdir(), 'kerf-cluster-'));
  const file = join(dir, 'placement.json');
  writeFileSync(file, JSON.stringify(placement));
  const proc = spawn(process.execPath, [KERF, 'up', file, '--model', MODEL, '--input-shape', 'x=1x3x48x192', '--reference-cpus', '0.5', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  try {
    type Ready = { url: string; model: string; processes: { pid: number; name: string; role: string; cpus?: number; cgroup?: string }[]; cpu: { mode: string }; memory: { pid: number; rss: number; limit?: number }[] };
    const ready = await new Promise<Ready>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`kerf up not ready: ${err}`)), 60_000);
      proc.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const line = out.split('\n').find((l) => l.includes('"ready"'));
        if (line) { clearTimeout(t); resolve(JSON.parse(line) as Ready); }
      });
      proc.once('exit', (code) => { clearTimeout(t); reject(new Error(`kerf up exited ${code}: ${err}`)); });
    });
    const pids = ready.processes.map((p) => p.pid);
    assert.deepEqual(ready.processes.map((p) => p.name), ['gw', ...placement.stages.map((s) => s.node)]);
    assert.deepEqual(ready.processes.map((p) => p.role), ['gateway', 'worker', 'worker', 'worker']);
    for (let i = 0; i < feeds.length; i++) {
      const r = await inferBinary(ready.url, ready.model, feeds[i]!);
      assert.equal(r.status, 200, r.error);
      assert.ok(r.outputs[OUT]!.equals(refs[i]!), `request ${i} differs from the whole model`);
    }
    assert.equal(ready.memory.length, 4);
    for (const m of ready.memory.slice(1)) assert.ok(m.rss > 0 && m.limit === 512 * 2 ** 20, JSON.stringify(m));
    const groups = ready.processes.filter((p) => p.cgroup).map((p) => p.cgroup!);
    if (noCgroup) {
      assert.equal(ready.cpu.mode, 'threads');
      assert.match(err, /CPU shares not enforced/);
    } else {
      assert.equal(ready.cpu.mode, 'cgroup');
      assert.equal(groups.length, 3, 'one group per stage, none for a gateway without a share');
      for (const p of ready.processes.slice(1)) {
        assert.equal(p.cpus, 0.25, 'speed 0.5 × reference 0.5 core');
        assert.equal(readFileSync(join(p.cgroup!, 'cpu.cfs_quota_us'), 'utf8').trim(), '25000');
        assert.deepEqual(readFileSync(join(p.cgroup!, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number), [p.pid]);
        assert.match(p.cgroup!, new RegExp(`/kerf-${proc.pid}-\\d-${p.name}$`));
      }
    }
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    process.kill(proc.pid!, 'SIGTERM');
    assert.equal(await exited, 0, err);
    assert.ok(await gone(pids, 5000), `children left running: ${pids.filter(alive).join(', ')}`);
    for (const g of groups) assert.equal(existsSync(g), false, `${g} left behind`);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('up() from a placement whose entry holds stage 0: the gateway runs it in its node\'s group; without cgroups, a notice', async () => {
  const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
  const [feeds] = inputsFor(prep, 1);
  const ref = bytesOf((await reference(prep, feeds!))[OUT]!);
  const cluster = chainCluster(true);
  const placement = place(placeModel(prep), cluster, { maxStages: 2 });
  assert.equal(placement.stages.length, 2);
  const opts = placementToUp(placement, MODEL, { referenceCpus: 1 });
  const local = placement.stages[0]!.node === placement.entry;
  assert.ok(local, 'the entry is the fastest-linked node with memory: it takes stage 0');
  for (const disabled of [false, true]) {
    const lines: string[] = [];
    const h = await up({ ...opts, inputShapes: SHAPE, cpu: { disabled }, log: (l) => lines.push(l) });
    try {
      const r = await inferBinary(h.url, h.name, feeds!);
      assert.equal(r.status, 200, r.error);
      assert.ok(r.outputs[OUT]!.equals(ref));
      assert.equal(h.processes[0]!.role, 'gateway');
      assert.equal(h.processes.length, local ? 2 : 3);
      if (disabled || noCgroup) {
        assert.equal(h.cpu.mode, 'threads');
        assert.match(h.cpu.notice!, /not enforced/);
        assert.ok(lines.some((l) => /not enforced/.test(l)));
        assert.ok(h.processes.every((p) => p.cgroup === undefined));
      } else {
        assert.equal(h.cpu.mode, 'cgroup');
        if (local) assert.equal(h.processes[0]!.cpus, 0.5, 'the gateway runs stage 0 at its node\'s share');
        assert.ok(h.processes.filter((p) => p.role === 'worker').every((p) => p.cpus === 0.5 && existsSync(p.cgroup!)));
      }
    } finally {
      await h.close();
    }
    for (const p of h.processes) {
      assert.equal(alive(p.pid), false);
      if (p.cgroup) assert.equal(existsSync(p.cgroup), false);
    }
  }
});

test('kerf up placement.json: a placement of another model or a bad --cpus is one line and a non-zero exit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-cluster-'));
  try {
    const p = {
      schema: 'kerf.placement/v1', model: { name: 'resnet50', blocks: 51, inputBytes: 602112 }, entry: null,
      stages: [
        { index: 0, node: 'a', blocks: { first: 0, last: 9 }, cutIn: null, cutOut: 9, speed: 1, computeSeconds: 0.1, memoryLimitBytes: 1 },
        { index: 1, node: 'b', blocks: { first: 10, last: 50 }, cutIn: 9, cutOut: null, speed: 1, computeSeconds: 0.1, memoryLimitBytes: 1 },
      ],
      links: [{ from: 'a', to: 'b', bytes: 1, seconds: 0, bandwidthMbps: 10, rttMs: 1 }],
    };
    const file = join(dir, 'placement.json');
    writeFileSync(file, JSON.stringify(p));
    const cases: [string[], RegExp][] = [
      [['up', file, '--model', MODEL, '--input-shape', 'x=1x3x48x192'], /placed 'resnet50' as 51 blocks .* place it from a kerf profile of this model/],
      [['up', file, '--model', MODEL, '--cpus', 'a'], /--cpus 'a': expected NODE=CORES/],
      [['up', file, '--model', MODEL, '--cpus', 'zz=1'], /no node 'zz'/],
      [['up', file, '--model', MODEL, '--reference-cpus', '0'], /--reference-cpus '0': expected a positive number/],
      [['up', file], /model file .*resnet50\.onnx not found/],
    ];
    for (const [args, msg] of cases) {
      const r = spawnSync(process.execPath, [KERF, ...args], { encoding: 'utf8', timeout: 30_000 });
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, msg, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, `stack trace for ${args.join(' ')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
