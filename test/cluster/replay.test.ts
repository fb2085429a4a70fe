/**
 * The gateway half of failover, on one machine: a stage's process is killed by PID under load;
 * the gateway holds every request that was in flight on the broken chain (and every one that
 * arrives meanwhile), and replays them once a new chain is switched in. None fails, none is
 * lost or answered twice, every answer is the unsplit model's, bitwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { Gateway } from '../../src/serve/index.js';
import { sharedPath } from '../support/shared.js';
import { TOKEN, inputsFor, killChild, reference, sleep, spawnWorker, thirds } from '../serve/serve-helpers.js';
import { exactLoad } from '../support/exact-load.js';

const path = sharedPath('models/squeezenet1_1.onnx');

test('replay: a killed stage under load loses no request; the new chain answers them all exactly once', { skip: !path, timeout: 120_000 }, async () => {
  const prep = await prepareModel(path!);
  const cuts = thirds(prep);
  const args = (blocks: string, next?: string): string[] => ['--listen', '127.0.0.1:0', '--model', path!, '--cuts', cuts.join(','), '--blocks', blocks, ...(next ? ['--next', next] : [])];
  const b = await spawnWorker(args('2..2'));
  const a = await spawnWorker(args('1..1', b.address));
  const spare: Awaited<ReturnType<typeof spawnWorker>>[] = [];
  const g = await Gateway.start({ model: prep, pipeline: { cuts, next: a.address, token: TOKEN }, replay: { holdMs: 60_000 }, controlToken: TOKEN });
  try {
    await g.waitReady(20_000);
    const inputs = inputsFor(prep, 4);
    const want = await Promise.all(inputs.map((x) => reference(prep, x)));
    const n = 160;
    const load = exactLoad({ url: g.url, model: g.name, inputs, want, clients: 16, requests: n });
    const { answers, bad } = load;
    while (load.done < 30) await sleep(5);
    // The last stage dies: the first stage's requests to it fail, the gateway holds them.
    await killChild(b.proc, 'SIGKILL');
    const killedAt = performance.now();
    await sleep(300);
    assert.ok(g.held > 0, 'requests are held while no working chain exists');
    const b2 = await spawnWorker(args('2..2')); spare.push(b2);
    const a2 = await spawnWorker(args('1..1', b2.address)); spare.push(a2);
    const deployMs = performance.now() - killedAt;
    // Only the pipeline's token may deploy.
    const denied = await fetch(`${g.url}/v1/partition/failover`, { method: 'POST', body: JSON.stringify({ cuts, next: a2.address, reason: 'x' }) });
    assert.equal(denied.status, 401);
    const res = await fetch(`${g.url}/v1/partition/failover`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ cuts, next: a2.address, reason: 'stage-exit: last', lost: ['last'], detectMs: 1, replanMs: 0, deployMs }),
    });
    const rep = await res.json() as { failover: { replayed: number; switchMs: number }; version: string };
    assert.equal(res.status, 200, JSON.stringify(rep));
    await load.finished;
    assert.deepEqual(bad, []);
    assert.equal(answers.size, n, 'every request answered');
    assert.ok([...answers.values()].every((c) => c === 1), 'none answered twice');
    assert.ok(rep.failover.replayed >= 1, `replayed ${rep.failover.replayed}`);
    const st = await (await fetch(`${g.url}/v1/partition`)).json() as { version: string; history: { failover?: { reason: string } }[] };
    assert.equal(st.version, rep.version);
    assert.equal(st.history.at(-1)?.failover?.reason, 'stage-exit: last');
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    assert.match(metrics, /kerf_failovers_total\{reason="stage-exit"\} 1/);
    assert.match(metrics, /kerf_gateway_replayed_total [1-9]/);
    assert.match(metrics, /kerf_gateway_replay_buffer_bytes 0/);
  } finally {
    await g.close();
    for (const w of [a, b, ...spare]) await killChild(w.proc);
  }
});
