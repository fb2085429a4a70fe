/** `kerf measure --hosts` on netns hosts whose egress tbf holds to known rates: every measured link within ±15% of its rate; pair schedule. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { pairRounds } from '../../src/cluster/measure.js';
import { validateCluster } from '../../src/plan/place/index.js';
import { parseNetworkYaml } from '../../src/plan/network-yaml.js';
import { TestNet, netnsUnavailable } from '../support/netns.js';
import { KERF } from '../serve/serve-helpers.js';
import { hostsFile, startAgent, type RunningAgent } from './helpers.js';

test('pairRounds: every pair exactly once, no host twice in a round', () => {
  for (let n = 0; n <= 9; n++) {
    const rounds = pairRounds(n);
    const seen = new Set<string>();
    for (const r of rounds) {
      const inRound = r.flat();
      assert.equal(new Set(inRound).size, inRound.length, `n=${n}: a host twice in one round`);
      for (const [a, b] of r) { assert.ok(a < b && b < n); seen.add(`${a},${b}`); }
    }
    assert.equal(seen.size, n < 2 ? 0 : (n * (n - 1)) / 2, `n=${n}: all pairs`);
    assert.equal(rounds.flat().length, seen.size, `n=${n}: each pair once`);
    if (n >= 2) assert.equal(rounds.length, n % 2 ? n : n - 1);
  }
});

const RATES = [10, 50, 100, 200];

test('kerf measure --hosts: links within ±15% of the tbf rates (10..200 Mbit/s) both ways, speeds and memory, a cluster file kerf place reads', { skip: netnsUnavailable() ?? false, timeout: 180_000 }, async () => {
  const net = (await TestNet.create(RATES.length, { rateMbit: RATES }))!;
  const agents: RunningAgent[] = [];
  try {
    for (const h of net.hosts) agents.push(await startAgent({ net, host: h, args: h.name === 'h1' ? ['--memory-mb', '3000'] : [] }));
    const file = hostsFile(net.hosts.map((h, i) => ({ name: h.name, agent: agents[i]!.agent })), 'h0');
    const dir = mkdtempSync(join(tmpdir(), 'kerf-measure-'));
    // One measurement is a second per direction and pair from user space: a CPU starved by the
    // tests running beside it reads as a slower link or host. So a run that misses is measured
    // once more (the same checks on the second run; both runs' misses are printed).
    for (let attempt = 1; ; attempt++) {
      try { await measureOnce(file, dir); return; } catch (e) {
        if (attempt >= 2) throw e;
        process.stdout.write(`# kerf measure run ${attempt} missed (${(e as Error).message.split('\n')[0]}); measuring again\n`);
      }
    }
  } finally {
    for (const a of agents) a.proc.kill('SIGTERM');
    await net.close();
  }
});

async function measureOnce(file: string, dir: string): Promise<void> {
  {
    const out = await new Promise<string>((resolve, reject) => execFile(process.execPath, [KERF, 'measure', '--hosts', file, '-o', join(dir, 'cluster.yaml'), '--network', join(dir, 'net.yaml'), '--json'],
      { timeout: 150_000 }, (err, stdout, stderr) => err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)));
    const m = JSON.parse(out) as { links: { from: string; to: string; bandwidthMbps: number; rttMs: number }[]; hosts: { name: string; memoryMB: number; speed: number }[] };
    assert.equal(m.links.length, RATES.length * (RATES.length - 1));
    const rows: string[] = [];
    for (const l of m.links) {
      const set = RATES[Number(l.from.slice(1))]!;
      rows.push(`${l.from}→${l.to} set ${set} measured ${l.bandwidthMbps.toFixed(1)}`);
      assert.ok(Math.abs(l.bandwidthMbps / set - 1) <= 0.15, `${l.from} → ${l.to}: tbf ${set} Mbit/s, measured ${l.bandwidthMbps.toFixed(1)}`);
      assert.ok(l.rttMs > 0 && l.rttMs < 50, `RTT ${l.rttMs} ms`);
    }
    process.stdout.write(`# ${rows.join('; ')}\n`);
    assert.equal(m.hosts.find((h) => h.name === 'h1')!.memoryMB, Math.floor(3000e6 / 2 ** 20), 'declared memory');
    // every host is this machine: speeds near 1 (loose: the machine is shared)
    for (const h of m.hosts) assert.ok(h.speed > 0.3 && h.speed < 3, `${h.name} speed ${h.speed}`);
    const cluster = validateCluster(parse(readFileSync(join(dir, 'cluster.yaml'), 'utf8')), 'cluster.yaml');
    assert.equal(cluster.entry, 'h0');
    assert.equal(cluster.links.length, m.links.length);
    assert.equal(parseNetworkYaml(readFileSync(join(dir, 'net.yaml'), 'utf8'), 'net.yaml').links.length, m.links.length);
  }
}
