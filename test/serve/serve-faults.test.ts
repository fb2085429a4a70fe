/**
 * Faults with real processes (started and killed by PID): a worker killed under load, garbage
 * on a worker port, a frame announcing 2 GB, a wrong token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import { prepareModel } from '../../src/engine/index.js';
import { isKerfError } from '../../src/errors.js';
import { Connection, Gateway } from '../../src/serve/index.js';
import { ocrModel } from '../support/shared.js';
import { TOKEN, bytesOf, httpRequest, inferBinary, inputsFor, killChild, reference, sleep, spawnWorker } from './serve-helpers.js';

const MODEL = ocrModel('cls');
const SHAPE = 'x=1x3x48x192';
const CUTS = '20,43';

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Wait until `f()` is true, polling; false after `ms`. */
async function until(f: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) { if (await f()) return true; await sleep(20); }
  return f();
}

test('faults: kill a worker under load, garbage, 2 GB frame, wrong token', async (t) => {
  const prep = await prepareModel(MODEL, { inputShapes: { x: [1, 3, 48, 192] } });
  const common = ['--model', MODEL, '--input-shape', SHAPE, '--cuts', CUTS];
  let cloud = await spawnWorker([...common, '--listen', '127.0.0.1:0', '--blocks', '2..2', '--name', 'cloud']);
  const edge = await spawnWorker([...common, '--listen', '127.0.0.1:0', '--blocks', '1..1', '--name', 'edge', '--next', cloud.address]);
  const g = await Gateway.start({ model: prep, pipeline: { cuts: [20, 43], next: edge.address, token: TOKEN } });
  const [feeds] = inputsFor(prep, 1);
  const ref = bytesOf((await reference(prep, feeds!))['softmax_0.tmp_0']!);
  const ready = async (): Promise<number> => (await httpRequest(`${g.url}/v2/health/ready`, 'GET')).status;
  try {
    await g.waitReady(15_000);

    await t.test('garbage bytes close that connection; the worker serves on', async () => {
      const s = net.connect(edge.port, '127.0.0.1');
      await new Promise<void>((r) => s.once('connect', () => r()));
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      s.on('error', () => {});
      s.resume(); // read the worker's error frame and FIN
      s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + 'garbage'.repeat(100)));
      await closed;
      const r = await inferBinary(g.url, g.name, feeds!);
      assert.equal(r.status, 200, r.error);
      assert.ok(r.outputs['softmax_0.tmp_0']!.equals(ref));
    });

    await t.test('a frame announcing 2 GB is refused without allocating it', async () => {
      const before = rssBytes(edge.pid);
      const s = net.connect(edge.port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('connect', () => r()));
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      s.resume();
      const h = Buffer.alloc(12);
      h.writeUInt32LE(2 ** 31 - 4, 0); h[4] = 1; h[5] = 4; // REQUEST of 2 GiB
      s.write(h);
      await closed;
      const after = rssBytes(edge.pid);
      assert.ok(after - before < 64 * 1024 * 1024, `worker RSS grew by ${((after - before) / 1e6).toFixed(0)} MB`);
      assert.equal((await inferBinary(g.url, g.name, feeds!)).status, 200);
    });

    await t.test('a wrong token is refused', async () => {
      await assert.rejects(Connection.connect({ port: edge.port, token: 'not-the-token', timeoutMs: 3000 }),
        (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_AUTH');
      assert.equal((await inferBinary(g.url, g.name, feeds!)).status, 200);
    });

    await t.test('killing a worker under load fails every in-flight request within 1 s; not ready; recovers', async () => {
      let stop = false;
      const pending = new Map<number, number>(); // request → start time
      const settledAt = new Map<number, { at: number; status: number; code?: string }>();
      let n = 0;
      const lane = async (): Promise<void> => {
        while (!stop) {
          const i = n++;
          pending.set(i, performance.now());
          const r = await inferBinary(g.url, g.name, feeds!).catch((e: Error) => ({ status: -1, code: e.message, outputs: {} }));
          pending.delete(i);
          settledAt.set(i, { at: performance.now(), status: r.status, ...(r.code ? { code: r.code } : {}) });
          if (r.status === 200) assert.ok((r.outputs as Record<string, Buffer>)['softmax_0.tmp_0']!.equals(ref));
          else await sleep(5);
        }
      };
      const lanes = Array.from({ length: 16 }, lane);
      // A failed check below must not leave the lanes looping (the file would never end).
      try {
        await sleep(300);
        const inflightAtKill = [...pending.keys()];
        assert.ok(inflightAtKill.length > 0, 'load was running');
        const killedAt = performance.now();
        await killChild(cloud.proc, 'SIGKILL');
        // Every request in flight at the kill settles within 1 s (answered or failed, never hung).
        assert.ok(await until(() => inflightAtKill.every((i) => settledAt.has(i)), 1000),
          `requests still hanging 1 s after the kill: ${inflightAtKill.filter((i) => !settledAt.has(i)).length}`);
        for (const i of inflightAtKill) assert.ok(settledAt.get(i)!.at - killedAt < 1000);
        assert.ok(await until(async () => (await ready()) === 503, 1000), 'gateway still ready 1 s after the kill');
        const failed = [...settledAt.values()].filter((s) => s.at > killedAt && s.status !== 200);
        assert.ok(failed.length > 0, 'some requests failed');
        for (const f of failed) assert.ok(f.status === 503, `failed with ${f.status} ${f.code}`);
        // The worker comes back on its port: the pipeline recovers by itself.
        cloud = await spawnWorker([...common, '--listen', `127.0.0.1:${cloud.port}`, '--blocks', '2..2', '--name', 'cloud']);
        assert.ok(await until(async () => (await ready()) === 200, 10_000), 'gateway not ready after the worker returned');
        const okBefore = [...settledAt.values()].filter((s) => s.status === 200).length;
        assert.ok(await until(() => [...settledAt.values()].filter((s) => s.status === 200).length > okBefore + 20, 10_000), 'requests succeed again');
      } finally { stop = true; }
      await Promise.all(lanes);
    });
  } finally {
    await g.close();
    await killChild(edge.proc);
    await killChild(cloud.proc);
  }
});
