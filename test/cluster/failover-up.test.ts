/**
 * `kerf up --hosts … --failover --standby` on network-namespace hosts (device = entry, edge,
 * cloud, spare), each running its own `kerf agent`, under load: the cloud host dies (every
 * process in it), the controller switches to the fallback staged ahead (its part on the spare);
 * the cloud host comes back (a new agent) and is used again: when the spare dies next, the
 * chain is edge → cloud with the first split. 0 failed, 0 lost, 0 answered twice, every answer
 * the unsplit model's; each failover is a JSON line with its reason and timings, in
 * GET /v1/partition history and /metrics; SIGTERM leaves nothing but the agents running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { netnsUnavailable } from '../support/netns.js';
import { ocrModel } from '../support/shared.js';
import { exactLoad } from '../support/exact-load.js';
import { inputsFor, reference, sleep, thirds } from '../serve/serve-helpers.js';
import { agentHosts, kerfUp, onlyAgentsLeft, startAgent } from './helpers.js';

const MODEL = ocrModel('cls');
const SHAPE = { x: [1, 3, 48, 192] };
const skip = netnsUnavailable() ?? false;
if (skip) process.stdout.write(`# SKIP: ${skip}\n`);

/** Resolves with the first of `lines` (from index `from`) that `pick` takes; fails after `ms`. */
async function line(lines: Record<string, unknown>[], pick: (d: Record<string, unknown>) => boolean, from: number, ms: number, what: string): Promise<Record<string, unknown>> {
  for (const end = performance.now() + ms; performance.now() < end; await sleep(20)) {
    const d = lines.slice(from).find(pick);
    if (d) return d;
  }
  throw new Error(`no ${what} within ${ms} ms`);
}

test('kerf up --hosts --failover --standby: a host killed, then back and used again, under load; nothing lost or twice, answers exact', { skip, timeout: 300_000 }, async () => {
  const names = ['device', 'edge', 'cloud', 'spare'];
  const { net, agents, file, close } = await agentHosts(names);
  let up: ReturnType<typeof kerfUp> | null = null;
  let load: ReturnType<typeof exactLoad> | null = null;
  try {
    const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
    const cuts = thirds(prep);
    up = kerfUp(['--model', MODEL, '--cuts', cuts.join(','), '--input-shape', 'x=1x3x48x192', '--hosts', file, '--failover', '--standby']);
    const ready = await up.ready;
    assert.deepEqual(ready.processes.map((p) => p.host), ['device', 'edge', 'cloud']);
    const lines = up.lines;
    // the fallback of each host of the chain, staged ahead: losing cloud → its part on the spare
    const sb = await line(lines, (d) => d.event === 'standby', 0, 60_000, 'standby line') as { fallbacks: { lost: string; hosts: string[] }[] };
    assert.deepEqual(sb.fallbacks.find((f) => f.lost === 'cloud')?.hosts, ['edge', 'spare']);
    const inputs = inputsFor(prep, 4);
    const want = await Promise.all(inputs.map((x) => reference(prep, x)));
    load = exactLoad({ url: ready.url, model: ready.model, inputs, want, clients: 8 });
    const kill = async (victim: string): Promise<Record<string, unknown>> => {
      const before = load!.done;
      while (load!.done < before + 30) await sleep(5);
      const from = lines.length;
      const t0 = performance.now();
      await net.kill(net.host(victim));
      const e = await line(lines, (d) => d.event === 'failover', from, 30_000, `failover after killing ${victim}`);
      const at = load!.done;
      while (load!.done < at + 1) await sleep(5);
      process.stdout.write(`# kerf up --failover, ${victim} killed: serving again after ${(performance.now() - t0).toFixed(0)} ms ` +
        `(detect ${e.detectMs}, replan ${e.replanMs}, deploy ${e.deployMs}, switch ${e.switchMs} ms; staged ${e.staged}; ${e.replayed} replayed)\n`);
      assert.ok(String(e.reason).includes(victim), `the reason names ${victim}: ${e.reason}`);
      return e;
    };
    const first = await kill('cloud');
    assert.deepEqual(first.hosts, ['edge', 'spare']);
    assert.equal(first.staged, true);
    assert.deepEqual(first.cuts, cuts);
    // cloud comes back (its agent restarted): used again from the next re-plan
    const from = lines.length;
    agents[2] = await startAgent({ net, host: net.host('cloud') });
    const sb2 = await line(lines, (d) => d.event === 'standby' && (d.fallbacks as { lost: string; hosts: string[] }[]).some((f) => f.lost === 'spare' && f.hosts.join() === 'edge,cloud'), from, 60_000,
      'a fallback using cloud again');
    assert.ok(sb2);
    const second = await kill('spare');
    assert.deepEqual(second.hosts, ['edge', 'cloud'], 'the host that came back is used again');
    assert.deepEqual(second.cuts, cuts);
    await load.stop();
    assert.deepEqual(load.bad.slice(0, 5), []);
    assert.equal(load.answers.size, load!.done, 'every request answered');
    assert.ok([...load.answers.values()].every((c) => c === 1), 'none answered twice');
    // the gateway's record of both, and its metrics
    const st = await (await fetch(`${ready.url}/v1/partition`)).json() as { history: { failover?: { reason: string; staged: boolean; lost: string[] } }[] };
    const fo = st.history.filter((h) => h.failover).map((h) => h.failover!);
    assert.deepEqual(fo.map((f) => f.lost), [['cloud'], ['spare']]);
    const metrics = await (await fetch(`${ready.url}/metrics`)).text();
    assert.match(metrics, /kerf_failovers_total\{reason="[^"]+"\} \d/);
    assert.match(metrics, /kerf_failover_seconds_count\{phase="switch"\} 2/);
    up.proc.kill('SIGTERM');
    assert.equal(await up.exit, 0, up.err());
    await onlyAgentsLeft(net, agents);
  } finally {
    await load?.stop();
    if (up && up.proc.exitCode === null) up.proc.kill('SIGKILL');
    await close();
  }
});
