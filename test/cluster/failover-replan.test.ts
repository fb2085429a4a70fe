/**
 * `kerf up … --hosts … --failover` re-plans the way the deployment was planned, on
 * network-namespace hosts each running its own `kerf agent`, under load:
 *
 * - a placement (with --cluster and --profile, what kerf place was given; --standby): the
 *   host of the last stage is killed and the chain becomes kerf place's choice on the hosts
 *   left — other cuts than the spare re-planner's (which would keep the split);
 * - a 3-tier plan (no standby): the edge host is killed and the chain becomes the best of the
 *   plan's ranked placements without the edge — not the spare re-planner's join; then the
 *   entry host is killed: reported plainly as the gateway's loss, nothing re-planned.
 *
 * 0 failed, 0 lost, 0 answered twice, every answer bitwise the unsplit model's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareModel } from '../../src/engine/index.js';
import { blockCuts, blocksOf } from '../../src/graph/cuts.js';
import { place, placeModelFromProfiles, validateCluster } from '../../src/plan/place/index.js';
import { placementLayout, spareReplanner } from '../../src/cluster/failover.js';
import type { Profile } from '../../src/profile/types.js';
import { TestNet, netnsUnavailable } from '../support/netns.js';
import { ocrModel } from '../support/shared.js';
import { exactLoad } from '../support/exact-load.js';
import { inputsFor, reference, sleep, thirds } from '../serve/serve-helpers.js';
import { agentHosts, kerfUp, onlyAgentsLeft, startAgent } from './helpers.js';

const MODEL = ocrModel('cls');
const SHAPE = { x: [1, 3, 48, 192] };
const skip = netnsUnavailable() ?? false;
if (skip) process.stdout.write(`# SKIP: ${skip}\n`);

type Doc = Record<string, unknown>;
async function line(lines: Doc[], pick: (d: Doc) => boolean, from: number, ms: number, what: string): Promise<Doc> {
  for (const end = performance.now() + ms; performance.now() < end; await sleep(20)) {
    const d = lines.slice(from).find(pick);
    if (d) return d;
  }
  throw new Error(`no ${what} within ${ms} ms`);
}

/** Kill `victim` under load; resolves with the failover line once an answer came after it. */
async function killUnderLoad(net: TestNet, lines: Doc[], load: ReturnType<typeof exactLoad>, victim: string): Promise<Doc> {
  const before = load.done;
  while (load.done < before + 30) await sleep(5);
  const from = lines.length;
  const t0 = performance.now();
  await net.kill(net.host(victim));
  const e = await line(lines, (d) => d.event === 'failover', from, 60_000, `failover after killing ${victim}`);
  const at = load.done;
  while (load.done < at + 1) await sleep(5);
  process.stdout.write(`# ${victim} killed: serving again after ${(performance.now() - t0).toFixed(0)} ms (${e.note}; detect ${e.detectMs}, replan ${e.replanMs}, ` +
    `deploy ${e.deployMs}, switch ${e.switchMs} ms; staged ${e.staged}; ${e.replayed} replayed)\n`);
  return e;
}

async function checkLoad(load: ReturnType<typeof exactLoad>): Promise<void> {
  await load.stop();
  assert.deepEqual(load.bad.slice(0, 5), []);
  assert.equal(load.answers.size, load.done, 'every request answered');
  assert.ok([...load.answers.values()].every((c) => c === 1), 'none answered twice');
}

