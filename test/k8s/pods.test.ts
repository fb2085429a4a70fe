/**
 * The pods' commands, run: the Deployments kerf writes for a real model are started as local
 * processes exactly as their containers would run them (the init container's `kerf k8s fetch`,
 * then the worker or gateway with its args), only the listen addresses, the model directory and
 * the next hop's Service name mapped to loopback. Each stage gets exactly its part: cut out of
 * the model in its init container (`kerf k8s render`), or served by the operator (`GET
 * /v1/parts/SHA`, driven here through the fake API server for tests). Answers through the
 * gateway are bitwise those of the unsplit model. A wrong sha256 — of the model or of a part —
 * stops the init container and leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareModel } from '../../src/engine/index.js';
import { blockCuts, blocksOf } from '../../src/graph/cuts.js';
import { renderObjects } from '../../src/k8s/manifests.js';
import { Operator } from '../../src/k8s/operator.js';
import type { K8sObject } from '../../src/k8s/types.js';
import { partBytes } from '../../src/cluster/parts.js';
import { FakeApiServer } from './fake-apiserver.js';
import { kubeconfig, node, until } from './fixtures.js';
import { place, validateCluster } from '../../src/plan/place/index.js';
import { ocrModel } from '../support/shared.js';
import { KERF, bytesOf, inferBinary, inputsFor, killChild, reference } from '../serve/serve-helpers.js';
import { IMAGE_KERF_BIN } from '../../src/k8s/objects.js';
import { GATEWAY_NODE_FLAGS } from '../../src/serve/malloc-env.js';

const MODEL = ocrModel('cls');
const SHAPE = { x: [1, 3, 48, 192] };

type Container = { command: string[]; args?: string[]; env?: { name: string; value?: string }[] };
type Dep = K8sObject & { spec: { template: { spec: { initContainers: Container[]; containers: Container[] } } } };

function serveFile(file: string): Promise<{ url: string; close(): Promise<void> }> {
  const body = readFileSync(file);
  const server = http.createServer((req, res) => {
    if (req.url === '/cls.onnx') { res.writeHead(200, { 'content-length': body.length }); res.end(body); } else { res.writeHead(404); res.end(); }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as { port: number }).port;
    resolve({ url: `http://127.0.0.1:${port}/cls.onnx`, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) });
  }));
}

/** Run kerf to its end (asynchronously: the model's HTTP server lives in this process). */
function kerf(argv: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [KERF, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.once('close', (status) => { clearTimeout(t); resolve({ status, stdout, stderr }); });
  });
}

