/** The dashboard's pure parts and its HTTP surface without a browser: window, report inputs, event stream, controls, bad requests. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { Gateway } from '../../src/serve/gateway.js';
import { LatencyWindow, percentile } from '../../src/ui/window.js';
import { classify, parseJsonOrLines } from '../../src/ui/report.js';
import { pairedSummary, summarise, verdict, type Phase } from '../../src/cli/bench/dashboard.js';
import { ocrModel } from '../support/shared.js';
import { httpRequest, inferBinary, inputsFor } from '../serve/serve-helpers.js';

test('latency window: nearest-rank percentiles, rates per second, per-tier means, a bounded history', () => {
  assert.equal(percentile([], 0.5), null);
  assert.equal(percentile([1, 2, 3, 4], 0.5), 2);
  assert.equal(percentile([1, 2, 3, 4], 0.99), 4);
  const w = new LatencyWindow(3);
  for (let i = 1; i <= 100; i++) w.answered(i / 1000, i === 7 ? 503 : 200);
  w.stages('gateway', { queueS: 0.001, computeS: 0.002, remoteS: 0.01 }, { edge: [0.0005, 0.004], cloud: [NaN, 0.006] });
  w.stages('gateway', { queueS: 0.003, computeS: 0.004, remoteS: 0.03 }, { edge: [0.0015, 0.006] });
  const p = w.roll(1000, 2);
  assert.equal(p.rps, 50);
  assert.equal(p.errorsPerS, 0.5);
  assert.equal(p.p50S, 0.05);
  assert.equal(p.p99S, 0.099);
  assert.deepEqual(p.tiers.gateway, { queueS: 0.002, computeS: 0.003 });
  assert.deepEqual(p.tiers.edge, { queueS: 0.001, computeS: 0.005 });
  assert.deepEqual(p.tiers.cloud, { queueS: 0, computeS: 0.006 });
  assert.ok(Math.abs(p.remoteS! - 0.02) < 1e-12);
  const empty = w.roll(2000, 1);
  assert.deepEqual([empty.rps, empty.p50S, empty.remoteS, Object.keys(empty.tiers).length], [0, null, null, 0]);
  w.roll(3000, 1);
  w.roll(4000, 1);
  assert.deepEqual(w.history().map((x) => x.t), [2000, 3000, 4000]);
});

test('kerf view inputs: kinds by schema, JSON Lines as a list, clear errors for the rest', () => {
  assert.equal(classify({ schema: 'kerf.profile/v1', blocks: [] }, 'p.json'), 'profile');
  assert.equal(classify({ schema: 'kerf.plan/v1', ranked: [] }, 'plan.json'), 'plan');
  assert.equal(classify({ schema: 'kerf.placement/v1', stages: [] }, 'pl.json'), 'placement');
  assert.equal(classify([{ strategy: 'standby', downtimeMs: 0.1 }], 'b.jsonl'), 'bench');
  assert.equal(classify({ rows: [{ policy: 'x', mean: 1 }], wallS: 3 }, 'adapt.json'), 'bench');
  assert.throws(() => classify({ schema: 'kerf.plan/v1' }, 'plan.json'), { code: 'KERF_ERR_PLAN', message: /plan\.json: plan has no 'ranked' list/ });
  assert.throws(() => classify({ schema: 'kerf.manifest/v1' }, 'm.json'), { code: 'KERF_ERR_USAGE', message: /m\.json: schema 'kerf\.manifest\/v1'/ });
  assert.throws(() => classify({ a: 1 }, 'x.json'), { code: 'KERF_ERR_USAGE', message: /x\.json: neither/ });
  assert.deepEqual(parseJsonOrLines('{"a":1}\n{"a":2}\n', 'r.jsonl'), [{ a: 1 }, { a: 2 }]);
  assert.throws(() => parseJsonOrLines('{"a":1}\n{oops\n', 'r.jsonl'), { code: 'KERF_ERR_USAGE', message: /r\.jsonl: line 2 is not JSON/ });
});

test('bench dashboard: paired summaries, the sign-test interval of the median, the verdict', () => {
  // n = 30: the 95 % interval of the median is the 10th … 21st smallest (coverage 95.7 %)
  const s30 = pairedSummary(Array.from({ length: 30 }, (_, i) => 29 - i));
  assert.deepEqual([s30.n, s30.median, s30.q25, s30.q75, s30.ciLow, s30.ciHigh], [30, 14.5, 7.25, 21.75, 9, 20]);
  // n = 6: the smallest and largest (coverage 1 − 2/64); below 6 pairs there is no 95 % interval
  assert.deepEqual([pairedSummary([5, 1, 3, 2, 4, 6]).ciLow, pairedSummary([5, 1, 3, 2, 4, 6]).ciHigh], [1, 6]);
  assert.deepEqual([pairedSummary([1, 2, 3]).ciLow, pairedSummary([1, 2, 3]).ciHigh], [-Infinity, Infinity]);
  assert.equal(pairedSummary([NaN, 1, Infinity]).n, 1);
  assert.equal(verdict(pairedSummary(Array.from({ length: 30 }, (_, i) => -1 + i / 20)), 2), 'met');
  assert.equal(verdict(pairedSummary(Array.from({ length: 30 }, (_, i) => 2.5 + i / 20)), 2), 'missed');
  assert.equal(verdict(pairedSummary(Array.from({ length: 30 }, (_, i) => -10 + i)), 2), 'unclear');
  // phases → paired ratios: pair 1 closed first, pair 2 open first
  const ph = (open: boolean, lat: number, cpuS: number, dashS: number): Phase => ({ open, latMs: [lat, lat, lat, lat], cpuS, dashS, wallS: 1, events: open ? 1 : 0 });
  const r = summarise([ph(false, 10, 0.04, 0.0001), ph(true, 11, 0.044, 0.0005), ph(true, 10, 0.04, 0.0005), ph(false, 10, 0.04, 0.0001)],
    { model: 'm', cuts: [1], phaseS: 1, settleS: 0, viewer: 'stream', pages: 1 });
  assert.equal(r.pairs, 2);
  assert.ok(r.p50DiffPct.n === 2 && Math.abs(r.p50DiffPct.median - 5) < 1e-9, JSON.stringify(r.p50DiffPct));
  assert.ok(Math.abs(r.cpuPerRequestDiffPct.median - 5) < 1e-9);
  assert.deepEqual([r.closed.requests, r.open.requests, r.closed.cpuMsPerRequest, r.open.eventsPerS], [8, 8, 10, 1]);
  assert.ok(Math.abs(r.closed.dashUsPerRequest - 25) < 1e-9 && Math.abs(r.open.dashUsPerRequest - 125) < 1e-9);
  assert.ok(Math.abs(r.dashBoundPct - 1) < 1e-9, String(r.dashBoundPct));
  assert.throws(() => summarise([ph(false, 1, 1, 0), ph(false, 1, 1, 0)], { model: 'm', cuts: [], phaseS: 1, settleS: 0, viewer: 'stream', pages: 1 }), /not a pair/);
});

/** The events of an SSE stream until `n` have arrived. */
function events(url: string, done: (got: { event: string; data: unknown }[]) => boolean): Promise<{ event: string; data: unknown }[]> {
  return new Promise((resolve, reject) => {
    const got: { event: string; data: unknown }[] = [];
    const req = http.get(url, (res) => {
      assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (ev && data) got.push({ event: ev, data: JSON.parse(data) });
          if (done(got)) { req.destroy(); resolve(got); return; }
        }
      });
    });
    req.on('error', (e) => { if (!done(got)) reject(e); });
  });
}

