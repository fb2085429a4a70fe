/**
 * `--adapt` across netns hosts deployed with `--parts segments` (the default): started on a split
 * that gives the slow device most of the model, the gateway's controller repartitions by itself;
 * the worker hosts fetch the whole model from the entry host on demand, and every answer stays
 * bitwise the unsplit model's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockCuts } from '../../src/graph/cuts.js';
import { profileModel } from '../../src/profile/profile.js';
import type { Profile } from '../../src/profile/types.js';
import { TestNet, netnsUnavailable } from '../support/netns.js';
import { ANY_BLOCK_SUM, ocrModel } from '../support/shared.js';
import { inferBinary, sleep } from '../serve/serve-helpers.js';
import { kerfUpHosts, ocrClsOnHosts, type RunningAgent } from './helpers.js';

const MODEL = ocrModel('cls');
const NAME = 'ch_ppocr_mobile_v2.0_cls_infer';

test('kerf up --hosts --adapt with --parts segments: repartitions by itself, whole model fetched on demand, exact answers', { skip: netnsUnavailable() ?? false, timeout: 300_000 }, async () => {
  const net = (await TestNet.create(3, { names: ['device', 'edge', 'cloud'] }))!;
  const agents: RunningAgent[] = [];
  let kill = (): void => {};
  try {
    const { prep, out, feeds, refs, file } = await ocrClsOnHosts(net, MODEL, agents, 'device');
    const base = await profileModel(MODEL, { system: 'core', repeats: 2, warmup: 1, tolerance: ANY_BLOCK_SUM, inputShapes: { x: [1, 3, 48, 192] } });
    const dir = mkdtempSync(join(tmpdir(), 'kerf-hosts-adapt-'));
    // a device 20× slower than the edge and cloud: most of the model belongs off it
    for (const [name, f] of [['device', 20], ['edge', 1], ['cloud', 1]] as const) {
      const p: Profile = { ...base, system: { ...base.system, name, tier: name }, blocks: base.blocks.map((b) => ({ ...b, latency: { ...b.latency, median: b.latency.median * f } })) };
      writeFileSync(join(dir, `${NAME}.${name}.profile.json`), JSON.stringify(p));
    }
    const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
    const start = [ids[ids.length - 3]!, ids[ids.length - 2]!];
    const up = await kerfUpHosts(['--model', MODEL, '--input-shape', 'x=1x3x48x192', '--cuts', start.join(','), '--hosts', file,
      '--adapt', 'bandwidth', '--profiles', dir, '--adapt-period', '0.5', '--min-dwell', '1', '--link-probes', 'off']);
    kill = () => up.kill();
    const { url } = up;
    let ok = 0, retried = 0, cuts: number[] = start;
    const failures: string[] = [];
    const t0 = performance.now();
    for (let i = 0; performance.now() - t0 < 150_000 && (ok < 60 || JSON.stringify(cuts) === JSON.stringify(start)); i++) {
      const r = await inferBinary(url, NAME, feeds[i % feeds.length]!).catch((e: Error) => ({ status: 0, error: e.message, outputs: {} as Record<string, Buffer> }));
      if (r.status === 503 && /paused/.test(r.error ?? '')) { retried++; await sleep(20); continue; }
      if (r.status !== 200) failures.push(`${r.status} ${r.error}`);
      else if (!r.outputs[out]!.equals(refs[i % feeds.length]!)) failures.push(`request ${i}: answer differs`);
      else ok++;
      if (i % 10 === 0) cuts = ((await (await fetch(`${url}/v1/partition`)).json()) as { cuts: number[] }).cuts;
    }
    assert.deepEqual(failures.slice(0, 3), []);
    assert.notDeepEqual(cuts, start, `the controller repartitioned away from ${start} (${ok} answers): ${agents[0]!.log().split('\n').filter((l) => /adapt/.test(l)).slice(-4).join(' | ')} ${JSON.stringify(((await (await fetch(`${url}/v1/conditions`)).json()) as { lastDecision?: unknown }).lastDecision ?? null).slice(0, 600)}`);
    process.stdout.write(`# adapt: ${start.join(',')} → ${cuts.join(',')} after ${ok} exact answers (${retried} retried)\n`);
    assert.ok(agents.slice(1).some((x) => /fetched part/.test(x.log())), 'a worker host fetched the whole model on demand');
    up.kill('SIGTERM');
    assert.equal(await up.exit, 0, up.err());
  } finally {
    kill();
    for (const x of agents) x.proc.kill('SIGTERM');
    await net.close();
  }
});