function startPod(nodeFlags: string[], args: string[], token: string): Promise<{ proc: ChildProcess; address: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...nodeFlags, KERF, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KERF_TOKEN: token, MALLOC_ARENA_MAX: '2' } });
    let out = '', err = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`did not start: ${err}`)); }, 60_000);
    proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (line) { clearTimeout(timer); resolve({ proc, address: (JSON.parse(line) as { address: string }).address }); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${args[0]} exited with ${code}: ${err}`)); });
  });
}

/** The cls model's blocks at single granularity, as the placement and a profile see them. */
async function clsBlocks() {
  const prep = await prepareModel(MODEL, { inputShapes: SHAPE, name: 'cls' }); // the name parts are made with: the URI's basename
  const cuts = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const blocks = blocksOf(prep.model, prep.analysis, cuts).map((b) => ({
    seconds: Math.max(b.flops, 1e5) / 1e9, outputBytes: b.outputBytes, paramBytes: b.paramBytes, ...(b.cutId !== undefined ? { cutId: b.cutId } : {}),
  }));
  return { prep, blocks };
}

/**
 * Run a pipeline's pods as local processes, last stage first: each init container, then its
 * container. Checks that each stage's init container wrote exactly its part (bytes equal to
 * `partBytes`, its sha256 the status's when given). Returns the gateway's address.
 */
async function runPods(objs: K8sObject[], token: string, dir: string, procs: ChildProcess[], prep: Awaited<ReturnType<typeof prepareModel>>, cuts: number[]): Promise<string> {
  const deps = objs.filter((o) => o.kind === 'Deployment') as Dep[];
  const stages = deps.filter((d) => d.metadata.labels!['app.kubernetes.io/component'] === 'stage')
    .sort((a, b) => Number(b.metadata.labels!['kerf.dev/stage']) - Number(a.metadata.labels!['kerf.dev/stage']));
  const gateway = deps.find((d) => d.metadata.labels!['app.kubernetes.io/component'] === 'gateway')!;
  const ns = gateway.metadata.namespace!;
  const addressOf = new Map<string, string>(); // Service host → loopback address
  for (const d of [...stages, gateway]) {
    const podDir = join(dir, d.metadata.name);
    const init = d.spec.template.spec.initContainers[0]!;
    assert.equal(init.command[0], 'kerf');
    const initArgs = init.command.slice(1).map((a) => (a.startsWith('/kerf/model/') ? join(podDir, a.slice('/kerf/model/'.length)) : a));
    mkdirSync(podDir, { recursive: true });
    const f = await kerf(initArgs, { KERF_TOKEN: token });
    assert.equal(f.status, 0, f.stderr);
    assert.match(f.stdout, /sha256 ok/);
    const stage = d.metadata.labels!['kerf.dev/stage'];
    if (stage !== undefined) {
      const k = Number(stage);
      assert.deepEqual(readdirSync(podDir), ['part.onnx'], 'only the part is left in the pod');
      assert.ok(readFileSync(join(podDir, 'part.onnx')).equals(Buffer.from(partBytes(prep, cuts, k, k))), `stage ${k} got exactly its part`);
    }
    const c = d.spec.template.spec.containers[0]!;
    // the gateway runs node with its flags, then the image's kerf; the stages run kerf
    assert.deepEqual(c.command, stage === undefined ? ['node', ...GATEWAY_NODE_FLAGS, IMAGE_KERF_BIN] : ['kerf']);
    const args = c.args!.map((a, i, all) => {
      const flag = all[i - 1];
      if (flag === '--listen' || flag === '--metrics') return '127.0.0.1:0';
      if (flag === '--model') return join(podDir, a.slice('/kerf/model/'.length));
      if (flag === '--next') { const host = a.split(':')[0]!; assert.ok(addressOf.has(host), `next hop ${a} is a stage started before`); return addressOf.get(host)!; }
      return a;
    });
    const pod = await startPod(c.command[0] === 'node' ? c.command.slice(1, -1) : [], args, token);
    procs.push(pod.proc);
    // every Service whose selector picks this pod now reaches it (its own, and the first hop for stage 0)
    const labels = (d as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template.metadata.labels;
    for (const svc of objs.filter((o) => o.kind === 'Service')) {
      const sel = (svc as unknown as { spec: { selector: Record<string, string> } }).spec.selector;
      if (Object.entries(sel).every(([k, v]) => labels[k] === v)) addressOf.set(`${svc.metadata.name}.${ns}.svc`, pod.address);
    }
  }
  const gwAddress = addressOf.get(`${gateway.metadata.name}.${ns}.svc`)!;
  assert.ok([...addressOf].some(([svc, a]) => a === gwAddress && !svc.includes('-gw.')), 'the entry Service picks the gateway');
  return gwAddress;
}

async function answersEqual(prep: Awaited<ReturnType<typeof prepareModel>>, gwAddress: string): Promise<void> {
  for (const [i, inp] of inputsFor(prep, 3).entries()) {
    const want = await reference(prep, inp);
    const got = await inferBinary(`http://${gwAddress}`, 'cls', inp);
    assert.equal(got.status, 200, got.error);
    for (const [name, t] of Object.entries(want)) assert.ok(bytesOf(t).equals(got.outputs[name]!), `request ${i} output ${name} equal`);
  }
}

