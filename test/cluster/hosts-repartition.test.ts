/**
 * `kerf repartition` across netns hosts deployed with `--parts segments` (the default): each
 * worker host holds only its part, and fetches the whole model by hash from the entry host's
 * agent when a switch first loads another segment there. All four switch strategies, under
 * load, every answer bitwise the unsplit model's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { blockCuts } from '../../src/graph/cuts.js';
import { TestNet, netnsUnavailable } from '../support/netns.js';
import { ocrModel } from '../support/shared.js';
import { KERF, inferBinary, sleep, thirds } from '../serve/serve-helpers.js';
import { kerfUpHosts, ocrClsOnHosts, type RunningAgent } from './helpers.js';

const MODEL = ocrModel('cls');

function kerf(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawn(process.execPath, [KERF, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const t = setTimeout(() => p.kill('SIGKILL'), 120_000);
  return new Promise((r) => p.once('exit', (code) => { clearTimeout(t); r({ code, out, err }); }));
}

test('kerf repartition across hosts with --parts segments: the whole model fetched on demand, all four strategies, exact answers under load', { skip: netnsUnavailable() ?? false, timeout: 400_000 }, async () => {
  const net = (await TestNet.create(3, { names: ['device', 'edge', 'cloud'] }))!;
  const agents: RunningAgent[] = [];
  let stopUp = (): void => {};
  try {
    const { prep, out, feeds, refs, file } = await ocrClsOnHosts(net, MODEL, agents, 'device');
    const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
    const a = thirds(prep);
    const b = [ids[Math.floor(ids.length / 5)]!, ids[Math.floor(ids.length * 4 / 5)]!];
    assert.notDeepEqual(a, b);
    const up = await kerfUpHosts(['--model', MODEL, '--input-shape', 'x=1x3x48x192', '--cuts', a.join(','), '--hosts', file, '--link-probes', 'off']);
    stopUp = () => up.kill();
    const { url, token } = up;
    // the worker hosts hold only their parts
    const cachedBefore = agents.map((x) => readdirSync(x.cache).filter((f) => f.endsWith('.onnx')).length);
    assert.deepEqual(cachedBefore, [1, 1, 1]);

    let stop = false, ok = 0, paused = 0;
    const failures: string[] = [];
    const load = Promise.all(Array.from({ length: 4 }, async (_, w) => {
      for (let i = w; !stop; i += 4) {
        const r = await inferBinary(url, 'ch_ppocr_mobile_v2.0_cls_infer', feeds[i % feeds.length]!).catch((e: Error) => ({ status: 0, error: e.message, outputs: {} as Record<string, Buffer> }));
        // pause-resume answers 503 "retry shortly" while it switches: a client retries
        if (r.status === 503 && /paused/.test(r.error ?? '')) { paused++; i -= 4; await sleep(20); continue; }
        if (r.status !== 200) failures.push(`${r.status} ${r.error}`);
        else if (!r.outputs[out]!.equals(refs[i % feeds.length]!)) failures.push(`request ${i}: answer differs from the whole model's`);
        else ok++;
      }
    }));
    const strategies = ['on-demand', 'pause-resume', 'standby', 'hot-swap'] as const;
    let cur: number[] = a;
    for (const s of strategies) {
      const to = cur === a ? b : a;
      const r = await kerf(['repartition', '--gateway', url, '--token', token, '--strategy', s, ...(s === 'standby' ? ['--standby', to.join(',')] : []), '--cuts', to.join(','), '--json']);
      assert.equal(r.code, 0, `${s}: ${r.err}`);
      const st = await (await fetch(`${url}/v1/partition`)).json() as { cuts: number[] };
      assert.deepEqual(st.cuts, to, `${s}: now on ${to}`);
      process.stdout.write(`# ${s}: ${cur.join(',')} → ${to.join(',')} (${ok} answers so far)\n`);
      cur = to;
      await sleep(500);
    }
    stop = true;
    await load;
    assert.deepEqual(failures.slice(0, 3), []);
    assert.ok(ok > 20, `${ok} answers`);
    process.stdout.write(`# ${ok} exact answers, ${paused} retried 503s during pause-resume\n`);
    // the worker hosts fetched the whole model from the entry host's agent, once
    for (const x of agents.slice(1)) assert.equal((x.log().match(/fetched part/g) ?? []).length, 1, x.log());
    up.kill('SIGTERM');
    assert.equal(await up.exit, 0, up.err());
  } finally {
    stopUp();
    for (const x of agents) x.proc.kill('SIGTERM');
    await net.close();
  }
});
