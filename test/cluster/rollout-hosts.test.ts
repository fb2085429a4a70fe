/**
 * Rollout across hosts (agents on loopback, each with its own part cache): deployed with each
 * worker sent only its part, `kerf rollout --to v2.onnx --upload` sends the gateway the file
 * and each worker's host only its part of v2, by content hash, through its agent's cache;
 * `--back` finds v1's parts cached (sends nothing). Answers bitwise v2, then v1; nothing fails
 * under load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { prepareModel } from '../../src/engine/index.js';
import { AgentSubstrate } from '../../src/cluster/agents.js';
import { loadHosts } from '../../src/cluster/hosts.js';
import { deploy } from '../../src/cluster/deploy.js';
import type { SwitchReport } from '../../src/serve/switch.js';
import { KERF, bytesOf, inferBinary, inputsFor, reference, thirds } from '../serve/serve-helpers.js';
import { hostsFile, startAgent, tinyNet, type RunningAgent } from './helpers.js';

test('rollout across hosts: each worker\'s host gets only its part, by hash through its agent\'s cache; --back sends nothing', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-rollout-hosts-'));
  const v1 = join(dir, 'v1.onnx'), v2 = join(dir, 'v2.onnx');
  writeFileSync(v1, tinyNet(1));
  writeFileSync(v2, tinyNet(2));
  const preps = [await prepareModel(v1), await prepareModel(v2)];
  const inputs = inputsFor(preps[0]!, 3);
  const want = await Promise.all(preps.map((p) => Promise.all(inputs.map(async (x) => bytesOf((await reference(p, x)).y!)))));
  const agents: RunningAgent[] = [];
  let sub: AgentSubstrate | null = null;
  try {
    for (let i = 0; i < 3; i++) agents.push(await startAgent());
    const hosts = await loadHosts(hostsFile(['gw', 'a', 'b'].map((name, i) => ({ name, agent: agents[i]!.agent }))));
    sub = await AgentSubstrate.connect(hosts);
    let stop = false;
    let load: Promise<unknown> = Promise.resolve();
    const d = await deploy(sub, { model: v1, cuts: thirds(preps[0]!), hostOf: ['gw', 'a', 'b'], name: 'tiny' });
    try {
      let version = 0;
      const bad: string[] = [];
      load = Promise.all(Array.from({ length: 4 }, async (_, c) => {
        for (let i = 0; !stop; i++) {
          const k = (c + i) % inputs.length;
          const r = await inferBinary(d.url, 'tiny', inputs[k]!).catch((e: Error) => ({ status: 0, code: 'client', error: e.message, outputs: {} as Record<string, Buffer> }));
          if (r.status !== 200) bad.push(`${r.status} ${r.code} ${r.error}`);
          else if (!want.some((w) => w[k]!.equals(r.outputs.y!))) bad.push(`input ${k}: the answer is no version's`);
        }
      }));
      const cli = async (args: string[]): Promise<SwitchReport> => {
        const { stdout } = await promisify(execFile)(process.execPath, [KERF, 'rollout', ...args, '--gateway', d.url, '--json'], { env: { ...process.env, KERF_TOKEN: sub!.pipelineToken } });
        return JSON.parse(stdout) as SwitchReport;
      };
      const check = async (v: number): Promise<void> => {
        for (let k = 0; k < inputs.length; k++) {
          const r = await inferBinary(d.url, 'tiny', inputs[k]!);
          assert.ok(r.status === 200 && r.outputs.y!.equals(want[v]![k]!), `input ${k} answered by v${v + 1}`);
        }
      };
      const to = await cli(['--to', v2, '--upload']);
      version = 1;
      await check(version);
      const parts = to.tiers.filter((t) => t.part);
      assert.deepEqual(parts.map((t) => t.tier), to.tiers.filter((t) => t.tier !== 'gateway').map((t) => t.tier), 'every worker loaded a part from its cache');
      for (const [i, t] of parts.entries()) {
        assert.ok(t.part!.sentBytes > 0 && t.part!.sentBytes === t.part!.bytes, `${t.tier}: its part of v2 was sent`);
        // only its own part, into its own host's cache, less than the whole model
        assert.ok(existsSync(join(agents[i + 1]!.cache, `${t.part!.sha256}.onnx`)), `${t.tier}: in its agent's cache`);
        assert.ok(!existsSync(join(agents[2 - i]!.cache, `${t.part!.sha256}.onnx`)), `${t.tier}: not in the other host's cache`);
        assert.ok(t.part!.bytes < preps[1]!.model.proto.graph!.initializer.reduce((n, w) => n + w.rawData.length, 0));
      }
      const back = await cli(['--back']);
      version = 0;
      await check(version);
      // v1's parts were staged when it was deployed: found by hash, nothing sent
      assert.deepEqual(back.tiers.filter((t) => t.part).map((t) => t.part!.sentBytes), [0, 0]);
      stop = true;
      await load;
      assert.deepEqual(bad, []);
    } finally { stop = true; await load; await d.close(); }
  } finally {
    await sub?.close();
    for (const a of agents) a.proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});
