/**
 * Failover on network-namespace hosts, each running its own `kerf agent`: under load, one
 * stage's host dies (every process in it killed, its agent too), then the link of the host
 * that replaced it is cut (`ip link set … down`). The controller detects each, re-plans on the
 * hosts left, and the gateway replays what was in flight: 0 failed, 0 lost, 0 answered twice,
 * every answer the unsplit model's; the time to serve again is printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { AgentSubstrate } from '../../src/cluster/agents.js';
import { loadHosts } from '../../src/cluster/hosts.js';
import { deploy, type Deployment } from '../../src/cluster/deploy.js';
import { FailoverController, type FailoverEvent, type Layout } from '../../src/cluster/failover.js';
import { TestNet, netnsUnavailable } from '../support/netns.js';
import { ocrModel } from '../support/shared.js';
import { inputsFor, reference, sleep, thirds } from '../serve/serve-helpers.js';
import { exactLoad } from '../support/exact-load.js';
import { hostsFile, startAgent, type RunningAgent } from './helpers.js';

const MODEL = ocrModel('cls');
const SHAPE = { x: [1, 3, 48, 192] };
const skip = netnsUnavailable() ?? false;
const trace = (l: string): void => { if (process.env.KERF_TEST_LOG) process.stderr.write(`${(performance.now() / 1000).toFixed(2)} ${l}\n`); };
if (skip) process.stdout.write(`# SKIP: ${skip}\n`);

test('failover on netns hosts: a host killed, then a link cut, under load; nothing lost or twice, answers exact', { skip, timeout: 300_000 }, async () => {
  const names = ['gw', 'a', 'b', 'c', 'd'];
  const net = (await TestNet.create(names.length, { names }))!;
  const agents: RunningAgent[] = [];
  let sub: AgentSubstrate | null = null;
  let d: Deployment | null = null;
  let ctl: FailoverController | null = null;
  let stopLoad: (() => Promise<void>) | null = null;
  try {
    for (const h of net.hosts) agents.push(await startAgent({ net, host: h }));
    sub = await AgentSubstrate.connect(await loadHosts(hostsFile(net.hosts.map((h, i) => ({ name: h.name, agent: agents[i]!.agent })), 'gw')));
    const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
    const cuts = thirds(prep);
    const replan = (hosts: readonly string[]): Layout => {
      if (hosts.length < 2) throw new Error(`only ${hosts.length} hosts left`);
      return { cuts, local: true, workers: hosts.slice(0, 2).map((host) => ({ host })) };
    };
    d = await deploy(sub, { model: MODEL, inputShapes: SHAPE, cuts, hostOf: ['gw', 'a', 'b'], token: sub.pipelineToken, workerArgs: ['--replay'] });
    ctl = await FailoverController.start({
      substrate: sub, gatewayUrl: d.url, token: sub.pipelineToken, model: MODEL, prep, entry: 'gw',
      layout: { cuts, local: true, workers: [{ host: 'a' }, { host: 'b' }] }, stages: d.stages.slice(1), replan, standby: true,
      ...(process.env.KERF_TEST_LOG ? { log: (l: string) => process.stderr.write(`${(performance.now() / 1000).toFixed(2)} ${l}\n`) } : {}),
    });
    const events: FailoverEvent[] = [];
    ctl.on('failover', (e: FailoverEvent) => events.push(e));
    await ctl.whenStaged();
    const inputs = inputsFor(prep, 4);
    const want = await Promise.all(inputs.map((x) => reference(prep, x)));
    const load = exactLoad({ url: d.url, model: d.name, inputs, want, clients: 8 });
    stopLoad = () => load.stop();
    const lose = async (how: 'kill' | 'cut', n: number): Promise<void> => {
      await ctl!.whenStaged();
      const before = load.done;
      while (load.done < before + 40) await sleep(5);
      const victim = net.host(ctl!.stages[ctl!.stages.length - 1]!.onHost);
      const t0 = performance.now();
      if (how === 'kill') await net.kill(victim); else await net.cut(victim);
      if (process.env.KERF_TEST_LOG) process.stderr.write(`${(t0 / 1000).toFixed(2)} ${how} ${victim.name}\n`);
      for (const end = performance.now() + 30_000; events.length < n; await sleep(10)) if (performance.now() > end) throw new Error(`no failover within 30 s after the ${how} of ${victim.name}`);
      const at = load.done;
      while (load.done < at + 1) await sleep(5);
      const e = events[n - 1]!;
      process.stdout.write(`# ${how} ${victim.name}: serving again after ${(performance.now() - t0).toFixed(0)} ms (detect ${(e.detectedAt - t0).toFixed(0)}, replan ${e.replanMs.toFixed(0)}, deploy ${e.deployMs.toFixed(0)}, switch ${e.switchMs.toFixed(0)} ms; staged ${e.staged}; ${e.report.failover?.replayed} replayed)\n`);
      assert.ok(!ctl!.layout.workers.some((w) => w.host === victim.name), `${victim.name} is not in the new chain`);
      // the host is given up (its probe, or the substrate's host-lost, says so within seconds)
      for (const end = performance.now() + 10_000; !ctl!.lostHosts.includes(victim.name) && performance.now() < end;) await sleep(20);
      assert.ok(ctl!.lostHosts.includes(victim.name), `${victim.name} is marked lost`);
    };
    await lose('kill', 1);
    await lose('cut', 2);
    trace('stopping the load');
    await load.stop();
    trace('load stopped');
    assert.deepEqual(load.bad.slice(0, 5), []);
    assert.equal(load.answers.size, load.done, 'every request answered');
    assert.ok([...load.answers.values()].every((c) => c === 1), 'none answered twice');
    assert.deepEqual(ctl.lostHosts.sort(), ['b', 'c']);
  } finally {
    await stopLoad?.();
    trace('closing');
    await ctl?.close();
    trace('controller closed');
    await d?.close();
    trace('deployment closed');
    await sub?.close();
    trace('substrate closed');
    for (const a of agents) a.proc.kill('SIGTERM');
    await net.close();
  }
});
