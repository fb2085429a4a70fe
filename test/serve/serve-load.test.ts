/** 1,000 requests with 32 in flight through a 3-tier pipeline: none lost, none mixed up. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { Gateway, Worker } from '../../src/serve/index.js';
import { ocrModel } from '../support/shared.js';
import { TOKEN, bytesOf, httpRequest, inferBinary, inputsFor, reference } from './serve-helpers.js';

test('1000 requests, 32 in flight, 3 tiers: every answer is its own input\'s', async () => {
  const prep = await prepareModel(ocrModel('cls'), { inputShapes: { x: [1, 3, 48, 192] } });
  const cuts = [20, 43];
  const cloud = await Worker.start({ token: TOKEN, model: prep, segment: { cuts, blocks: [2, 2] }, name: 'cloud' });
  const edge = await Worker.start({ token: TOKEN, model: prep, segment: { cuts, blocks: [1, 1] }, name: 'edge', next: cloud.address, metrics: '127.0.0.1:0' });
  const g = await Gateway.start({ model: prep, pipeline: { cuts, next: edge.address, token: TOKEN } });
  try {
    await g.waitReady(10_000);
    const inputs = inputsFor(prep, 16);
    const refs: Buffer[] = [];
    for (const f of inputs) refs.push(bytesOf((await reference(prep, f))['softmax_0.tmp_0']!));
    // Distinct inputs must give distinct outputs, or a mix-up could go unseen.
    assert.equal(new Set(refs.map((r) => r.toString('hex'))).size, refs.length);
    const N = 1000, INFLIGHT = 32;
    const seen = new Set<string>();
    let sent = 0, ok = 0;
    const failures: string[] = [];
    const lane = async (): Promise<void> => {
      while (sent < N) {
        const i = sent++;
        const k = (i * 7) % inputs.length;
        const r = await inferBinary(g.url, g.name, inputs[k]!, `req-${i}`);
        if (r.status !== 200) { failures.push(`${i}: ${r.status} ${r.error}`); continue; }
        if (r.id !== `req-${i}`) failures.push(`${i}: answered with id ${r.id}`);
        else if (!r.outputs['softmax_0.tmp_0']!.equals(refs[k]!)) failures.push(`${i}: output of another input`);
        else { ok++; seen.add(r.id); }
      }
    };
    await Promise.all(Array.from({ length: INFLIGHT }, lane));
    assert.deepEqual(failures, []);
    assert.equal(ok, N);
    assert.equal(seen.size, N);
    // Every tier counted every request; the metrics say so.
    const m = (await httpRequest(`http://${edge.metricsAddress!.host}:${edge.metricsAddress!.port}/metrics`, 'GET')).body.toString();
    assert.match(m, /kerf_worker_requests_total\{segment="main",outcome="ok"\} 1000\b/);
    assert.match(m, /kerf_worker_stage_seconds_count\{stage="compute"\} 1000\b/);
    assert.match(m, /kerf_worker_queue_depth 0\b/);
    assert.equal(cloud.metrics.requests.get({ segment: 'main', outcome: 'ok' }), N);
    const gm = (await httpRequest(`${g.url}/metrics`, 'GET')).body.toString();
    assert.match(gm, /kerf_gateway_requests_total\{status="200"\} 1000\b/);
  } finally {
    await g.close(); await edge.close(); await cloud.close();
  }
});
