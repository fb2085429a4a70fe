/** The control API (/v1/partition) and `kerf repartition`: answers, history, and one-line errors naming the culprit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { prepareModel } from '../../src/engine/index.js';
import { Gateway, Worker, type PartitionStatus, type SwitchReport } from '../../src/serve/index.js';
import { blockCuts } from '../../src/graph/cuts.js';
import { sharedPath } from '../support/shared.js';
import { KERF, TOKEN, httpRequest, inferBinary, inputsFor } from './serve-helpers.js';

const path = sharedPath('models/squeezenet1_1.onnx');

function kerf(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [KERF, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KERF_TOKEN: undefined, KERF_URL: undefined, ...env } });
    let out = '', err = '';
    p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    p.on('exit', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

/** A valid plan document for `cuts` (3 used tiers for 2 cuts; 2 cuts → device and cloud). */
function planOf(model: string, cuts: number[]): Record<string, unknown> {
  const three = cuts.length === 2;
  const t = (tier: string, system: string | null, blocks: [number, number] | null) => ({ tier, system, blocks, layers: blocks, computeS: 0.004, sendsBytes: 0 });
  return {
    schema: 'kerf.plan/v1', model, objective: 'latency', returnResult: false, inputBytes: 1, totalS: 0.012, bottleneckS: 0.004, objectiveS: 0.012, bytesSent: 0,
    cuts, boundaries: three ? [0, 1] : [0],
    tiers: three ? [t('device', 'pi', [0, 0]), t('edge', 'box', [1, 1]), t('cloud', 'dc', [2, 2])] : [t('device', 'pi', [0, 0]), t('edge', null, null), t('cloud', 'dc', [1, 1])],
    transfers: three ? [{ from: 'pi', to: 'box', bytes: 1, seconds: 0, kind: 'forward' }, { from: 'box', to: 'dc', bytes: 1, seconds: 0, kind: 'forward' }] : [{ from: 'pi', to: 'dc', bytes: 1, seconds: 0, kind: 'forward' }],
    network: { links: [{ from: 'pi', to: 'box', rttMs: 2, bandwidthMbps: 100 }, { from: 'box', to: 'dc', rttMs: 2, bandwidthMbps: 100 }, { from: 'pi', to: 'dc', rttMs: 2, bandwidthMbps: 100 }] },
    criteria: {}, ranked: [],
  };
}

const json = async (url: string, method: string, body?: unknown): Promise<{ status: number; doc: Record<string, unknown> }> => {
  const r = await httpRequest(url, method, body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), { 'content-type': 'application/json' });
  return { status: r.status, doc: JSON.parse(r.body.toString()) as Record<string, unknown> };
};

