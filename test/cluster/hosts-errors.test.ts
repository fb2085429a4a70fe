/**
 * `kerf up --hosts` failing cleanly on netns hosts: a wrong token, a hosts file naming an
 * unreachable host, an agent that vanishes during deploy — each a clear error naming the host,
 * and nothing left running on any host but its agent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { prepareModel } from '../../src/engine/index.js';
import { TestNet, netnsUnavailable } from '../support/netns.js';
import { ocrModel } from '../support/shared.js';
import { KERF, sleep, thirds } from '../serve/serve-helpers.js';
import { hostsFile, startAgent, type RunningAgent } from './helpers.js';

const MODEL = ocrModel('cls');
const SHAPE = 'x=1x3x48x192';

function kerfUp(args: string[], onErr?: (text: string) => void): Promise<{ code: number | null; err: string; ms: number }> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [KERF, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stdout!.resume();
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); onErr?.(err); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 90_000);
  return new Promise((resolve) => proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, err, ms: performance.now() - t0 }); }));
}

async function onlyAgentsLeft(net: TestNet, agents: (RunningAgent | null)[]): Promise<void> {
  const extra = async () => (await Promise.all(net.hosts.map((h) => net.pids(h)))).flat().filter((p) => !agents.some((a) => a?.proc.pid === p));
  for (let i = 0; i < 60 && (await extra()).length; i++) await sleep(100);
  assert.deepEqual(await extra(), [], 'nothing but the agents is left on the hosts');
}

test('kerf up --hosts: wrong token, unreachable host, an agent vanishing during deploy: clear errors, nothing left running', { skip: netnsUnavailable() ?? false, timeout: 300_000 }, async () => {
  const net = (await TestNet.create(3, { names: ['device', 'edge', 'cloud'] }))!;
  const agents: (RunningAgent | null)[] = [];
  try {
    for (const h of net.hosts) agents.push(await startAgent({ net, host: h }));
    const prep = await prepareModel(MODEL, { inputShapes: { x: [1, 3, 48, 192] } });
    const cuts = thirds(prep).join(',');
    const entries = net.hosts.map((h, i) => ({ name: h.name, agent: agents[i]!.agent }));
    const args = ['--model', MODEL, '--input-shape', SHAPE, '--cuts', cuts];

    // a wrong token: refused by the first agent asked, before anything starts
    const wrong = await kerfUp([...args, '--hosts', hostsFile(entries, 'device', 'not-the-cluster-token-at-all')]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /kerf: host \w+ \(agent [\d.]+:7700\): wrong token/);
    assert.equal(wrong.err.trim().split('\n').length, 1, `one line: ${wrong.err}`);
    assert.ok(agents.some((a) => /refused GET \/v1\/host\/status .*wrong token/.test(a!.log())), 'the agent logs the refusal');
    await onlyAgentsLeft(net, agents);

    // a host no agent answers on: named in the error
    const gone = [...entries.slice(0, 2), { name: 'cloud', agent: `${net.subnet}.77:7700` }];
    const unreachable = await kerfUp([...args, '--hosts', hostsFile(gone, 'device')]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.err, new RegExp(`kerf: host cloud \\(agent ${net.subnet.replace(/\./g, '\\.')}\\.77:7700\\): (cannot reach it|no answer within)`));
    await onlyAgentsLeft(net, agents);

    // the edge host dies while the controller deploys (its stage is next after cloud's)
    let killed = false;
    const vanish = await kerfUp([...args, '--hosts', hostsFile(entries, 'device')], (text) => {
      if (!killed && /worker cloud \(pid \d+\)/.test(text)) { killed = true; void net.kill(net.host('edge')); }
    });
    assert.ok(killed, `the deploy got as far as the cloud stage: ${vanish.err}`);
    assert.equal(vanish.code, 1, vanish.err);
    assert.match(vanish.err, /kerf: host edge \(agent [\d.]+:7700\): /);
    agents[1] = null;
    for (const r of [wrong, unreachable, vanish]) process.stdout.write(`# ${r.err.trim().split('\n').pop()} (${Math.round(r.ms)} ms)\n`);
    await onlyAgentsLeft(net, agents);
  } finally {
    for (const a of agents) a?.proc.kill('SIGTERM');
    await net.close();
  }
});
