/**
 * The pods' commands, run: the Deployments `kerf k8s render` writes for a real model are
 * started as local processes exactly as their containers would run them (the init container's
 * `kerf k8s fetch` from an HTTP server on loopback, then the worker or gateway with its args),
 * only the listen addresses, the model path and the next hop's Service name mapped to loopback.
 * Answers through the gateway are bitwise those of the unsplit model. A wrong sha256 stops the
 * init container and leaves no model behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareModel } from '../../src/engine/index.js';
import { blockCuts, blocksOf } from '../../src/graph/cuts.js';
import { renderObjects } from '../../src/k8s/manifests.js';
import type { K8sObject } from '../../src/k8s/types.js';
import { place, validateCluster } from '../../src/plan/place/index.js';
import { ocrModel } from '../support/shared.js';
import { KERF, bytesOf, inferBinary, inputsFor, killChild, reference } from '../serve/serve-helpers.js';

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
function kerf(argv: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [KERF, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.once('close', (status) => { clearTimeout(t); resolve({ status, stdout, stderr }); });
  });
}

function startPod(args: string[], token: string): Promise<{ proc: ChildProcess; address: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [KERF, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KERF_TOKEN: token, MALLOC_ARENA_MAX: '2' } });
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

test("the rendered pods' commands run: fetch checks the sha256, the stages chain, answers equal the unsplit model's", async () => {
  const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
  const cuts = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const blocks = blocksOf(prep.model, prep.analysis, cuts).map((b) => ({
    seconds: Math.max(b.flops, 1e5) / 1e9, outputBytes: b.outputBytes, paramBytes: b.paramBytes, ...(b.cutId !== undefined ? { cutId: b.cutId } : {}),
  }));
  const cluster = validateCluster({
    schema: 'kerf.cluster/v1', wireCpuMsPerMB: 0,
    nodes: [{ name: 'n1', memoryMB: 512, speed: 0.5 }, { name: 'n2', memoryMB: 512, speed: 0.5 }, { name: 'n3', memoryMB: 512, speed: 0.5 }],
    links: [{ from: 'n1', to: 'n2', bandwidthMbps: 1000 }, { from: 'n2', to: 'n3', bandwidthMbps: 1000 }, { from: 'n1', to: 'n3', bandwidthMbps: 1000 }],
  });
  const placement = place({ name: 'cls', inputBytes: prep.analysis.totals.inputBytes, blocks }, cluster);
  assert.ok(placement.stages.length >= 2, `a split placement (${placement.stages.length} stages)`);
  const sha = createHash('sha256').update(readFileSync(MODEL)).digest('hex');
  const files = await serveFile(MODEL);
  const dir = mkdtempSync(join(tmpdir(), `kerf-k8s-pods-${process.pid}-`));
  const procs: ChildProcess[] = [];
  try {
    const objs = renderObjects(placement, { name: 'cls', namespace: 'edge', image: 'kerf:test', modelUri: files.url, sha256: sha, version: '1', token: 'pod-token', inputShapes: SHAPE });
    const token = ((objs.find((o) => o.kind === 'Secret') as unknown as { stringData: { token: string } }).stringData.token);
    const deps = objs.filter((o) => o.kind === 'Deployment') as Dep[];
    const stages = deps.filter((d) => d.metadata.labels!['app.kubernetes.io/component'] === 'stage')
      .sort((a, b) => Number(b.metadata.labels!['kerf.dev/stage']) - Number(a.metadata.labels!['kerf.dev/stage']));
    const gateway = deps.find((d) => d.metadata.labels!['app.kubernetes.io/component'] === 'gateway')!;
    const addressOf = new Map<string, string>(); // Service host → loopback address
    for (const d of [...stages, gateway]) {
      const podDir = join(dir, d.metadata.name);
      const init = d.spec.template.spec.initContainers[0]!;
      assert.equal(init.command[0], 'kerf');
      const initArgs = init.command.slice(1).map((a) => (a.startsWith('/kerf/model/') ? join(podDir, a.slice('/kerf/model/'.length)) : a));
      mkdirSync(podDir, { recursive: true });
      const f = await kerf(initArgs);
      assert.equal(f.status, 0, f.stderr);
      assert.match(f.stdout, /sha256 ok/);
      const c = d.spec.template.spec.containers[0]!;
      assert.deepEqual(c.command, ['kerf']);
      const args = c.args!.map((a, i, all) => {
        const flag = all[i - 1];
        if (flag === '--listen' || flag === '--metrics') return '127.0.0.1:0';
        if (flag === '--model') return join(podDir, 'model.onnx');
        if (flag === '--next') { const host = a.split(':')[0]!; assert.ok(addressOf.has(host), `next hop ${a} is a stage started before`); return addressOf.get(host)!; }
        return a;
      });
      const pod = await startPod(args, token);
      procs.push(pod.proc);
      // every Service whose selector picks this pod now reaches it (its own, and the first hop for stage 0)
      const labels = (d as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template.metadata.labels;
      for (const svc of objs.filter((o) => o.kind === 'Service')) {
        const sel = (svc as unknown as { spec: { selector: Record<string, string> } }).spec.selector;
        if (Object.entries(sel).every(([k, v]) => labels[k] === v)) addressOf.set(`${svc.metadata.name}.edge.svc`, pod.address);
      }
    }
    const gwAddress = addressOf.get(`${gateway.metadata.name}.edge.svc`)!;
    assert.equal(addressOf.get('cls.edge.svc'), gwAddress, 'the entry Service picks the gateway');
    const inputs = inputsFor(prep, 3);
    for (const [i, inp] of inputs.entries()) {
      const want = await reference(prep, inp);
      const got = await inferBinary(`http://${gwAddress}`, 'cls', inp);
      assert.equal(got.status, 200, got.error);
      for (const [name, t] of Object.entries(want)) assert.ok(bytesOf(t).equals(got.outputs[name]!), `request ${i} output ${name} equal`);
    }
    // a wrong sha256: the init container fails, says why, writes nothing
    const bad = await kerf(['k8s', 'fetch', '--uri', files.url, '--sha256', '0'.repeat(64), '-o', join(dir, 'bad.onnx')]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, new RegExp(`sha256 is ${sha}, expected 0{64}`));
    assert.ok(!existsSync(join(dir, 'bad.onnx')) && !existsSync(join(dir, 'bad.onnx.part')));
  } finally {
    for (const p of procs) await killChild(p);
    await files.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
