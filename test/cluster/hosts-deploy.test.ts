/**
 * `kerf up --hosts` on network-namespace hosts, each running its own `kerf agent`: resnet18
 * deployed from a plan and from a placement, answers checked bitwise against the unsplit
 * model under load, and nothing left running on any host after SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareModel, type HostTensor } from '../../src/engine/index.js';
import { blockCuts, blocksOf } from '../../src/graph/cuts.js';
import { place, validateCluster } from '../../src/plan/place/index.js';
import { netnsUnavailable } from '../support/netns.js';
import { sharedPath } from '../support/shared.js';
import { bytesOf, inferBinary, inputsFor, reference, sleep, thirds } from '../serve/serve-helpers.js';
import { agentHosts, kerfUp as up, onlyAgentsLeft } from './helpers.js';

const MODEL = netnsUnavailable() === null ? sharedPath('models/resnet18.onnx') : null;
const skip = netnsUnavailable() ?? (MODEL ? false : 'resnet18 absent');
if (netnsUnavailable()) process.stdout.write(`# SKIP: ${netnsUnavailable()}\n`);

/** `n` requests, `inFlight` at a time, cycling through `feeds`; every answer must equal its reference. */
async function load(url: string, model: string, out: string, feeds: Record<string, HostTensor>[], refs: Buffer[], n: number, inFlight: number): Promise<void> {
  let next = 0, ok = 0;
  const failures: string[] = [];
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) {
      const i = next++;
      const r = await inferBinary(url, model, feeds[i % feeds.length]!).catch((e: Error) => ({ status: 0, error: `request ${i}: ${e.message}`, outputs: {} as Record<string, Buffer> }));
      if (r.status !== 200) failures.push(`${r.status} ${r.error}`);
      else if (!r.outputs[out]!.equals(refs[i % feeds.length]!)) failures.push(`request ${i}: answer differs from the whole model's`);
      else ok++;
    }
  }));
  assert.deepEqual(failures.slice(0, 3), []);
  assert.equal(ok, n);
}

interface Snap { gateway: { host: string }; workers: Record<string, { host: string | null; cpuShare: number | null; rssBytes: number | null }> }

/** The first snapshot of the gateway's dashboard stream (GET /v1/events) that satisfies `ok` (within 20 s). */
function dashboardSnapshot(url: string, ok: (s: Snap) => boolean): Promise<Snap> {
  return new Promise((resolve, reject) => {
    const ac = new AbortController();
    const t = setTimeout(() => { ac.abort(); reject(new Error(`no dashboard snapshot as expected within 20 s: ${last}`)); }, 20_000);
    let buf = '', last = '';
    void fetch(`${url}/v1/events`, { signal: ac.signal }).then(async (res) => {
      for await (const chunk of res.body!) {
        buf += Buffer.from(chunk as Uint8Array).toString('utf8');
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = /^event: snapshot\ndata: (.*)$/m.exec(ev)?.[1];
          if (!data) continue;
          last = data.slice(0, 2000);
          const s = JSON.parse(data) as Snap;
          if (ok(s)) { clearTimeout(t); ac.abort(); resolve(s); return; }
        }
      }
    }).catch((e: Error) => { if (e.name !== 'AbortError') { clearTimeout(t); reject(e); } });
  });
}

