/**
 * Live link estimates across hosts: a `kerf up --hosts` gateway's light probes keep every hop's
 * bandwidth estimate near the tbf rate of its netns link, and follow a rate change (ratios with
 * margins; how long it took is printed, not asserted). Plus the probes' pure rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { prepareModel } from '../../src/engine/index.js';
import { PROBE_FIRST_BYTES, PROBE_MAX_BYTES, PROBE_MIN_BYTES, probeBytes, probeDue } from '../../src/serve/linkprobe.js';
import { TestNet, netnsUnavailable } from '../support/netns.js';
import { ocrModel } from '../support/shared.js';
import { KERF, sleep, thirds } from '../serve/serve-helpers.js';
import { hostsFile, startAgent, type RunningAgent } from './helpers.js';

const MODEL = ocrModel('cls');

test('link probes: sized to ~0.1 s of the link, due only when nothing told the rate for a period', () => {
  assert.equal(probeBytes(null), PROBE_FIRST_BYTES);
  assert.equal(probeBytes(1e3), PROBE_MIN_BYTES);
  assert.equal(probeBytes(1e9), PROBE_MAX_BYTES);
  assert.equal(probeBytes(12.5e6), 1.25e6);
  assert.equal(probeDue(-Infinity, -Infinity, 0, 5), true);
  assert.equal(probeDue(10, 3, 12, 5), false, 'a real transfer 2 s ago told the rate: no probe');
  assert.equal(probeDue(3, 10, 12, 5), false, 'probed 2 s ago');
  assert.equal(probeDue(3, 6, 12, 5), true);
});

interface Link { from: string; to: string; bytesPerS: number }

test('kerf up --hosts: link probes follow a tbf rate change on a netns link', { skip: netnsUnavailable() ?? false, timeout: 300_000 }, async () => {
  const net = (await TestNet.create(3, { names: ['device', 'edge', 'cloud'], rateMbit: [100, 50, undefined] }))!;
  const agents: RunningAgent[] = [];
  const proc = { kill: (_s?: NodeJS.Signals) => {} } as { kill: (s?: NodeJS.Signals) => void };
  try {
    for (const h of net.hosts) agents.push(await startAgent({ net, host: h }));
    const prep = await prepareModel(MODEL, { inputShapes: { x: [1, 3, 48, 192] } });
    const file = hostsFile(net.hosts.map((h, i) => ({ name: h.name, agent: agents[i]!.agent })), 'device');
    const up = spawn(process.execPath, [KERF, 'up', '--model', MODEL, '--input-shape', 'x=1x3x48x192', '--cuts', thirds(prep).join(','), '--hosts', file, '--link-probes', '0.5', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.kill = (s) => up.kill(s);
    let out = '', err = '';
    up.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    up.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    const exit = new Promise<number | null>((r) => up.once('exit', r));
    for (let i = 0; i < 1200 && !out.includes('"ready"'); i++) await sleep(100);
    assert.ok(out.includes('"ready"'), `kerf up ready: ${err}`);
    const url = (JSON.parse(out.split('\n').find((l) => l.includes('"ready"'))!) as { url: string }).url;
    // the gateway's monitors answer /v1/conditions (the probes feed their estimators); the prober alone, without them
    const links = async (): Promise<Link[]> => {
      const c = (await (await fetch(`${url}/v1/conditions`)).json()) as { links?: Link[]; monitor?: { links: Link[] } };
      return c.links ?? c.monitor!.links;
    };
    // tbf counts whole packets, the probe payload: ~95 % of the set rate arrives as payload
    const near = (l: Link | undefined, mbit: number): boolean => !!l && l.bytesPerS * 8 / 1e6 > mbit * 0.7 && l.bytesPerS * 8 / 1e6 < mbit * 1.3;
    const waitFor = async (what: string, ok: (ls: Link[]) => boolean): Promise<Link[]> => {
      const t0 = performance.now();
      let ls: Link[] = [];
      while (performance.now() - t0 < 90_000) {
        ls = await links();
        if (ok(ls)) { process.stdout.write(`# ${what}: ${ls.map((l) => `${l.from}→${l.to} ${(l.bytesPerS * 8 / 1e6).toFixed(1)} Mbit/s`).join(', ')} after ${((performance.now() - t0) / 1000).toFixed(1)} s\n`); return ls; }
        await sleep(250);
      }
      assert.fail(`${what}: ${JSON.stringify(ls)}`);
    };
    const first = await waitFor('set 100 and 50 Mbit/s', (ls) => near(ls[0], 100) && near(ls[1], 50));
    assert.deepEqual(first.map((l) => [l.from, l.to]), [['device', 'edge'], ['edge', 'cloud']]);
    await net.setRate(net.host('device'), 20);
    await waitFor('device → edge set to 20 Mbit/s', (ls) => near(ls[0], 20) && near(ls[1], 50));
    await net.setRate(net.host('device'), 100);
    await waitFor('device → edge back to 100 Mbit/s', (ls) => near(ls[0], 100) && near(ls[1], 50));
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /kerf_link_estimate_bytes_per_second\{from="device",to="edge"\} \d/);
    assert.match(metrics, /kerf_link_probes_total\{from="edge",to="cloud"\} [1-9]/);
    up.kill('SIGTERM');
    assert.equal(await exit, 0, err);
  } finally {
    proc.kill('SIGKILL');
    for (const a of agents) a.proc.kill('SIGTERM');
    await net.close();
  }
});
