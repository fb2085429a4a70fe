/**
 * TLS across hosts, on loopback: agents serving HTTPS that require client certificates, a
 * controller (`kerf up --hosts`, `kerf measure --hosts`) that verifies them with the CA of the
 * hosts file's `tls`, and stages that serve their tier frames over mutual TLS with their agent's
 * certificate. Answers stay exactly the unsplit model's; controllers without the CA are refused
 * with an error saying so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { prepareModel } from '../../src/engine/index.js';
import { ocrModel } from '../support/shared.js';
import { TLS_CERT, TLS_KEY } from '../support/tls.js';
import { KERF, bytesOf, inferBinary, inputsFor, reference, thirds } from '../serve/serve-helpers.js';
import { CLUSTER_TOKEN, startAgent, type RunningAgent } from './helpers.js';

const MODEL = ocrModel('cls');
const SHAPE = 'x=1x3x48x192';

function run(cmd: string, args: string[], until?: RegExp): { done: Promise<{ code: number | null; out: string; err: string }>; stop: () => void; ready: Promise<string> } {
  const proc = spawn(process.execPath, [KERF, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  let hit: (s: string) => void = () => {};
  const ready = new Promise<string>((r) => { hit = r; });
  proc.stdout!.on('data', (c: Buffer) => { out += c.toString(); const m = until?.exec(out); if (m) hit(m[0]); });
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 120_000);
  const done = new Promise<{ code: number | null; out: string; err: string }>((r) => proc.once('exit', (code) => { clearTimeout(timer); hit(''); r({ code, out, err }); }));
  return { done, stop: () => proc.kill('SIGTERM'), ready };
}

/** Whether a TLS handshake with `address` verifies against the CA; with `cert`: presenting it. */
function handshake(address: string, withCert: boolean): Promise<string> {
  const [host, port] = [address.replace(/:\d+$/, ''), Number(address.split(':').pop())];
  return new Promise((resolve) => {
    const s = tls.connect({ host, port, ca: TLS_CERT, ...(withCert ? { cert: TLS_CERT, key: TLS_KEY } : {}) }, () => {
      // TLS 1.3: a server that requires a client certificate says so just after the handshake
      setTimeout(() => { s.destroy(); resolve('ok'); }, 300);
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`refused: ${e.code ?? e.message}`));
  });
}

test('kerf up/measure --hosts with tls: HTTPS to the agents, mutual TLS between the tiers, exact answers; no CA, no deploy', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-hosts-tls-'));
  const cert = join(dir, 'host.pem'), key = join(dir, 'host-key.pem');
  writeFileSync(cert, TLS_CERT);
  writeFileSync(key, TLS_KEY);
  const agents: RunningAgent[] = [];
  try {
    // every host's agent: its certificate (names 127.0.0.1), client certificates required
    for (let i = 0; i < 3; i++) agents.push(await startAgent({ args: ['--tls-cert', cert, '--tls-key', key, '--tls-ca', cert] }));
    for (const a of agents) assert.match(a.url, /^https:\/\//);
    const hosts = ['device', 'edge', 'cloud'].map((name, i) => ({ name, agent: agents[i]!.agent }));
    const write = (name: string, extra: object): string => {
      const f = join(dir, name);
      writeFileSync(f, JSON.stringify({ schema: 'kerf.hosts/v1', token: CLUSTER_TOKEN, entry: 'device', hosts, ...extra }));
      return f;
    };
    const good = write('hosts.json', { tls: { ca: 'host.pem', cert: 'host.pem', key: 'host-key.pem' } });
    const prep = await prepareModel(MODEL, { inputShapes: { x: [1, 3, 48, 192] } });
    const out = prep.model.outputs[0]!.name;
    const feeds = inputsFor(prep, 4);
    const refs = await Promise.all(feeds.map(async (f) => bytesOf((await reference(prep, f))[out]!)));
    const args = ['--model', MODEL, '--input-shape', SHAPE, '--cuts', thirds(prep).join(','), '--json'];

    // without TLS, or trusting only the system's CAs: refused before anything starts, saying why
    const plain = await run('up', [...args, '--hosts', write('plain.json', {})]).done;
    assert.equal(plain.code, 1);
    assert.match(plain.err, /kerf: host \w+ \(agent 127\.0\.0\.1:\d+\): cannot reach it \(.*serves HTTPS, give the hosts file tls or --tls-ca\)/);
    const system = await run('up', [...args, '--hosts', write('system.json', { tls: true })]).done;
    assert.equal(system.code, 1);
    assert.match(system.err, /kerf: host \w+ \(agent 127\.0\.0\.1:\d+\): TLS refused \(.*(SELF_SIGNED|UNABLE_TO_VERIFY)/);

    // with the CA: deployed, answers exact
    const up = run('up', [...args, '--hosts', good], /\{"event":"ready".*\}\n/);
    const line = await up.ready;
    if (!line) assert.fail(`kerf up did not get ready: ${(await up.done).err}`);
    const ready = JSON.parse(line) as { url: string; model: string; processes: { role: string; host: string; address: string }[] };
    assert.deepEqual(ready.processes.map((p) => p.host), ['device', 'edge', 'cloud']);
    for (let i = 0; i < 8; i++) {
      const r = await inferBinary(ready.url, ready.model, feeds[i % feeds.length]!);
      assert.equal(r.status, 200, r.error);
      assert.ok(r.outputs[out]!.equals(refs[i % feeds.length]!), `answer ${i} equals the whole model's`);
    }
    // the tiers speak TLS with the agent's certificate, and want the caller's (mutual TLS)
    for (const w of ready.processes.filter((p) => p.role === 'worker')) {
      assert.equal(await handshake(w.address, true), 'ok', `${w.host}'s worker serves TLS verified by the CA`);
      assert.match(await handshake(w.address, false), /^refused/, `${w.host}'s worker refuses a client without a certificate`);
    }
    up.stop();
    const end = await up.done;
    assert.equal(end.code, 0, end.err);

    // kerf measure: the agents measure each other over HTTPS, presenting their certificates
    const m = await run('measure', ['--hosts', good, '--json', '--seconds', '0.3', '--bench-seconds', '0.2']).done;
    assert.equal(m.code, 0, m.err);
    const doc = JSON.parse(m.out.trim().split('\n').pop()!) as { links: { from: string; to: string; bandwidthMbps: number }[] };
    assert.equal(doc.links.length, 6);
    for (const l of doc.links) assert.ok(l.bandwidthMbps > 10, `${l.from} → ${l.to} over TLS on loopback: ${l.bandwidthMbps} Mbit/s`);
  } finally {
    for (const a of agents) a.proc.kill('SIGTERM');
  }
});
