import { TLS_KEY, TLS_CERT } from '../support/tls.js';
/** TLS between tiers from the command line: --tls-cert/--tls-key on a worker, --tls-ca on its client. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareModel } from '../../src/engine/index.js';
import { ocrModel } from '../support/shared.js';
import { httpRequest, inferBinary, inputsFor, killChild, sleep, spawnWorker } from './serve-helpers.js';

// self-signed for localhost / 127.0.0.1 (the one protocol-conn.test.ts uses)
const KEY = TLS_KEY;
const CERT = TLS_CERT;
const MODEL = ocrModel('cls');

async function readiness(url: string, want: boolean, ms: number): Promise<{ ready: boolean; reason?: string }> {
  const end = performance.now() + ms;
  for (;;) {
    const doc = JSON.parse((await httpRequest(`${url}/v2/health/ready`, 'GET')).body.toString()) as { ready: boolean; reason?: string };
    if (doc.ready === want || performance.now() > end) return doc;
    await sleep(100);
  }
}

test('kerf worker --tls-cert/--tls-key serves TLS; a gateway with --tls-ca reaches it, one without cannot', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-tls-'));
  const key = join(dir, 'key.pem'), cert = join(dir, 'cert.pem');
  writeFileSync(key, KEY);
  writeFileSync(cert, CERT);
  const common = ['--model', MODEL, '--cuts', '20', '--input-shape', 'x=1x3x48x192'];
  const edge = await spawnWorker(['--listen', '127.0.0.1:0', ...common, '--blocks', '1..1', '--name', 'edge', '--tls-cert', cert, '--tls-key', key]);
  const good = await spawnWorker(['--gateway', '--listen', '127.0.0.1:0', ...common, '--blocks', '0..0', '--next', edge.address, '--tls-ca', cert]);
  const plain = await spawnWorker(['--gateway', '--listen', '127.0.0.1:0', ...common, '--blocks', '0..0', '--next', edge.address]);
  try {
    const url = `http://${good.address}`;
    assert.equal((await readiness(url, true, 20_000)).ready, true);
    const prep = await prepareModel(MODEL, { inputShapes: { x: [1, 3, 48, 192] } });
    const r = await inferBinary(url, 'ch_ppocr_mobile_v2.0_cls_infer', inputsFor(prep, 1)[0]!);
    assert.equal(r.status, 200, r.error);
    // plain TCP to a TLS tier never becomes ready
    const p = await readiness(`http://${plain.address}`, true, 2000);
    assert.equal(p.ready, false);
    assert.match(p.reason ?? '', /next tier 127\.0\.0\.1:\d+ unreachable/);
  } finally {
    await killChild(plain.proc);
    await killChild(good.proc);
    await killChild(edge.proc);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kerf agent --tls-cert/--tls-key serves HTTPS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-tls-agent-'));
  writeFileSync(join(dir, 'key.pem'), KEY);
  writeFileSync(join(dir, 'cert.pem'), CERT);
  const { spawn } = await import('node:child_process');
  const { ROOT } = await import('../support/shared.js');
  const p = spawn(process.execPath, [join(ROOT, 'bin', 'kerf.js'), 'agent', '--listen', '127.0.0.1:0', '--token', 't', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      p.stdout!.on('data', (c: Buffer) => { out += c.toString(); const m = /listening on (https:\/\/\S+)/.exec(out); if (m) resolve(m[1]!); });
      p.once('exit', (c) => reject(new Error(`agent exited ${c}`)));
    });
    const https = await import('node:https');
    const status = await new Promise<number>((resolve, reject) => {
      https.get(`${url}/nothing-here`, { ca: CERT }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
    });
    assert.ok(status >= 400 && status < 500, `an HTTPS answer (${status})`);
  } finally {
    await killChild(p);
    rmSync(dir, { recursive: true, force: true });
  }
});