test('kerf up placement.json --hosts --failover --standby --cluster --profile: a lost host leads to kerf place\'s choice on the hosts left', { skip, timeout: 300_000 }, async () => {
  const names = ['device', 'a', 'b', 'c'];
  const { net, agents, file, close } = await agentHosts(names, { prefix: 'kfo' });
  let up: ReturnType<typeof kerfUp> | null = null;
  let load: ReturnType<typeof exactLoad> | null = null;
  try {
    const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
    // the profile kerf place is given (block times from FLOPs: the choice is the placer's, not the clock's)
    const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
    const profile = {
      schema: 'kerf.profile/v1', model: { name: 'cls', inputBytes: prep.analysis.totals.inputBytes }, system: { name: 'ref' },
      blocks: blocksOf(prep.model, prep.analysis, ids).map((b) => ({
        latency: { median: Math.max(b.flops, 1e5) / 1e9 }, outputBytes: b.outputBytes, paramBytes: b.paramBytes, flops: b.flops, ...(b.cutId !== undefined ? { cutId: b.cutId } : {}),
      })),
    };
    const clusterDoc = {
      schema: 'kerf.cluster/v1', entry: 'device', wireCpuMsPerMB: 0,
      // the entry holds nothing (it runs the gateway alone); c is slower than a and b
      nodes: [{ name: 'device', memoryMB: 1, speed: 1 }, { name: 'a', memoryMB: 4000, speed: 1 }, { name: 'b', memoryMB: 4000, speed: 1 }, { name: 'c', memoryMB: 4000, speed: 0.3 }],
      links: names.flatMap((x, i) => names.slice(i + 1).map((y) => ({ from: x, to: y, bandwidthMbps: 1000, rttMs: 1 }))),
    };
    const dir = mkdtempSync(join(tmpdir(), 'kerf-failover-replan-'));
    const profileFile = join(dir, 'cls.ref.profile.json'), clusterFile = join(dir, 'cluster.json'), placementFile = join(dir, 'placement.json');
    writeFileSync(profileFile, JSON.stringify(profile));
    writeFileSync(clusterFile, JSON.stringify(clusterDoc));
    const model = placeModelFromProfiles([profile as unknown as Profile]);
    const cluster = validateCluster(clusterDoc, clusterFile);
    const placement = place(model, cluster);
    writeFileSync(placementFile, JSON.stringify(placement));
    const initial = placementLayout(placement);
    assert.equal(initial.workers.length, 3, `the placement uses a, b and c: ${initial.note}`);
    const victim = initial.workers[initial.workers.length - 1]!.host;
    // what the placer does without the victim, and what the spare re-planner would do
    const left = validateCluster({ ...clusterDoc, nodes: clusterDoc.nodes.filter((n) => n.name !== victim), links: clusterDoc.links.filter((l) => l.from !== victim && l.to !== victim) }, clusterFile);
    const want = placementLayout(place(model, left));
    const spare = spareReplanner(initial)(names.filter((n) => n !== victim && n !== 'device'));
    assert.notDeepEqual([want.cuts, want.workers.map((w) => w.host)], [spare.cuts, spare.workers.map((w) => w.host)], 'the test tells the placer from the spare re-planner');

    up = kerfUp([placementFile, '--model', MODEL, '--input-shape', 'x=1x3x48x192', '--hosts', file, '--failover', '--standby', '--cluster', clusterFile, '--profile', profileFile]);
    const ready = await up.ready;
    assert.deepEqual(ready.processes.map((p) => p.host), ['device', ...placement.stages.map((s) => s.node)]);
    const lines = up.lines;
    const rp = await line(lines, (d) => d.event === 'failover-replanner', 0, 10_000, 're-planner line');
    assert.equal(rp.kind, 'placement');
    assert.match(up.err(), /failover: re-planner: kerf place on the hosts left/);
    // every host of the chain has its fallback staged ahead, the victim's the placer's choice
    const sb = await line(lines, (d) => d.event === 'standby' && (d.fallbacks as unknown[]).length === 3, 0, 90_000, 'standby line with 3 fallbacks') as { fallbacks: { lost: string; hosts: string[] }[] };
    assert.deepEqual(sb.fallbacks.map((f) => f.lost).sort(), initial.workers.map((w) => w.host).sort());
    assert.deepEqual(sb.fallbacks.find((f) => f.lost === victim)?.hosts, want.workers.map((w) => w.host));
    const inputs = inputsFor(prep, 4);
    const refs = await Promise.all(inputs.map((x) => reference(prep, x)));
    load = exactLoad({ url: ready.url, model: ready.model, inputs, want: refs, clients: 8 });
    const e = await killUnderLoad(net, lines, load, victim);
    assert.ok(String(e.reason).includes(victim), `the reason names ${victim}: ${e.reason}`);
    assert.equal(e.staged, true);
    assert.deepEqual(e.cuts, want.cuts, `kerf place's cuts (${want.note}), not the spare's (${spare.note})`);
    assert.deepEqual(e.hosts, want.workers.map((w) => w.host));
    assert.match(String(e.note), /^place: /);
    await sleep(500);
    await checkLoad(load);
    up.proc.kill('SIGTERM');
    assert.equal(await up.exit, 0, up.err());
    await onlyAgentsLeft(net, agents.filter((a) => a.proc.exitCode === null && a.proc.signalCode === null));
  } finally {
    await load?.stop();
    if (up && up.proc.exitCode === null) up.proc.kill('SIGKILL');
    await close();
  }
});

