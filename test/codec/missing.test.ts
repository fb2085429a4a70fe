/**
 * A codec whose npm package fails to load (a tree installed before the package came: no `npm ci`
 * since) is refused with a clear error naming the package and "run npm ci" — when a peer
 * negotiates it, and when this process is asked to send or accept it — never silently sent raw.
 * The missing package is simulated in a child process (test/support/hide-module.cjs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '../../src/serve/index.js';
import { isKerfError } from '../../src/errors.js';
import { ROOT } from '../support/shared.js';
import { tinyNet } from '../profile/support.js';
import { KERF, TOKEN, killChild, spawnWorker } from '../serve/serve-helpers.js';

const HIDE = join(ROOT, 'test', 'support', 'hide-module.cjs');
const hidden = { NODE_OPTIONS: `--require ${HIDE}`, KERF_TEST_HIDE_MODULES: 'lz4-napi' };

/** Run `kerf worker …` with lz4-napi hidden until it exits; its exit code and stderr. */
function runWorker(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [KERF, 'worker', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, KERF_TOKEN: TOKEN, ...hidden } });
    let stderr = '';
    p.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`kerf worker did not exit: ${stderr}`)); }, 30_000);
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

test('a codec whose package cannot be loaded is refused at negotiation and at start, naming the package and npm ci; others still work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-missing-'));
  const model = join(dir, 'tiny.onnx');
  writeFileSync(model, tinyNet());
  const saved = { ...process.env };
  // spawnWorker passes this process's environment on: hide lz4-napi in the worker only.
  Object.assign(process.env, hidden);
  let w: Awaited<ReturnType<typeof spawnWorker>> | undefined;
  try {
    w = await spawnWorker(['--listen', '127.0.0.1:0', '--model', model]);
  } finally {
    for (const k of Object.keys(hidden)) { if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k]; }
  }
  try {
    // This process has lz4; the worker does not: it refuses lz4 when the client negotiates it.
    await assert.rejects(Connection.connect({ port: w.port, token: TOKEN, codec: 'lz4' }),
      (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_CODEC' && /lz4-napi/.test(e.message) && /run npm ci/.test(e.message));
    await assert.rejects(Connection.connect({ port: w.port, token: TOKEN, codec: 'zstd-1', replyCodec: 'shuffle+lz4' }),
      (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_CODEC' && /cannot encode/.test(e.message) && /npm ci/.test(e.message));
    // zstd's package loads there: that codec is accepted, and raw frames still work.
    const z = await Connection.connect({ port: w.port, token: TOKEN, codec: 'zstd-1' });
    assert.equal(z.codec, 'zstd-1');
    await z.close();
    const raw = await Connection.connect({ port: w.port, token: TOKEN });
    await raw.close();
  } finally {
    await killChild(w.proc);
  }
  try {
    // Asked to send with it, or to accept it, the process refuses to start.
    for (const args of [['--next', '127.0.0.1:9', '--next-codec', 'lz4'], ['--codecs', 'zstd-1,int8+lz4']]) {
      const r = await runWorker(['--listen', '127.0.0.1:0', '--model', model, ...args]);
      assert.notEqual(r.code, 0, `kerf worker ${args.join(' ')} started`);
      assert.match(r.stderr, /lz4-napi.*run npm ci/, r.stderr);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