test('kerf up --hosts: resnet18 on 3 netns hosts from a plan and from a placement, answers exact under load, nothing left', { skip, timeout: 600_000 }, async () => {
  const { net, agents, file, close } = await agentHosts(['pi', 'edge', 'cloud']);
  // every `kerf up` started, stopped in `finally` too: a failed assert must not leave one running
  const ups: ReturnType<typeof up>[] = [];
  try {
    const prep = await prepareModel(MODEL!);
    const out = prep.model.outputs[0]!.name;
    const feeds = inputsFor(prep, 6);
    const refs = await Promise.all(feeds.map(async (f) => bytesOf((await reference(prep, f))[out]!)));
    const dir = mkdtempSync(join(tmpdir(), 'kerf-hosts-deploy-'));

    // From a plan: device on the entry host runs part 0, edge and cloud the rest.
    const cuts = thirds(prep);
    const n = blockCuts(prep.analysis, 'single').length + 1;
    const idx = cuts.map((c) => blockCuts(prep.analysis, 'single').findIndex((x) => x.id === c));
    const plan = {
      schema: 'kerf.plan/v1', model: 'resnet18', objective: 'latency', returnResult: true, inputBytes: prep.analysis.totals.inputBytes, cuts,
      tiers: [
        { tier: 'device', system: 'pi', blocks: [0, idx[0]!], computeS: 0.01 },
        { tier: 'edge', system: 'edge', blocks: [idx[0]! + 1, idx[1]!], computeS: 0.01 },
        { tier: 'cloud', system: 'cloud', blocks: [idx[1]! + 1, n - 1], computeS: 0.01 },
      ],
      transfers: [{ kind: 'forward', from: 'device', to: 'edge', bytes: 1, seconds: 0 }, { kind: 'forward', from: 'edge', to: 'cloud', bytes: 1, seconds: 0 }],
      network: { links: [{ from: 'device', to: 'edge', rttMs: 1, bandwidthMbps: 1000 }, { from: 'edge', to: 'cloud', rttMs: 1, bandwidthMbps: 1000 }] }, criteria: {}, ranked: [],
    };
    const planFile = join(dir, 'plan.json');
    writeFileSync(planFile, JSON.stringify(plan));
    const a = up([planFile, '--model', MODEL!, '--hosts', file]);
    ups.push(a);
    const ready = await a.ready;
    assert.deepEqual(ready.processes.map((p) => [p.role, p.host]), [['gateway', 'pi'], ['worker', 'edge'], ['worker', 'cloud']]);
    assert.match(ready.url, new RegExp(`^http://${net.host('pi').ip.replace(/\./g, '\\.')}:\\d+$`), 'the endpoint is on the entry host');
    // only the entry holds the whole model; edge and cloud were sent their parts alone
    const cached = agents.map((x) => readdirSync(x.cache).map((f) => statSync(join(x.cache, f)).size));
    const whole = statSync(MODEL!).size;
    assert.equal(cached[0]!.length, 1);
    assert.ok(Math.abs(cached[0]![0]! - whole) < whole * 0.05, `entry has the whole model (${cached[0]} vs ${whole})`);
    for (const c of cached.slice(1)) assert.ok(c.length === 1 && c[0]! < whole * 0.9, `a worker host has only its part (${c} of ${whole})`);
    const t0 = performance.now();
    await load(ready.url, ready.model, out, feeds, refs, 1000, 32);
    process.stdout.write(`# 1000 requests, 32 in flight, across 3 hosts: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    // The dashboard's figures across hosts: each stage's host, CPU share and memory, and per hop
    // the gateway's bandwidth and RTT estimates (no profiles: the monitors alone).
    const busy = load(ready.url, ready.model, out, feeds, refs, 200, 4);
    const snap = await dashboardSnapshot(ready.url, (x) => Object.values(x.workers).length === 2 && Object.values(x.workers).every((w) => w.cpuShare !== null));
    await busy;
    // each stage's host as its agent names it (the address it serves on)
    assert.equal(snap.gateway.host, net.host('pi').ip);
    assert.deepEqual(Object.entries(snap.workers).map(([k, w]) => [k, w.host]), [['edge(edge)', net.host('edge').ip], ['cloud(cloud)', net.host('cloud').ip]]);
    for (const w of Object.values(snap.workers)) assert.ok(w.cpuShare! > 0 && w.rssBytes! > 10e6, JSON.stringify(w));
    // a hop's estimate turns confident once enough transfers (or the link probes, every 5 s with
    // --hosts, once traffic stops) informed it: wait for that up to 30 s, then check both hops
    type Cond = { monitor: { links: { from: string; to: string; bytesPerS: number; rttS: number; confident: boolean }[] } };
    let cond = await (await fetch(`${ready.url}/v1/conditions`)).json() as Cond;
    for (const until = performance.now() + 30_000; !cond.monitor.links.every((l) => l.confident) && performance.now() < until;) {
      await new Promise((r) => setTimeout(r, 500));
      cond = await (await fetch(`${ready.url}/v1/conditions`)).json() as Cond;
    }
    assert.deepEqual(cond.monitor.links.map((l) => [l.from, l.to, l.confident]), [['device(pi)', 'edge(edge)', true], ['edge(edge)', 'cloud(cloud)', true]]);
    assert.ok(cond.monitor.links.every((l) => l.bytesPerS > 0 && l.rttS > 0), JSON.stringify(cond.monitor.links));
    a.proc.kill('SIGTERM');
    assert.equal(await a.exit, 0, a.err());
    await onlyAgentsLeft(net, agents);

    // From a placement: the entry can hold nothing, so it only runs the gateway (item 7).
    const cut1 = blockCuts(prep.analysis, 'single').map((c) => c.id);
    const blocks = blocksOf(prep.model, prep.analysis, cut1).map((b) => ({
      seconds: Math.max(b.flops, 1e5) / 1e9, outputBytes: b.outputBytes, paramBytes: b.paramBytes, ...(b.cutId !== undefined ? { cutId: b.cutId } : {}),
    }));
    const weightsMB = blocks.reduce((s, b) => s + b.paramBytes, 0) / 1e6;
    const cluster = validateCluster({
      schema: 'kerf.cluster/v1', entry: 'pi', wireCpuMsPerMB: 0,
      nodes: [{ name: 'pi', memoryMB: 1, speed: 1 }, { name: 'edge', memoryMB: Math.round(weightsMB * 0.7 + 100), speed: 1 }, { name: 'cloud', memoryMB: Math.round(weightsMB * 0.7 + 100), speed: 1 }],
      links: [{ from: 'pi', to: 'edge', bandwidthMbps: 1000, rttMs: 1 }, { from: 'edge', to: 'cloud', bandwidthMbps: 1000, rttMs: 1 }, { from: 'pi', to: 'cloud', bandwidthMbps: 1000, rttMs: 1 }],
    });
    const placement = place({ name: 'resnet18', inputBytes: prep.analysis.totals.inputBytes, blocks }, cluster);
    assert.ok(placement.stages.length >= 2 && placement.stages.every((s) => s.node !== 'pi'));
    const placementFile = join(dir, 'placement.json');
    writeFileSync(placementFile, JSON.stringify(placement));
    const b = up([placementFile, '--model', MODEL!, '--hosts', file]);
    ups.push(b);
    const ready2 = await b.ready;
    assert.equal(ready2.processes[0]!.host, 'pi');
    assert.deepEqual(ready2.processes.slice(1).map((p) => p.host), placement.stages.map((s) => s.node));
    await load(ready2.url, ready2.model, out, feeds, refs, 100, 32);
    b.proc.kill('SIGTERM');
    assert.equal(await b.exit, 0, b.err());
    await onlyAgentsLeft(net, agents);
  } finally {
    for (const u of ups) if (u.proc.exitCode === null && u.proc.signalCode === null) u.proc.kill('SIGKILL');
    await close();
  }
});