test('kerf up plan.json --hosts --failover: a lost tier leads to the plan\'s best ranked placement without it; the entry\'s loss is reported, not re-planned', { skip, timeout: 300_000 }, async () => {
  const names = ['device', 'edge', 'cloud'];
  const { net, agents, file, close } = await agentHosts(names, { prefix: 'kfo' });
  let up: ReturnType<typeof kerfUp> | null = null;
  let load: ReturnType<typeof exactLoad> | null = null;
  try {
    const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
    const single = blockCuts(prep.analysis, 'single');
    const n = single.length + 1;
    const cuts = thirds(prep);
    const at = (c: number): number => single.findIndex((x) => x.id === c);
    const mid = single[Math.floor(single.length / 2)]!.id;
    assert.ok(mid !== cuts[1] && mid !== cuts[0]);
    const tier = (t: string, sys: string | null, blocks: [number, number] | null) => ({ tier: t, system: sys, blocks, layers: null, computeS: 0.01, sendsBytes: 1 });
    const rank1 = { rank: 1, totalS: 0.03, bottleneckS: 0.01, objectiveS: 0.03, bytesSent: 2, cuts, boundaries: [at(cuts[0]), at(cuts[1])],
      tiers: [tier('device', 'device', [0, at(cuts[0])]), tier('edge', 'edge', [at(cuts[0]) + 1, at(cuts[1])]), tier('cloud', 'cloud', [at(cuts[1]) + 1, n - 1])], transfers: [] };
    // without the edge the plan's best is device → cloud split at `mid` (the spare re-planner would join the edge's part to the device's: cut cuts[1])
    const rank2 = { ...rank1, rank: 2, totalS: 0.04, cuts: [mid], boundaries: [at(mid)], tiers: [tier('device', 'device', [0, at(mid)]), tier('edge', null, null), tier('cloud', 'cloud', [at(mid) + 1, n - 1])] };
    const rank3 = { ...rank1, rank: 3, totalS: 0.05, cuts: [cuts[0]], boundaries: [at(cuts[0])], tiers: [tier('device', 'device', [0, at(cuts[0])]), tier('edge', 'edge', [at(cuts[0]) + 1, n - 1]), tier('cloud', null, null)] };
    const plan = {
      schema: 'kerf.plan/v1', model: 'ch_ppocr_mobile_v2.0_cls_infer', objective: 'latency', returnResult: true, inputBytes: prep.analysis.totals.inputBytes, cuts,
      totalS: 0.03, bottleneckS: 0.01, objectiveS: 0.03, bytesSent: 2, boundaries: rank1.boundaries,
      tiers: rank1.tiers.map((t) => ({ ...t })),
      transfers: [{ kind: 'forward', from: 'device', to: 'edge', bytes: 1, seconds: 0 }, { kind: 'forward', from: 'edge', to: 'cloud', bytes: 1, seconds: 0 }],
      network: { links: [{ from: 'device', to: 'edge', rttMs: 1, bandwidthMbps: 1000 }, { from: 'edge', to: 'cloud', rttMs: 1, bandwidthMbps: 1000 }] }, criteria: {},
      ranked: [rank1, rank2, rank3],
    };
    const dir = mkdtempSync(join(tmpdir(), 'kerf-failover-replan-'));
    const planFile = join(dir, 'plan.json');
    writeFileSync(planFile, JSON.stringify(plan));
    up = kerfUp([planFile, '--model', MODEL, '--input-shape', 'x=1x3x48x192', '--hosts', file, '--failover']);
    const ready = await up.ready;
    assert.deepEqual(ready.processes.map((p) => p.host), ['device', 'edge', 'cloud']);
    const lines = up.lines;
    const rp = await line(lines, (d) => d.event === 'failover-replanner', 0, 10_000, 're-planner line');
    assert.equal(rp.kind, 'plan');
    assert.match(up.err(), /failover: re-planner: the best of the plan's 3 ranked placements/);
    assert.match(up.err(), /the entry's own loss cannot be/);
    const inputs = inputsFor(prep, 4);
    const refs = await Promise.all(inputs.map((x) => reference(prep, x)));
    load = exactLoad({ url: ready.url, model: ready.model, inputs, want: refs, clients: 8 });
    const e = await killUnderLoad(net, lines, load, 'edge');
    assert.equal(e.staged, false);
    assert.deepEqual(e.cuts, [mid], 'the rank-2 plan\'s cut, not the spare join\'s');
    assert.deepEqual(e.hosts, ['cloud']);
    assert.equal(e.local, true);
    assert.match(String(e.note), /^plan \(rank 2\)/);
    await sleep(500);
    await checkLoad(load);
    // The entry host dies (the gateway with it): said plainly, nothing re-planned.
    const from = lines.length;
    await net.kill(net.host('device'));
    for (const end = performance.now() + 20_000; performance.now() < end && !/the entry host device is lost/.test(up.err()); ) await sleep(50);
    assert.match(up.err(), /failover: the entry host device is lost \(.*\): the gateway runs there and clients reach the pipeline through it, so kerf cannot fail over from this; nothing is re-planned/);
    await sleep(2000);
    assert.equal(lines.slice(from).filter((d) => d.event === 'failover').length, 0, 'no failover onto or without the entry');
    up.proc.kill('SIGTERM');
    await Promise.race([up.exit, sleep(40_000)]);
  } finally {
    await load?.stop();
    if (up && up.proc.exitCode === null) up.proc.kill('SIGKILL');
    await close();
  }
});