test("kerf k8s render's pods run: each stage cuts exactly its part out of the model (sha256 checked); answers equal the unsplit model's", async () => {
  const { prep, blocks } = await clsBlocks();
  const cluster = validateCluster({
    schema: 'kerf.cluster/v1', wireCpuMsPerMB: 0,
    nodes: [{ name: 'n1', memoryMB: 512, speed: 0.5 }, { name: 'n2', memoryMB: 512, speed: 0.5 }, { name: 'n3', memoryMB: 512, speed: 0.5 }],
    links: [{ from: 'n1', to: 'n2', bandwidthMbps: 1000 }, { from: 'n2', to: 'n3', bandwidthMbps: 1000 }, { from: 'n1', to: 'n3', bandwidthMbps: 1000 }],
  });
  const placement = place({ name: 'cls', inputBytes: prep.analysis.totals.inputBytes, blocks }, cluster);
  assert.ok(placement.stages.length >= 2, `a split placement (${placement.stages.length} stages)`);
  const cuts = placement.stages.slice(0, -1).map((s) => s.cutOut!);
  const sha = createHash('sha256').update(readFileSync(MODEL)).digest('hex');
  const files = await serveFile(MODEL);
  const dir = mkdtempSync(join(tmpdir(), `kerf-k8s-pods-${process.pid}-`));
  const procs: ChildProcess[] = [];
  try {
    // kerf k8s render with the model here: each stage's part sha256 goes into its init container
    writeFileSync(join(dir, 'placement.json'), JSON.stringify(placement));
    const rendered = await kerf(['k8s', 'render', join(dir, 'placement.json'), '--name', 'cls', '--namespace', 'edge', '--image', 'kerf:test', '--model-uri', files.url, '--sha256', sha, '--model-file', MODEL, '--input-shape', 'x=1x3x48x192']);
    assert.equal(rendered.status, 0, rendered.stderr);
    const objs = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as K8sObject);
    for (const d of objs.filter((o) => o.kind === 'Deployment' && o.metadata.labels!['app.kubernetes.io/component'] === 'stage') as Dep[]) {
      const k = Number(d.metadata.labels!['kerf.dev/stage']);
      const init = d.spec.template.spec.initContainers[0]!.command;
      assert.equal(init[init.indexOf('--part-sha256') + 1], createHash('sha256').update(partBytes(prep, cuts, k, k)).digest('hex'), `stage ${k}: its part's sha256`);
    }
    const token = ((objs.find((o) => o.kind === 'Secret') as unknown as { stringData: { token: string } }).stringData.token);
    await answersEqual(prep, await runPods(objs, token, dir, procs, prep, cuts));
    const mismatch = await kerf(['k8s', 'render', join(dir, 'placement.json'), '--image', 'i', '--model-uri', files.url, '--sha256', 'f'.repeat(64), '--model-file', MODEL]);
    assert.equal(mismatch.status, 1);
    assert.match(mismatch.stderr, new RegExp(`--model-file .*: sha256 is ${sha}, not --sha256 f{64}`));
    assert.ok(renderObjects(placement, { name: 'cls', namespace: 'edge', image: 'i', modelUri: files.url, sha256: sha, version: '1', token: 't' }).length === objs.length);
    // a wrong sha256: the init container fails, says why, writes nothing
    const bad = await kerf(['k8s', 'fetch', '--uri', files.url, '--sha256', '0'.repeat(64), '-o', join(dir, 'bad.onnx')]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, new RegExp(`sha256 is ${sha}, expected 0{64}`));
    assert.ok(!existsSync(join(dir, 'bad.onnx')) && !existsSync(join(dir, 'bad.onnx.part')));
    // a part that is not the one expected (--part-sha256 of another part): refused, nothing written
    const other = createHash('sha256').update(partBytes(prep, cuts, 1, 1)).digest('hex');
    const wrong = await kerf(['k8s', 'fetch', '--uri', files.url, '--sha256', sha, '--cuts', cuts.join(','), '--part', '0', '--part-sha256', other, '--input-shape', 'x=1x3x48x192', '-o', join(dir, 'p0.onnx')]);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, new RegExp(`part 0 at cuts \\[${cuts.join(',')}\\] has sha256 [0-9a-f]{64}, expected ${other}`));
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('p0')), []);
  } finally {
    for (const p of procs) await killChild(p);
    await files.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the operator serves each stage exactly its part (token checked); the init container checks its sha256 and refuses a wrong one; spec.defaults (codec lz4, switching) run', async () => {
  const { prep, blocks } = await clsBlocks();
  const sha = createHash('sha256').update(readFileSync(MODEL)).digest('hex');
  const files = await serveFile(MODEL);
  const fake = await FakeApiServer.start();
  const dir = mkdtempSync(join(tmpdir(), `kerf-k8s-parts-${process.pid}-`));
  const procs: ChildProcess[] = [];
  let op: Operator | null = null;
  try {
    const lat = (s: number) => ({ median: s, p90: s, min: s, spread: 0, runs: 5 });
    const profile = {
      schema: 'kerf.profile/v1', model: { name: 'cls', inputBytes: prep.analysis.totals.inputBytes }, system: { name: 'ref' }, granularity: 'single', source: 'kerf',
      blocks: blocks.map((b, i) => ({ index: i, firstLayer: i, lastLayer: i, ...(b.cutId !== undefined ? { cutId: b.cutId } : {}), latency: lat(b.seconds), outputBytes: b.outputBytes, paramBytes: b.paramBytes })),
    };
    for (const n of ['n1', 'n2', 'n3']) fake.put(node(n, { memory: '512Mi', cpu: '500m' }) as never);
    fake.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cls-profile', namespace: 'edge' }, data: { 'profile.json': JSON.stringify(profile) } });
    fake.put({
      apiVersion: 'kerf.dev/v1alpha1', kind: 'KerfPipeline', metadata: { name: 'cls', namespace: 'edge', generation: 1 },
      spec: { model: { uri: files.url, sha256: sha, version: '1', inputShapes: SHAPE, profile: { configMapRef: { name: 'cls-profile' } } }, network: { bandwidthMbps: 1000 }, defaults: { codec: 'lz4', switching: 'pause-resume' } },
    });
    op = await Operator.start({
      kc: kubeconfig(fake.url, 'op'), namespace: 'edge', image: 'kerf:test', identity: 'a', leaseDurationS: 3, resyncS: 60, log: () => {},
      listen: '127.0.0.1:0', partsUrl: (a) => `http://${a}`, partsDir: join(dir, 'cache'),
    });
    type Stage = { index: number; part?: { sha256: string; bytes: number } };
    const pend = await until('a pending placement with its parts', () => (fake.get('KerfPipeline', 'cls', 'edge')?.status as { pending?: { stages: Stage[]; cuts: number[] } } | undefined)?.pending, 60_000);
    assert.ok(pend.stages.length >= 2, `a split placement (${pend.stages.length} stages)`);
    for (const s of pend.stages) {
      assert.ok(s.part, `stage ${s.index} has its part in status`);
      assert.equal(s.part.sha256, createHash('sha256').update(partBytes(prep, pend.cuts, s.index, s.index)).digest('hex'), 'the part is partBytes of the stage');
    }
    const objs = await until('the Deployments', () => { const d = fake.list('Deployment'); return d.length === pend.stages.length + 1 && [...d, ...fake.list('Service')] as K8sObject[]; });
    const secret = fake.list('Secret').find((x) => x.metadata.name === 'cls-token') as unknown as { stringData?: { token: string }; data?: { token: string } };
    const token = secret.stringData?.token ?? Buffer.from(secret.data!.token, 'base64').toString();
    const gwArgs = (objs.find((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'gateway' && o.kind === 'Deployment') as unknown as Dep).spec.template.spec.containers[0]!.args!;
    assert.ok(gwArgs.includes('--next-codec') && gwArgs.includes('--switch-strategy'), 'the spec defaults are in the gateway command');
    await answersEqual(prep, await runPods(objs, token, dir, procs, prep, pend.cuts));
    // the served part: a wrong token is refused; a part other than the one expected is refused by its sha256
    const [s0, s1] = [pend.stages[0]!, pend.stages[1]!];
    const url = `http://${op.address}/v1/parts/${s0.part!.sha256}`;
    const noAuth = await kerf(['k8s', 'fetch', '--uri', url, '--sha256', s0.part!.sha256, '--bearer-env', 'KERF_TOKEN', '-o', join(dir, 'x.onnx')], { KERF_TOKEN: 'not-the-token' });
    assert.equal(noAuth.status, 1);
    assert.match(noAuth.stderr, /HTTP 401/);
    const wrong = await kerf(['k8s', 'fetch', '--uri', url, '--sha256', s1.part!.sha256, '--bearer-env', 'KERF_TOKEN', '-o', join(dir, 'x.onnx')], { KERF_TOKEN: token });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, new RegExp(`sha256 is ${s0.part!.sha256}, expected ${s1.part!.sha256}`));
    assert.ok(!existsSync(join(dir, 'x.onnx')) && !existsSync(join(dir, 'x.onnx.part')));
    // a replica that did not build it (a follower, a restart) builds it from the pipeline's status
    const op2 = await Operator.start({
      kc: kubeconfig(fake.url, 'op2'), namespace: 'edge', image: 'kerf:test', identity: 'b', leaseDurationS: 3, resyncS: 60, log: () => {},
      listen: '127.0.0.1:0', partsUrl: (a) => `http://${a}`, partsDir: join(dir, 'cache2'),
    });
    try {
      assert.equal(op2.leader, false);
      const got = await fetch(`http://${op2.address}/v1/parts/${s1.part!.sha256}`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(got.status, 200);
      assert.equal(createHash('sha256').update(Buffer.from(await got.arrayBuffer())).digest('hex'), s1.part!.sha256);
    } finally { await op2.close(); }
  } finally {
    for (const p of procs) await killChild(p);
    await op?.close();
    await fake.close();
    await files.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
