/** A wrong pipeline token: both ends say which hop refused whom and why, in health and in logs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { Gateway, Worker } from '../../src/serve/index.js';
import { AUTH_REFUSED, type AuthRefusal } from '../../src/serve/diagnostics.js';
import { ocrModel } from '../support/shared.js';
import { httpRequest, sleep } from './serve-helpers.js';

const MODEL = ocrModel('cls');

async function until<T>(f: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('wrong token: the refusing tier and the refused one both name the hop, the peer and the reason', async () => {
  const prep = await prepareModel(MODEL, { inputShapes: { x: [1, 3, 48, 192] } });
  const seen: AuthRefusal[] = [];
  const onMsg = (m: unknown): void => { seen.push(m as AuthRefusal); };
  AUTH_REFUSED.subscribe(onMsg);
  // gateway (token A) → edge (token A) → cloud (token B): the edge → cloud hop is refused; and a
  // second gateway with token C is refused by the edge.
  const cloud = await Worker.start({ token: 'token-B', model: prep, segment: { cuts: [20, 43], blocks: [2, 2] }, name: 'cloud' });
  const edge = await Worker.start({ token: 'token-A', model: prep, segment: { cuts: [20, 43], blocks: [1, 1] }, name: 'edge', next: cloud.address });
  const g = await Gateway.start({ model: prep, pipeline: { cuts: [20, 43], next: edge.address, token: 'token-C', id: 'cuts 20,43' } });
  try {
    // The gateway's health reason: which tier refused it and why.
    const health = await until(async () => {
      const r = await httpRequest(`${g.url}/v2/health/ready`, 'GET');
      const doc = JSON.parse(r.body.toString()) as { ready: boolean; reason?: string };
      return r.status === 503 && /wrong pipeline token/.test(doc.reason ?? '') ? doc.reason! : undefined;
    }, 10_000, 'the gateway to report the refusal');
    const edgeAt = `${edge.address.host}:${edge.address.port}`;
    assert.match(health, new RegExp(`next tier ${edgeAt} refused this gateway: ${edgeAt} refused the connection: worker edge .* refused gateway cuts 20,43 \\(127\\.0\\.0\\.1:\\d+\\): wrong pipeline token`));
    assert.equal(g.pipeline.next?.lastError?.code, 'KERF_ERR_AUTH');
    // The edge's own readiness: its next hop (cloud) refused it.
    const er = await until(async () => { const r = await edge.ready(); return /wrong pipeline token/.test(r.reason ?? '') ? r.reason! : undefined; }, 10_000, 'the edge to see the refusal');
    assert.match(er, /next tier 127\.0\.0\.1:\d+ refused edge: .* refused the connection: worker cloud .* refused worker edge .*wrong pipeline token/);
    // Both sides said it on the diagnostics channel (what kerf worker prints to its log).
    await until(() => (seen.some((r) => r.side === 'client') && seen.some((r) => r.side === 'server') ? true : undefined), 5000, 'both sides logged');
    const server = seen.filter((r) => r.side === 'server');
    assert.ok(server.some((r) => /^worker edge .* refused gateway cuts 20,43 \(127\.0\.0\.1:\d+\): wrong pipeline token/.test(r.message)), JSON.stringify(server));
    assert.ok(server.some((r) => /^worker cloud .* refused worker edge .*: wrong pipeline token/.test(r.message)), JSON.stringify(server));
    const client = seen.filter((r) => r.side === 'client');
    assert.ok(client.some((r) => /^gateway cuts 20,43: .* refused the connection: worker edge/.test(r.message)), JSON.stringify(client));
    for (const r of seen) assert.doesNotMatch(r.message, /token-[ABC]/, 'no token is ever printed');
  } finally {
    AUTH_REFUSED.unsubscribe(onMsg);
    await g.close();
    await edge.close();
    await cloud.close();
  }
});
