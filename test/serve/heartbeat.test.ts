/** Heartbeats on a next hop (the failover controller's and the gateway's): a stall of this
 * process's own event loop (a busy or CPU-starved controller) is not the peer's silence, so a
 * healthy tier is not taken for lost; a tier that really stops answering (frozen) still is. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NextHop } from '../../src/serve/nexthop.js';
import { parseAddress } from '../../src/serve/index.js';
import { tinyNet } from '../cluster/helpers.js';
import { TOKEN, killChild, sleep, spawnWorker } from './serve-helpers.js';

const block = (ms: number): void => { const t = performance.now(); while (performance.now() - t < ms); };

test('heartbeat: this process stalled 4× the timeout is not a lost tier; a frozen tier is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-heartbeat-'));
  const model = join(dir, 'tiny.onnx');
  writeFileSync(model, tinyNet(7));
  const w = await spawnWorker(['--listen', '127.0.0.1:0', '--model', model]);
  const hb = { intervalMs: 50, timeoutMs: 300 };
  const hop = NextHop.open(parseAddress(w.address, 'worker'), { token: TOKEN, info: 'heartbeat test', heartbeat: hb, retryMs: 50, maxRetryMs: 100 });
  const downs: string[] = [];
  hop.on('down', (e: Error) => downs.push(e.message));
  try {
    await hop.waitConnected(10_000);
    await sleep(200);
    // This process's event loop blocked 1.2 s (4× the timeout) at a time, six times, with only one
    // turn of the loop between: in each turn the heartbeat timer runs (a ping goes out, or the
    // last one is judged) before the answer waiting in the socket is read.
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    for (let i = 0; i < 6; i++) { block(4 * hb.timeoutMs); await turn(); }
    await sleep(3 * hb.intervalMs);
    assert.deepEqual(downs, [], 'a healthy tier was taken for lost while this process stalled');
    assert.equal(hop.connected, true);
    // The tier freezes (SIGSTOP: its socket stays open, nothing answers): reported down by the heartbeat.
    const t0 = performance.now();
    process.kill(w.pid, 'SIGSTOP');
    while (!downs.length && performance.now() - t0 < 10_000) await sleep(20);
    const ms = performance.now() - t0;
    assert.equal(downs.length > 0, true, 'a frozen tier was never reported down');
    assert.match(downs[0]!, /heartbeat/);
    assert.ok(ms >= hb.timeoutMs, `reported down after ${ms.toFixed(0)} ms, before the ${hb.timeoutMs} ms timeout`);
  } finally {
    await hop.close();
    try { process.kill(w.pid, 'SIGCONT'); } catch { /* gone */ }
    await killChild(w.proc, 'SIGKILL');
  }
});
