/**
 * The failover controller on the local substrate (child processes standing for hosts): a
 * stage's process is killed by PID under load, twice — once with its fallback chain staged
 * ahead, once right after (its fallback not yet staged: re-planned and deployed then). 0
 * failed, 0 lost, 0 answered twice, every answer the unsplit model's; each failover recorded
 * with its phases in the controller, the gateway's /v1/partition history and /metrics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { LocalSubstrate } from '../../src/cluster/local.js';
import { deploy } from '../../src/cluster/deploy.js';
import { FailoverController, placementReplanner, planReplanner, spareReplanner, type FailoverEvent, type Layout } from '../../src/cluster/failover.js';
import type { PlaceModel } from '../../src/plan/place/index.js';
import { emptyCriteria } from '../../src/plan/criteria.js';
import type { Network, PlanProblem, PlanTier, SystemCost } from '../../src/plan/types.js';
import { ocrModel } from '../support/shared.js';
import { alive, inputsFor, reference, sleep, thirds } from '../serve/serve-helpers.js';
import { exactLoad } from '../support/exact-load.js';

const MODEL = ocrModel('cls');
const SHAPE = { x: [1, 3, 48, 192] };
const TOKEN = 'failover-test-token';

test('placementReplanner places on the hosts left (and the entry)', () => {
  const model: PlaceModel = { name: 'm', inputBytes: 1e5, blocks: Array.from({ length: 6 }, (_, i) => ({ seconds: 0.01, outputBytes: 1e5, paramBytes: 2e6, cutId: 10 + i })) };
  const node = (name: string) => ({ name, memoryMB: 8 });
  const names = ['gw', 'a', 'b', 'c'];
  const links = names.flatMap((x, i) => names.slice(i + 1).map((y) => ({ from: x, to: y, bandwidthMbps: 1000, rttMs: 0.1 })));
  const r = placementReplanner(model, { schema: 'kerf.cluster/v1', nodes: names.map(node), links, entry: 'gw' }, { memory: { overheadMB: 0 } });
  const all = r(['a', 'b', 'c']);
  const without = r(['a', 'c']);
  assert.ok(!without.workers.some((w) => w.host === 'b'), JSON.stringify(without));
  assert.ok(without.workers.length >= 1 && all.workers.length >= without.workers.length);
  assert.equal(without.cuts.length, without.workers.length + (without.local ? 0 : -1));
  // The entry alone cannot hold the model: no placement, said so.
  assert.throws(() => r([]), { code: 'KERF_ERR_PLACE' });
});

test('spareReplanner: a lost part goes to a spare host, else joins its neighbour; a host back gets its part back', () => {
  const initial: Layout = { cuts: [10, 20, 30], local: true, workers: [{ host: 'a' }, { host: 'b', cpus: 0.5 }, { host: 'c' }] };
  const r = spareReplanner(initial);
  const hosts = (l: Layout): string[] => l.workers.map((w) => w.host);
  const all = r(['a', 'b', 'c', 's']);
  assert.deepEqual([all.workers, all.cuts, all.local], [initial.workers, initial.cuts, true], 'every host usable: the split deployed');
  const spare = r(['a', 'c', 's', 't']);
  assert.deepEqual([hosts(spare), spare.cuts], [['a', 's', 'c'], [10, 20, 30]]);
  assert.equal(spare.workers[1]!.cpus, undefined, "a spare does not take the lost host's CPU share");
  // no spare: b's part joins a's (cut 20 dropped); then c's joins a's too
  assert.deepEqual([hosts(r(['a', 'c'])), r(['a', 'c']).cuts], [['a', 'c'], [10, 30]]);
  assert.deepEqual([hosts(r(['a'])), r(['a']).cuts], [['a'], [10]]);
  // the first worker lost: its part joins the gateway's (local) ...
  assert.deepEqual([hosts(r(['b', 'c'])), r(['b', 'c']).cuts], [['b', 'c'], [20, 30]]);
  assert.deepEqual([hosts(r([])), r([]).cuts], [[], []]);
  // ... or the next part (a chain without a local part); nothing left: said so
  const remote = spareReplanner({ cuts: [10], local: false, workers: [{ host: 'a' }, { host: 'b' }] });
  assert.deepEqual([hosts(remote(['b'])), remote(['b']).cuts], [['b'], []]);
  assert.throws(() => remote([]), { code: 'KERF_ERR_PLACE' });
});

test('planReplanner: the best 3-tier plan with the lost tier unused', () => {
  const L = 6;
  const sys = (tier: PlanTier, perBlockS: number, outBytes: number): SystemCost => ({
    name: tier, tier, time: new Float64Array(L).fill(perBlockS), out: new Float64Array(L).fill(outBytes), mem: new Float64Array(L).fill(1e6),
  });
  const problem: PlanProblem = {
    model: 'm', blocks: L, firstLayer: Int32Array.from({ length: L }, (_, i) => i), lastLayer: Int32Array.from({ length: L }, (_, i) => i),
    cutIds: Array.from({ length: L }, (_, i) => 100 + i), inputBytes: 1e5,
    device: [sys('device', 0.05, 1e3)], edge: [sys('edge', 0.01, 1e3)], cloud: [sys('cloud', 0.001, 1e3)],
  };
  const link = (from: string, to: string, mbps: number, rttMs: number) => ({ from, to, bandwidthMbps: mbps, rttMs, rttS: rttMs / 1000, bytesPerS: mbps * 125000 });
  const net: Network = { schema: 'kerf.network/v1', format: 'yaml', links: [link('device', 'edge', 100, 1), link('edge', 'cloud', 100, 1), link('device', 'cloud', 100, 40)] };
  const r = planReplanner(problem, net, emptyCriteria(), { device: 'pi', edge: 'box', cloud: 'vm' });
  const all = r(['box', 'vm']);
  assert.ok(all.workers.some((w) => w.host === 'box'), `with every host the edge is used: ${JSON.stringify(all)}`);
  for (const hosts of [['vm'], ['box'], []]) {
    const l = r(hosts);
    assert.ok(l.workers.every((w) => hosts.includes(w.host)), `hosts ${hosts.join(',')}: ${JSON.stringify(l)}`);
    assert.equal(l.cuts.length, l.workers.length + (l.local ? 0 : -1));
    assert.ok(l.cuts.every((c) => c >= 100 && c < 100 + L));
  }
});

test('failover under load on the local substrate: staged and unstaged, nothing lost, nothing twice, answers exact', { timeout: 180_000 }, async () => {
  const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
  const cuts = thirds(prep);
  const sub = new LocalSubstrate({ hosts: ['gw', 'a', 'b', 'c'] });
  // The test's re-planner: the same split on the first two usable hosts.
  const replan = (hosts: readonly string[]): Layout => {
    if (hosts.length < 2) throw new Error(`only ${hosts.length} hosts`);
    return { cuts, local: true, workers: hosts.slice(0, 2).map((host) => ({ host })) };
  };
  const d = await deploy(sub, { model: MODEL, inputShapes: SHAPE, cuts, hostOf: ['gw', 'a', 'b'], token: TOKEN, workerArgs: ['--replay'] });
  const ctl = await FailoverController.start({
    substrate: sub, gatewayUrl: d.url, token: TOKEN, model: MODEL, prep, entry: 'gw',
    layout: { cuts, local: true, workers: [{ host: 'a' }, { host: 'b' }] }, stages: d.stages.slice(1), replan, standby: true,
  });
  const events: FailoverEvent[] = [];
  ctl.on('failover', (e: FailoverEvent) => events.push(e));
  const pids: number[] = [];
  try {
    const inputs = inputsFor(prep, 4);
    const want = await Promise.all(inputs.map((x) => reference(prep, x)));
    const n = 240;
    await ctl.whenStaged();
    assert.deepEqual([...ctl.fallbacks.keys()].sort(), ['a', 'b'], 'a fallback per host of the chain');
    const load = exactLoad({ url: d.url, model: d.name, inputs, want, clients: 16, requests: n });
    const { answers, bad } = load;
    while (load.done < 40) await sleep(5);
    // 1: the last stage's process dies; its fallback (a → c) is staged.
    const last = ctl.stages[1]!;
    pids.push(last.pid);
    process.kill(last.pid, 'SIGKILL');
    while (events.length < 1) await sleep(10);
    assert.equal(events[0]!.staged, true);
    assert.deepEqual(ctl.layout.workers.map((w) => w.host), ['a', 'c']);
    // 2: at once the new chain's last stage dies too, before its fallback can be staged.
    while (load.done < 120) await sleep(5);
    const again = ctl.stages[1]!;
    pids.push(again.pid);
    process.kill(again.pid, 'SIGKILL');
    while (events.length < 2) await sleep(10);
    await load.finished;
    assert.deepEqual(bad, []);
    assert.equal(answers.size, n, 'every request answered');
    assert.ok([...answers.values()].every((c) => c === 1), 'none answered twice');
    for (const e of events) {
      assert.match(e.reason, /stage-exit|heartbeat/);
      assert.ok(e.switchMs > 0 && e.replanMs >= 0 && e.deployMs >= 0);
    }
    assert.equal(events.filter((e) => !e.staged).every((e) => e.deployMs > 0), true, 'an unstaged failover deploys');
    const st = await (await fetch(`${d.url}/v1/partition`)).json() as { history: { failover?: { reason: string; staged: boolean; replayed: number } }[] };
    const fo = st.history.filter((h) => h.failover);
    assert.equal(fo.length, 2, `two kills, two failovers; seen: ${fo.map((h) => h.failover!.reason).join(' | ')}`);
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    assert.match(metrics, /kerf_failover_seconds_count\{phase="switch"\} 2/);
  } finally {
    await ctl.close();
    await d.close();
    await sub.close();
  }
  const started = [...pids, ...d.processes.map((p) => p.pid)];
  for (let i = 0; i < 40 && started.some(alive); i++) await sleep(50);
  assert.deepEqual(started.filter(alive), [], 'nothing left running');
});