test('/v1/partition and kerf repartition', { skip: !path }, async () => {
  const prep = await prepareModel(path!);
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const A = [ids[5]!, ids[15]!], B = [ids[10]!, ids[20]!];
  const cloud = await Worker.start({ token: TOKEN, model: prep, segment: { cuts: A, blocks: [2, 2] }, name: 'cloud' });
  const edge = await Worker.start({ token: TOKEN, model: prep, segment: { cuts: A, blocks: [1, 1] }, name: 'edge', next: cloud.address });
  const g = await Gateway.start({ model: prep, pipeline: { cuts: A, next: edge.address, token: TOKEN } });
  try {
    await g.waitReady(10_000);
    const base = `${g.url}/v1/partition`;
    let st = (await json(base, 'GET')).doc as unknown as PartitionStatus;
    assert.deepEqual([st.strategy, st.version, st.cuts, st.history.length], ['on-demand', 'v0', A, 0]);

    // Mistakes: 400 with a code and a message naming the culprit.
    let r = await json(base, 'POST', { cuts: [A[0]] });
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_CUT']);
    assert.match(String(r.doc.error), /1 cut .* 3 tiers; give 2 cut ids/);
    r = await json(base, 'POST', { cuts: [A[0], 999999] });
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_CUT']);
    assert.match(String(r.doc.error), /unknown cut id 999999/);
    r = await json(base, 'POST', { cuts: [B[1], B[0]] });
    assert.match(String(r.doc.error), /strictly increasing/);
    r = await json(base, 'POST', '{"cuts": [1,');
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_USAGE']);
    r = await json(base, 'POST', { plan: { ...planOf(prep.model.name, B), schema: 'kerf.plan/v0' } });
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_PLAN']);
    assert.match(String(r.doc.error), /field 'schema' is 'kerf\.plan\/v0'/);
    r = await json(base, 'POST', { plan: planOf('resnet18', B) });
    assert.match(String(r.doc.error), /the plan's 'model' is 'resnet18'/);
    r = await json(base, 'POST', { plan: { ...planOf(prep.model.name, B), modelSha256: 'f'.repeat(64) } });
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_PLAN']);
    assert.match(String(r.doc.error), /made for another file than the served model .*'modelSha256' is ffffffffffff…/);
    r = await json(base, 'POST', { plan: { ...planOf(prep.model.name, B), cuts: [B[0]] } });
    assert.match(String(r.doc.error), /field 'cuts' has 1 cut id .* but the tiers use 3 tiers/);
    const twoTier = planOf(prep.model.name, [B[0]!]);
    r = await json(base, 'POST', { plan: twoTier });
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_PLAN']);
    assert.match(String(r.doc.error), /the plan leaves edge unused \(it runs on device, cloud: 2 parts\), but this pipeline has 3 running tiers/);
    r = await json(base, 'POST', { cuts: B, reroute: 'yes' });
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_USAGE']);
    assert.match(String(r.doc.error), /field 'reroute' must be true or false, got "yes"/);
    r = await json(base, 'POST', { cuts: B, rerout: true });
    assert.match(String(r.doc.error), /unknown field 'rerout'/);
    r = await json(`${base}/strategy`, 'PUT', { strategy: 'teleport' });
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_USAGE']);
    assert.match(String(r.doc.error), /teleport/);

    // A plan: its cuts are used and its summary recorded.
    r = await json(base, 'POST', { plan: { ...planOf(prep.model.name, B), modelSha256: prep.model.sha256 } });
    assert.equal(r.status, 200, JSON.stringify(r.doc));
    const rep = r.doc as unknown as SwitchReport;
    assert.deepEqual([rep.from, rep.to, rep.version, rep.prepared, rep.strategy], [A, B, 'v1', 'loaded', 'on-demand']);
    assert.deepEqual(rep.tiers.map((t) => t.tier), ['gateway', 'edge', 'cloud']);
    assert.ok(rep.durationMs >= rep.prepareMs && rep.prepareMs > 0);
    // Still answers, now on v1; the old segments are gone from the workers.
    const res = await inferBinary(g.url, g.name, inputsFor(prep, 1)[0]!);
    assert.equal(res.status, 200);
    assert.deepEqual([...edge.segments.keys()], ['v1']);
    assert.equal(edge.defaultSegment, 'v1');
    assert.equal(edge.metrics.requests.get({ segment: 'v1', outcome: 'ok' }), 1);

    // The CLI: switch back, show the status, and refuse mistakes in one line.
    const c1 = await kerf(['repartition', '--cuts', A.join(','), '--url', g.url]);
    assert.equal(c1.code, 0, c1.err);
    assert.match(c1.out, new RegExp(`cuts ${B.join(',')} → ${A.join(',')} \\(v2, on-demand, loaded\\): downtime [\\d.]+ ms`));
    // An unloaded version's metric series go with it (they would pile up over many switches).
    assert.equal(edge.metrics.requests.get({ segment: 'v1', outcome: 'ok' }), 0);
    const c2 = await kerf(['repartition', '--status', '--url', g.url, '--json']);
    st = JSON.parse(c2.out) as PartitionStatus;
    assert.deepEqual([st.version, st.cuts, st.history.map((h) => h.version)], ['v2', A, ['v1', 'v2']]);
    assert.deepEqual(st.plan, null);
    assert.deepEqual(st.tiers.map((t) => [t.name, t.part]), [['gateway', 0], ['edge', 1], ['cloud', 2]]);
    const c3 = await kerf(['repartition', '--cuts', String(A[0]), '--url', g.url]);
    assert.equal(c3.code, 1);
    assert.match(c3.err, /^kerf: .*1 cut .* give 2.*\n$/);
    const c4 = await kerf(['repartition']);
    assert.equal(c4.code, 2);
    assert.match(c4.err, /give --to plan.json, --cuts/);
    const c5 = await kerf(['repartition', '--to', '/nonexistent/plan.json', '--url', g.url]);
    assert.equal(c5.code, 1);
    assert.match(c5.err, /^kerf: \/nonexistent\/plan.json: cannot read the plan/);
    const c6 = await kerf(['repartition', '--status', '--url', 'http://127.0.0.1:1']);
    assert.equal(c6.code, 1);
    assert.match(c6.err, /cannot reach the gateway/);

    // Same cuts again: nothing to do, said so.
    r = await json(base, 'POST', { cuts: A });
    assert.deepEqual([r.status, (r.doc as unknown as SwitchReport).prepared], [200, 'none']);

    // Standby via the API: the standby split is loaded beside, and a switch to it loads nothing.
    r = await json(`${base}/strategy`, 'PUT', { strategy: 'standby', standby: B });
    assert.equal(r.status, 200, JSON.stringify(r.doc));
    assert.deepEqual((r.doc as unknown as PartitionStatus).standby?.cuts, B);
    assert.equal(edge.segments.size, 2);
    r = await json(base, 'POST', { cuts: B });
    assert.deepEqual([(r.doc as unknown as SwitchReport).prepared, (r.doc as unknown as SwitchReport).tiers], ['standby', []]);
    assert.deepEqual(((await json(base, 'GET')).doc as unknown as PartitionStatus).standby?.cuts, A);
    assert.equal(((await httpRequest(`${g.url}/v2/health/ready`, 'GET')).status), 200);

    // Warming likely splits: only with hot-swap; afterwards a switch to a warmed split loads nothing.
    const C = [ids[8]!, ids[18]!];
    r = await json(`${base}/warm`, 'POST', { candidates: [C] });
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_USAGE']);
    assert.match(String(r.doc.error), /hot-swap/);
    assert.equal((await json(`${base}/strategy`, 'PUT', { strategy: 'hot-swap' })).status, 200);
    r = await json(`${base}/warm`, 'POST', { candidates: [[C[0]]] });
    assert.deepEqual([r.status, r.doc.code], [400, 'KERF_ERR_CUT']);
    r = await json(`${base}/warm`, 'POST', { candidates: [C] });
    assert.equal(r.status, 200, JSON.stringify(r.doc));
    const warmed = r.doc as unknown as { candidates: number[][]; tiers: { tier: string; chunksLoaded: number }[] };
    assert.deepEqual(warmed.candidates, [C]);
    assert.deepEqual(warmed.tiers.map((t) => t.tier), ['gateway', 'edge', 'cloud']);
    assert.ok(warmed.tiers.some((t) => t.chunksLoaded > 0), JSON.stringify(warmed));
    assert.deepEqual([...edge.segments.keys()].filter((k) => k.startsWith('warm')), [], 'warm leaves no segment behind');
    r = await json(base, 'POST', { cuts: C });
    const toC = r.doc as unknown as SwitchReport;
    assert.deepEqual([toC.prepared, toC.tiers.map((t) => t.chunksLoaded)], ['chunks', [0, 0, 0]]);
    assert.equal((await inferBinary(g.url, g.name, inputsFor(prep, 1)[0]!)).status, 200);
  } finally {
    await g.close(); await edge.close(); await cloud.close();
  }
});

test('changing the pipeline needs the control token; reading does not; kerf repartition sends it', { skip: !path }, async () => {
  const prep = await prepareModel(path!);
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const A = [ids[5]!], B = [ids[10]!];
  const cloud = await Worker.start({ token: TOKEN, model: prep, segment: { cuts: A, blocks: [1, 1] }, name: 'cloud' });
  const g = await Gateway.start({ model: prep, pipeline: { cuts: A, next: cloud.address, token: TOKEN }, controlToken: 'ctl-secret' });
  try {
    await g.waitReady(10_000);
    const base = `${g.url}/v1/partition`;
    const refused = async (url: string, method: string, body: string, headers: Record<string, string> = {}): Promise<void> => {
      const r = await httpRequest(url, method, body, { 'content-type': 'application/json', ...headers });
      const doc = JSON.parse(r.body.toString()) as { code: string; error: string };
      assert.deepEqual([r.status, doc.code], [401, 'KERF_ERR_AUTH'], `${method} ${url}: ${r.body.toString()}`);
      assert.match(doc.error, /wrong or missing token \(Authorization: Bearer TOKEN/);
    };
    await refused(base, 'POST', JSON.stringify({ cuts: B }));
    await refused(base, 'POST', 'not json at all');
    await refused(base, 'POST', JSON.stringify({ cuts: B }), { authorization: 'Bearer wrong' });
    await refused(base, 'POST', JSON.stringify({ cuts: B }), { authorization: `Bearer ${TOKEN}` });
    await refused(`${base}/strategy`, 'PUT', JSON.stringify({ strategy: 'hot-swap' }));
    await refused(`${base}/strategy`, 'POST', JSON.stringify({ strategy: 'hot-swap' }));
    await refused(`${base}/warm`, 'POST', JSON.stringify({ candidates: [B] }));
    await refused(`${g.url}/v1/rollout`, 'POST', JSON.stringify({ back: true }));
    // Nothing changed, and reading stays open.
    let st = (await json(base, 'GET')).doc as unknown as PartitionStatus;
    assert.deepEqual([st.version, st.cuts, st.strategy, st.history.length], ['v0', A, 'on-demand', 0]);
    assert.equal((await json(`${base}/strategy`, 'GET')).status, 200);

    // The CLI: refused in one line without the token, done with --token or KERF_TOKEN.
    const c0 = await kerf(['repartition', '--cuts', B.join(','), '--gateway', g.url]);
    assert.equal(c0.code, 1);
    assert.match(c0.err, /^kerf: .*POST \/v1\/partition: wrong or missing token.*\n$/);
    const c1 = await kerf(['repartition', '--cuts', B.join(','), '--gateway', g.url, '--token', 'ctl-secret']);
    assert.equal(c1.code, 0, c1.err);
    assert.match(c1.out, new RegExp(`cuts ${A.join(',')} → ${B.join(',')} \\(v1`));
    const c2 = await kerf(['repartition', '--strategy', 'hot-swap', '--url', g.url], { KERF_TOKEN: 'ctl-secret' });
    assert.equal(c2.code, 0, c2.err);
    assert.match(c2.out, /strategy hot-swap/);
    const c3 = await kerf(['repartition', '--cuts', A.join(','), '--url', g.url, '--gateway', 'http://127.0.0.1:1']);
    assert.equal(c3.code, 2);
    assert.match(c3.err, /--gateway and --url name the same thing/);
    st = (await json(base, 'GET')).doc as unknown as PartitionStatus;
    assert.deepEqual([st.cuts, st.strategy], [B, 'hot-swap']);
    assert.equal((await inferBinary(g.url, g.name, inputsFor(prep, 1)[0]!)).status, 200);
  } finally {
    await g.close(); await cloud.close();
  }
});
