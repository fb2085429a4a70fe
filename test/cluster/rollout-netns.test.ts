/**
 * Rollout under load on hosts that are network namespaces (issue 15's case): `kerf up --hosts`
 * deploys v1 on three netns hosts (egress held by tbf, each running its own `kerf agent` with a
 * declared memory), clients keep 4 requests in flight, `kerf rollout --to v2` (the file sent to
 * the gateway's host, each worker's host its part through its agent) and then `--back`. Every
 * answer equals v1's or v2's unsplit output bitwise, none sent after a rollout returned is the
 * old version's, 0 failed; GET /v1/partition names the version served. Nothing but the agents
 * is left on the hosts afterwards, and everything the test made is removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { prepareModel } from '../../src/engine/index.js';
import { TestNet, netnsUnavailable } from '../support/netns.js';
import { KERF, bytesOf, inferBinary, inputsFor, reference, sleep, thirds } from '../serve/serve-helpers.js';
import { hostsFile, kerfUpHosts, onlyAgentsLeft, startAgent, tinyNet, type RunningAgent, type UpRun } from './helpers.js';

interface Answer { start: number; version: number | null; error?: string }

test('rollout under load across netns hosts: every answer v1 or v2, none v1 after the switch, 0 failed; and back', { skip: netnsUnavailable() ?? false, timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-rollout-netns-'));
  const files = [join(dir, 'v1.onnx'), join(dir, 'v2.onnx')];
  files.forEach((f, i) => writeFileSync(f, tinyNet(i + 1, 6, 32)));
  const sha = files.map((f) => createHash('sha256').update(readFileSync(f)).digest('hex'));
  const preps = await Promise.all(files.map((f) => prepareModel(f)));
  const inputs = inputsFor(preps[0]!, 4);
  const want = await Promise.all(preps.map((p) => Promise.all(inputs.map(async (x) => bytesOf((await reference(p, x)).y!)))));
  assert.ok(!want[0]![0]!.equals(want[1]![0]!), 'the versions answer differently');
  const net = (await TestNet.create(3, { names: ['device', 'edge', 'cloud'], rateMbit: [200, 100, 100], prefix: 'khro' }))!;
  const agents: RunningAgent[] = [];
  let up: UpRun | null = null;
  try {
    for (const h of net.hosts) agents.push(await startAgent({ net, host: h, args: ['--memory-mb', '2000'] }));
    const file = hostsFile(net.hosts.map((h, i) => ({ name: h.name, agent: agents[i]!.agent })), 'device');
    up = await kerfUpHosts(['--model', files[0]!, '--cuts', thirds(preps[0]!).join(','), '--hosts', file, '--link-probes', 'off']);
    const { url, token } = up;
    const answers: Answer[] = [];
    let stop = false;
    const load = Promise.all(Array.from({ length: 4 }, async (_, c) => {
      for (let i = 0; !stop; i++) {
        const k = (c + i) % inputs.length;
        const start = performance.now();
        const r = await inferBinary(url, 'v1', inputs[k]!).catch((e: Error) => ({ status: 0, error: e.message, outputs: {} as Record<string, Buffer> }));
        if (r.status !== 200) { answers.push({ start, version: null, error: `${r.status} ${r.error}` }); continue; }
        const v = want.findIndex((w) => w[k]!.equals(r.outputs.y!));
        answers.push({ start, version: v < 0 ? null : v, ...(v < 0 ? { error: `input ${k}: the answer is no version's` } : {}) });
      }
    }));
    const rollout = async (args: string[]): Promise<{ report: { downtimeMs: number; rollout?: { way?: { way: string } } }; returned: number }> => {
      const { stdout } = await promisify(execFile)(process.execPath, [KERF, 'rollout', ...args, '--gateway', url, '--token', token, '--json'], { timeout: 120_000 });
      return { report: JSON.parse(stdout) as { downtimeMs: number }, returned: performance.now() };
    };
    const served = async (): Promise<string> => ((await (await fetch(`${url}/v1/partition`)).json()) as { modelVersion: { sha256: string } }).modelVersion.sha256;
    try {
      await sleep(1500);
      assert.equal(await served(), sha[0], 'v1 served');
      const toAsked = performance.now();
      const to = await rollout(['--to', files[1]!]);
      await sleep(1500);
      assert.equal(await served(), sha[1], 'v2 served after the rollout');
      const backAsked = performance.now();
      const back = await rollout(['--back']);
      await sleep(1500);
      stop = true;
      await load;
      assert.equal(await served(), sha[0], 'v1 served after --back');
      const failed = answers.filter((a) => a.error);
      const onV2 = answers.filter((a) => a.start > to.returned && a.start < backAsked);
      const afterBack = answers.filter((a) => a.start > back.returned);
      const count = (xs: Answer[], v: number): number => xs.filter((a) => a.version === v).length;
      process.stdout.write(`rollout-netns: ${answers.length} answers: ${count(answers, 0)} v1, ${count(answers, 1)} v2, ${failed.length} failed; rollout ${Math.round(to.returned - toAsked)} ms, downtime ${to.report.downtimeMs.toFixed(4)} ms (${to.report.rollout?.way?.way ?? '?'}); back ${Math.round(back.returned - backAsked)} ms, downtime ${back.report.downtimeMs.toFixed(4)} ms\n`);
      assert.deepEqual(failed.slice(0, 3), [], '0 failed, every answer one version\'s');
      assert.equal(count(onV2, 0), 0, 'no request sent after the switch to v2 is answered by v1');
      assert.ok(count(onV2, 1) > 10, `v2 answered after the switch (${count(onV2, 1)})`);
      assert.equal(count(afterBack, 1), 0, 'no request sent after --back returned is answered by v2');
      assert.ok(count(afterBack, 0) > 10, `v1 answered after --back (${count(afterBack, 0)})`);
      assert.ok(to.report.downtimeMs < 1000 && back.report.downtimeMs < 1000, 'no pause worth the name');
    } finally {
      stop = true;
      await load;
    }
    up.kill('SIGTERM');
    assert.equal(await up.exit, 0, `kerf up stopped cleanly: ${up.err().slice(-500)}`);
    up = null;
    await onlyAgentsLeft(net, agents);
  } finally {
    up?.kill('SIGKILL');
    for (const a of agents) a.proc.kill('SIGTERM');
    await sleep(300);
    await net.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
