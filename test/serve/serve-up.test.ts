/** `kerf up` and `kerf worker` as a user runs them: ready endpoint, answers, no orphans, usage errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { prepareModel } from '../../src/engine/index.js';
import { ocrModel } from '../support/shared.js';
import { KERF, alive, bytesOf, httpRequest, inferBinary, inputsFor, reference, sleep } from './serve-helpers.js';
import { GATEWAY_MALLOC_ENV, GATEWAY_NODE_FLAGS, WORKER_MALLOC_ENV } from '../../src/serve/malloc-env.js';

const MODEL = ocrModel('cls');

async function startUp(args: string[]): Promise<{ proc: ReturnType<typeof spawn>; ready: { url: string; model: string; processes: { pid: number; name: string }[]; links: unknown[] } }> {
  const proc = spawn(process.execPath, [KERF, 'up', '--model', MODEL, '--input-shape', 'x=1x3x48x192', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const ready = await new Promise<{ url: string; model: string; processes: { pid: number; name: string }[]; links: unknown[] }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`kerf up not ready: ${err}`)), 60_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('"ready"'));
      if (line) { clearTimeout(t); resolve(JSON.parse(line)); }
    });
    proc.once('exit', (code) => { clearTimeout(t); reject(new Error(`kerf up exited ${code}: ${err}`)); });
  });
  return { proc, ready };
}

async function gone(pids: number[], ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) { if (pids.every((p) => !alive(p))) return true; await sleep(50); }
  return pids.every((p) => !alive(p));
}

test('kerf up: 3 tiers with an emulated link serve the unsplit answer; SIGTERM leaves no process', async () => {
  const prep = await prepareModel(MODEL, { inputShapes: { x: [1, 3, 48, 192] } });
  const [feeds] = inputsFor(prep, 1);
  const ref = bytesOf((await reference(prep, feeds!))['softmax_0.tmp_0']!);
  const { proc, ready } = await startUp(['--cuts', '20,43', '--links', '100mbit/2ms,direct']);
  const pids = ready.processes.map((p) => p.pid);
  try {
    assert.deepEqual(ready.processes.map((p) => p.name), ['device', 'edge', 'cloud']);
    assert.equal(ready.links.length, 1);
    assert.equal((await httpRequest(`${ready.url}/v2/health/ready`, 'GET')).status, 200);
    const r = await inferBinary(ready.url, ready.model, feeds!);
    assert.equal(r.status, 200, r.error);
    assert.ok(r.outputs['softmax_0.tmp_0']!.equals(ref));
    const meta = JSON.parse((await httpRequest(`${ready.url}/v2/models/${ready.model}`, 'GET')).body.toString()) as { inputs: { name: string; datatype: string; shape: number[] }[] };
    assert.deepEqual(meta.inputs, [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] }]);
    // every tier starts with two malloc arenas (what a switch frees is reused, not kept per
    // thread); the gateway also with the thresholds that keep a request's buffers for the next
    for (const [k, pid] of pids.entries()) {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const want = k === 0 ? GATEWAY_MALLOC_ENV : WORKER_MALLOC_ENV;
      for (const [name, value] of Object.entries(want)) {
        assert.ok(env.includes(`${name}=${process.env[name] ?? value}`), `${ready.processes[k]!.name} (pid ${pid}): ${env.filter((e) => e.startsWith('MALLOC')).join(' ') || 'no MALLOC_ settings'}`);
      }
    }
    // and the gateway alone with the node flags that keep V8 from a full collection every few requests
    for (const [k, pid] of pids.entries()) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const script = argv.findIndex((a) => a.endsWith('kerf.js'));
      assert.ok(script > 0, argv.join(' '));
      assert.deepEqual(argv.slice(1, script), k === 0 ? [...GATEWAY_NODE_FLAGS] : [], `${ready.processes[k]!.name} (pid ${pid}): ${argv.join(' ')}`);
    }
    assert.equal(GATEWAY_MALLOC_ENV.MALLOC_ARENA_MAX, WORKER_MALLOC_ENV.MALLOC_ARENA_MAX);
    assert.ok(!('MALLOC_TRIM_THRESHOLD_' in WORKER_MALLOC_ENV));
  } finally {
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    process.kill(proc.pid!, 'SIGTERM');
    assert.equal(await exited, 0);
  }
  assert.ok(await gone(pids, 5000), `children left running: ${pids.filter(alive).join(', ')}`);
});

test('kerf up killed with SIGKILL: its children exit by themselves', async () => {
  const { proc, ready } = await startUp(['--cuts', '20']);
  const pids = ready.processes.map((p) => p.pid);
  assert.equal(pids.length, 2);
  process.kill(proc.pid!, 'SIGKILL');
  assert.ok(await gone(pids, 5000), `orphans: ${pids.filter(alive).join(', ')}`);
});

test('kerf worker and kerf up: a user mistake is one line and a non-zero exit', () => {
  const cases: [string[], RegExp][] = [
    [['worker', '--model', MODEL], /--listen and --model are required/],
    [['worker', '--listen', '127.0.0.1:0', '--model', MODEL, '--blocks', '3..1', '--token', 't', '--input-shape', 'x=1x3x48x192'], /blocks? 3\.\.1 do not exist|parts? 3\.\.1/],
    [['worker', '--listen', 'nowhere', '--model', MODEL, '--token', 't'], /--listen 'nowhere'/],
    [['up', '--model', MODEL], /give a plan\.json, or --model and --cuts/],
    [['up', '--model', MODEL, '--cuts', '20', '--links', 'fast'], /--links hop 0/],
  ];
  for (const [args, msg] of cases) {
    const r = spawnSync(process.execPath, [KERF, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, KERF_TOKEN: '' } });
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, msg, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, `stack trace for ${args.join(' ')}`);
  }
});