test('dashboard over HTTP: page, assets, event stream, token-gated controls, bad requests', { timeout: 60_000 }, async () => {
  const model = ocrModel('cls');
  const g = await Gateway.start({ model, inputShapes: { x: [1, 3, 48, 192] }, pipeline: { cuts: [], local: true, token: 'ui-token' } });
  try {
    await g.waitReady(20_000);
    const page = await httpRequest(`${g.url}/ui/`, 'GET');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.match(page.body.toString(), /<script src="\/ui\/assets\/dashboard\.js">/);
    assert.equal((await httpRequest(`${g.url}/ui`, 'GET')).status, 308);
    for (const a of ['uplot.js', 'uplot.css', 'kerf.css', 'common.js', 'dashboard.js']) assert.equal((await httpRequest(`${g.url}/ui/assets/${a}`, 'GET')).status, 200, a);
    assert.equal((await httpRequest(`${g.url}/ui/assets/..%2Fpackage.json`, 'GET')).status, 404);
    assert.equal((await httpRequest(`${g.url}/ui/assets/secret.js`, 'GET')).status, 404);
    // Traffic, then the stream: hello with the model, snapshots with the window's point.
    const [feeds] = inputsFor(g.prep, 1);
    for (let i = 0; i < 5; i++) assert.equal((await inferBinary(g.url, g.name, feeds!)).status, 200);
    // Until the periods' points (in hello's history and the snapshots) count the five answers above.
    type Pt = { t: number; rps: number; p50S: number | null };
    const points = (got: { event: string; data: unknown }[]): Pt[] => {
      const all = got.flatMap((e) => (e.event === 'hello' ? (e.data as { history: Pt[] }).history : [(e.data as { point: Pt | null }).point].filter((x): x is Pt => !!x)));
      return [...new Map(all.map((p) => [p.t, p])).values()];
    };
    const evs = await events(`${g.url}/v1/events`, (got) => points(got).reduce((a, p) => a + p.rps, 0) >= 5);
    assert.deepEqual(evs.slice(0, 2).map((e) => e.event), ['hello', 'snapshot']);
    const hello = evs[0]!.data as { model: { name: string; cuts: { id: number }[] }; controls: boolean };
    assert.equal(hello.model.name, g.name);
    assert.ok(hello.model.cuts.length > 10);
    assert.equal(hello.controls, true);
    assert.equal(points(evs).reduce((a, p) => a + p.rps, 0), 5);
    assert.ok(points(evs).some((p) => p.p50S !== null && p.p50S > 0));
    const last = evs[evs.length - 1]!.data as { partition: { cuts: number[] }; gateway: { ready: boolean } };
    assert.equal(last.gateway.ready, true);
    assert.deepEqual(last.partition.cuts, []);
    // Controls: refused without the token or with a wrong one, done with it.
    const post = (path: string, body: string, auth?: string) => httpRequest(`${g.url}${path}`, path.endsWith('strategy') ? 'PUT' : 'POST', body, { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) });
    for (const auth of [undefined, 'Bearer wrong', 'Basic dWk6dWktdG9rZW4=', 'Bearer ui-token extra']) {
      const r = await post('/ui/api/partition', '{"cuts":[]}', auth);
      assert.equal(r.status, 401, String(auth));
      assert.equal(JSON.parse(r.body.toString()).code, 'KERF_ERR_AUTH');
    }
    assert.equal((await httpRequest(`${g.url}/ui/api/auth`, 'GET', undefined, { authorization: 'Bearer ui-token' })).status, 200);
    const st = await post('/ui/api/strategy', '{"strategy":"pause-resume"}', 'Bearer ui-token');
    assert.equal(st.status, 200, st.body.toString());
    assert.equal(g.switcher.strategy, 'pause-resume');
    for (const [path, body, code] of [['/ui/api/strategy', '{"strategy":"teleport"}', 400], ['/ui/api/partition', '{"cuts":"1"}', 400], ['/ui/api/partition', 'not json', 400], ['/ui/api/partition', '[1]', 400]] as const) {
      const r = await post(path, body, 'Bearer ui-token');
      assert.equal(r.status, code, `${path} ${body}`);
      assert.equal(JSON.parse(r.body.toString()).code, 'KERF_ERR_USAGE');
    }
    assert.equal((await httpRequest(`${g.url}/ui/api/partition`, 'GET')).status, 405);
    assert.equal((await httpRequest(`${g.url}/ui/api/nope`, 'POST', '{}')).status, 404);
    assert.equal((await httpRequest(`${g.url}/v1/events`, 'POST', '{}')).status, 405);
    // Garbage on a raw socket, and an event stream dropped mid-way: the gateway serves on.
    await new Promise<void>((resolve) => {
      const s = net.connect(g.address.port, g.address.host, () => { s.end('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff garbage'); });
      s.on('close', () => resolve());
      s.on('error', () => resolve());
      setTimeout(() => s.destroy(), 500);
    });
    assert.equal((await httpRequest(`${g.url}/v2/health/ready`, 'GET')).status, 200);
  } finally {
    await g.close();
  }
});
