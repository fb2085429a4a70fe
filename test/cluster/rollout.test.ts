/**
 * Rollout under load on a 3-tier deployment (local substrate): v1 → v2 (other weights) → v3
 * (another architecture, same inputs and outputs) → back to v2 with `kerf rollout --back`.
 * Every answer equals one version's whole-model output, bitwise; none sent after a rollout
 * returned is answered by the version it replaced; 0 failed. GET /v1/partition names the
 * version served (name and sha256).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ModelBuilder } from '../../src/graph/builder.js';
import { tinyNet } from './helpers.js';
import { prepareModel } from '../../src/engine/index.js';
import { LocalSubstrate } from '../../src/cluster/local.js';
import { deploy } from '../../src/cluster/deploy.js';
import { rollout, partitionStatus } from '../../src/serve/switch-client.js';
import { KERF, bytesOf, inferBinary, inputsFor, reference, sleep, thirds } from '../serve/serve-helpers.js';

const TOKEN = 'rollout-test-token';

test('rollout under load: v1 → v2 → another architecture → back; every answer one version\'s, none old after the switch, 0 failed', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-rollout-'));
  const files = { v1: join(dir, 'v1.onnx'), v2: join(dir, 'v2.onnx'), v3: join(dir, 'v3.onnx') };
  writeFileSync(files.v1, tinyNet(1));
  writeFileSync(files.v2, tinyNet(2));
  writeFileSync(files.v3, tinyNet(3, 6));
  const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');
  const preps = { v1: await prepareModel(files.v1), v2: await prepareModel(files.v2), v3: await prepareModel(files.v3) };
  const inputs = inputsFor(preps.v1, 3);
  const want: Record<string, Buffer[]> = {};
  for (const [k, p] of Object.entries(preps)) want[k] = await Promise.all(inputs.map(async (x) => bytesOf((await reference(p, x)).y!)));
  const sub = new LocalSubstrate({ hosts: ['gw', 'a', 'b'] });
  const d = await deploy(sub, { model: files.v1, cuts: thirds(preps.v1), hostOf: ['gw', 'a', 'b'], parts: 'whole', token: TOKEN, name: 'tiny', log: (l) => { if (process.env.KERF_TEST_LOG) process.stderr.write(l + '\n'); } });
  let stop = false;
  try {
    const seen: { sent: number; version: string }[] = [];
    const bad: string[] = [];
    const client = async (c: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const k = (c + i) % inputs.length;
        const sent = performance.now();
        const r = await inferBinary(d.url, 'tiny', inputs[k]!).catch((e: Error) => ({ status: 0, code: 'client', error: `${e.message} at ${(performance.now() - t00).toFixed(0)} ms`, outputs: {} as Record<string, Buffer> }));
        if (r.status !== 200) { bad.push(`${r.status} ${r.code} ${r.error}`); continue; }
        const v = Object.keys(want).find((name) => want[name]![k]!.equals(r.outputs.y!));
        if (!v) bad.push(`input ${k}: the answer is no version's`);
        else seen.push({ sent, version: v });
      }
    };
    const t00 = performance.now();
    const load = Promise.all(Array.from({ length: 8 }, (_, c) => client(c)));
    const step = async (target: Parameters<typeof rollout>[1] | 'cli-back', from: string, to: string): Promise<void> => {
      await sleep(300);
      if (target === 'cli-back') {
        const { stdout } = await promisify(execFile)(process.execPath, [KERF, 'rollout', '--back', '--gateway', d.url], { env: { ...process.env, KERF_TOKEN: TOKEN } });
        assert.match(stdout, /kerf rollout: v3 \(.*→ v2 \(/);
        assert.match(stdout, /both versions fit side by side/);
      } else {
        const rep = await rollout(d.url, target, TOKEN);
        assert.equal(rep.rollout!.from.sha256, sha(files[from as keyof typeof files]));
        assert.equal(rep.rollout!.to.sha256, sha(files[to as keyof typeof files]));
        assert.ok(rep.downtimeMs < 50, `downtime ${rep.downtimeMs} ms`);
        // Chosen from the memory every tier reported (this machine's; nothing declared): beside.
        assert.equal(rep.rollout!.way?.way, 'beside');
        assert.equal(rep.rollout!.way?.chosen, 'memory');
        assert.equal(rep.rollout!.way?.hosts.reduce((n, h) => n + h.tiers.length, 0), 3);
        assert.equal(rep.strategy, 'on-demand');
      }
      const done = performance.now();
      if (process.env.KERF_TEST_LOG) process.stderr.write(`rolled out ${to} at ${(done - t00).toFixed(0)} ms\n`);
      // Wait for answers to requests sent after the rollout returned (on a busy machine one
      // round trip can take longer than any fixed pause).
      let after: typeof seen = [];
      for (const until = performance.now() + 60_000; ; await sleep(20)) {
        after = seen.filter((s) => s.sent > done);
        if (after.length >= 8 || bad.length || performance.now() > until) break;
      }
      assert.deepEqual(bad, []);
      assert.ok(after.length >= 8, `requests sent after the rollout and answered within 60 s: ${after.length}`);
      assert.deepEqual([...new Set(after.map((s) => s.version))], [to], `after rolling out ${to}`);
      const st = await partitionStatus(d.url);
      assert.equal(st.modelVersion.sha256, sha(files[to as keyof typeof files]));
    };
    assert.equal((await partitionStatus(d.url)).modelVersion.sha256, sha(files.v1));
    // Only the pipeline's token may roll out.
    await assert.rejects(rollout(d.url, { model: files.v2 }), { code: 'KERF_ERR_AUTH' });
    await step({ model: files.v2 }, 'v1', 'v2');
    await step({ model: files.v3 }, 'v2', 'v3');
    await step('cli-back', 'v3', 'v2');
    stop = true;
    await load;
    assert.deepEqual(bad, []);
    assert.deepEqual([...new Set(seen.map((s) => s.version))].sort(), ['v1', 'v2', 'v3']);
    // Another model's inputs are refused before anything is loaded.
    const other = join(dir, 'other.onnx');
    const b = new ModelBuilder({ opset: 13, name: 'other' });
    b.input('x', 'float32', [1, 3, 16, 16]);
    b.node('GlobalAveragePool', ['x'], ['y']);
    b.output('y', 'float32', [1, 3, 1, 1]);
    writeFileSync(other, b.toBytes());
    await assert.rejects(rollout(d.url, { model: other }, TOKEN), (e: { code: string; message: string }) => ['KERF_ERR_SHAPE', 'KERF_ERR_USAGE'].includes(e.code) && /other\.onnx.*16/.test(e.message));
  } finally {
    stop = true; // a failed step must not leave the clients looping against a closed gateway
    await d.close();
    await sub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rollout where the hosts declare too little memory for two versions: stage by stage, chosen and said', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-rollout-'));
  const v1 = join(dir, 'v1.onnx'), v2 = join(dir, 'v2.onnx');
  writeFileSync(v1, tinyNet(1));
  writeFileSync(v2, tinyNet(2));
  const p2 = await prepareModel(v2);
  const x = inputsFor(p2, 1)[0]!;
  const want = bytesOf((await reference(p2, x)).y!);
  const sub = new LocalSubstrate({ hosts: ['gw', 'a', 'b'] });
  // every tier says its host offers stages 1 MB: no room for a second version anywhere
  const d = await deploy(sub, { model: v1, cuts: thirds(await prepareModel(v1)), hostOf: ['gw', 'a', 'b'], parts: 'whole', token: TOKEN, name: 'tiny', workerArgs: ['--host-name', 'small', '--memory-mb', '1'] });
  try {
    const rep = await rollout(d.url, { model: v2 }, TOKEN);
    assert.equal(rep.rollout!.way?.way, 'stage-by-stage');
    assert.equal(rep.rollout!.way?.chosen, 'memory');
    assert.match(rep.rollout!.way!.reason, /small: \d+ MB in use \+ \d+ MB for the new version > 1 MB it offers/);
    assert.equal(rep.strategy, 'pause-resume');
    const r = await inferBinary(d.url, 'tiny', x);
    assert.equal(r.status, 200);
    assert.ok(r.outputs.y!.equals(want), 'answered by v2');
    // asked for, beside it goes all the same
    const back = await rollout(d.url, { back: true, beside: true }, TOKEN);
    assert.equal(back.rollout!.way?.way, 'beside');
    assert.equal(back.rollout!.way?.chosen, 'asked');
  } finally {
    await d.close();
    await sub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
