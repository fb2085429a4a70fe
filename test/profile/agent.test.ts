import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { profileRemote } from '../../src/profile/agent.js';
import { checkProfile } from '../../src/profile/schema.js';
import { ROOT } from '../support/shared.js';
import { tinyNet } from './support.js';

const KERF = join(ROOT, 'bin', 'kerf.js');
const TOKEN = 'test-token-1';

/** Start `kerf agent` in its own process on a free loopback port; resolves once it prints its URL. */
async function startAgent(args: string[] = []): Promise<{ child: ChildProcess; url: string; log: () => string }> {
  const child = spawn(process.execPath, [KERF, 'agent', '--listen', '127.0.0.1:0', '--token', TOKEN, '--max-model-mb', '1', '--system', 'pi4', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c) => { err += c; });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start: ${err}`)), 20_000);
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /kerf agent listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`agent exited ${code}: ${err}`)); });
  });
  return { child, url, log: () => err };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

function raw(url: string, method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try { resolve({ status: res.statusCode!, json: JSON.parse(text) }); } catch { reject(new Error(`not JSON: ${text}`)); }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const health = async (url: string) => (await raw(url, 'GET', '/v1/health', { authorization: `Bearer ${TOKEN}` }));

test('kerf agent across two processes: profile comes back; 401, 400, 413 refused; keeps serving after each', async () => {
  const { child, url, log } = await startAgent();
  try {
    const model = tinyNet();
    const p = await profileRemote(url, TOKEN, model, { system: 'pi4', tier: 'device', repeats: 2, warmup: 1, name: 'tiny' });
    assert.equal(p.schema, 'kerf.profile/v1');
    assert.equal(p.model.name, 'tiny');
    assert.match(p.model.sha256!, /^[0-9a-f]{64}$/);
    assert.equal(p.system.name, 'pi4');
    assert.equal(p.system.tier, 'device');
    assert.equal(p.system.hostname, hostname(), 'the agent reports its own box');
    assert.ok(p.system.cpu && p.system.cores! >= 1 && p.system.memoryBytes! > 0);
    assert.ok(p.blocks.length >= 4 && p.blocks.every((b) => b.latency.runs === 2 && b.latency.median > 0));

    await assert.rejects(profileRemote(url, 'wrong', model, { repeats: 1, warmup: 1 }), (e: any) => e.code === 'KERF_ERR_AUTH' && e.details.status === 401);
    const noAuth = await raw(url, 'POST', '/v1/profile', { 'content-type': 'application/octet-stream' }, model);
    assert.equal(noAuth.status, 401);
    assert.equal((await health(url)).status, 200);

    await assert.rejects(profileRemote(url, TOKEN, new TextEncoder().encode('this is not an onnx model at all'), { repeats: 1, warmup: 1 }),
      (e: any) => e.details.status === 400 && e.code === 'KERF_ERR_ONNX_PARSE');
    const empty = await raw(url, 'POST', '/v1/profile', { authorization: `Bearer ${TOKEN}` });
    assert.equal(empty.status, 400);
    const badOpt = await raw(url, 'POST', '/v1/profile?repeats=lots', { authorization: `Bearer ${TOKEN}` }, model);
    assert.equal(badOpt.status, 400);
    assert.match(badOpt.json.error.message, /repeats 'lots'/);
    assert.equal((await health(url)).status, 200);

    const big = new Uint8Array(1_500_000).fill(7);
    await assert.rejects(profileRemote(url, TOKEN, big, {}), (e: any) => e.details.status === 413 && /larger than this agent accepts \(1\.0 MB/.test(e.message));
    // without a content-length (chunked upload) the limit holds too
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(new URL('/v1/profile', url), { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'transfer-encoding': 'chunked' } }, (res) => { res.resume(); resolve(res.statusCode!); });
      req.on('error', reject);
      for (let i = 0; i < 6; i++) req.write(big.subarray(0, 300_000));
      req.end();
    });
    assert.equal(chunked, 413);
    const h = await health(url);
    assert.equal(h.status, 200);
    assert.equal(h.json.busy, false);

    // two jobs at once: both served, one after the other
    const [a, b] = await Promise.all([
      profileRemote(url, TOKEN, model, { repeats: 2, warmup: 1, name: 'a' }),
      profileRemote(url, TOKEN, model, { repeats: 2, warmup: 1, name: 'b', granularity: 'all' }),
    ]);
    assert.equal(a.model.name, 'a');
    assert.equal(b.blocks.length, 10);
    assert.equal(b.system.name, 'pi4', "the agent's --system when the client names none");
    assert.equal((await raw(url, 'GET', '/nowhere', {})).status, 404);
    assert.match(log(), /job 3: b .*10 blocks/);
  } finally {
    await stop(child);
  }
});

test('kerf profile --remote writes the profile the agent measured', async () => {
  const { child, url } = await startAgent();
  const dir = mkdtempSync(join(tmpdir(), 'kerf-remote-'));
  try {
    const model = join(dir, 'tiny.onnx');
    writeFileSync(model, tinyNet());
    const r = spawnSync(process.execPath, [KERF, 'profile', model, '--remote', url, '--token', TOKEN, '--system', 'edge7', '--tier', 'edge', '--repeats', '2', '--warmup', '1', '-o', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const p = checkProfile(JSON.parse(readFileSync(join(dir, 'tiny.edge7.profile.json'), 'utf8')));
    assert.equal(p.model.file, model);
    assert.equal(p.system.name, 'edge7');
    const bad = spawnSync(process.execPath, [KERF, 'profile', model, '--remote', url, '--token', 'nope', '--system', 'x', '--tier', 'edge'], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^kerf: agent http:\/\/127\.0\.0\.1:\d+: 401 wrong or missing token/);
  } finally {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
});
