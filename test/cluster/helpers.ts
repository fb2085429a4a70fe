/** Helpers of the cluster tests: agents as processes (on loopback or inside netns hosts), hosts files, `kerf up` as the controller. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KERF, bytesOf, inputsFor, reference, sleep } from '../serve/serve-helpers.js';
import { prepareModel, type HostTensor, type Prepared } from '../../src/engine/index.js';
import { TestNet, type NetHost } from '../support/netns.js';
import { ModelBuilder, Rng } from '../../src/graph/builder.js';
import assert from 'node:assert/strict';

export const CLUSTER_TOKEN = 'cluster-test-token-0123456789';

export interface RunningAgent { proc: ChildProcess; url: string; agent: string; cache: string; log: () => string }

/** Start `kerf agent` (inside `host` of `net` when given) and resolve once it listens. */
export function startAgent(o: { net?: TestNet; host?: NetHost; listen?: string; token?: string; args?: string[] } = {}): Promise<RunningAgent> {
  const cache = mkdtempSync(join(tmpdir(), 'kerf-agent-cache-'));
  const listen = o.listen ?? (o.host ? `${o.host.ip}:7700` : '127.0.0.1:0');
  const args = [KERF, 'agent', '--listen', listen, '--token', o.token ?? CLUSTER_TOKEN, '--cache', cache, ...(o.args ?? [])];
  const proc = o.net && o.host ? o.net.spawn(o.host, process.execPath, args) : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`agent did not start: ${err}`)); }, 30_000);
    proc.once('exit', (c) => { clearTimeout(timer); reject(new Error(`agent exited (${c}): ${err}`)); });
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (https?:\/\/(\S+))/.exec(out);
      if (m) { clearTimeout(timer); proc.removeAllListeners('exit'); resolve({ proc, url: m[1]!, agent: m[2]!, cache, log: () => err }); }
    });
  });
}

/** Write a kerf.hosts/v1 file; returns its path. */
export function hostsFile(hosts: { name: string; agent: string; memoryMB?: number; cpus?: number }[], entry = hosts[0]!.name, token = CLUSTER_TOKEN): string {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-hosts-'));
  const file = join(dir, 'hosts.json');
  writeFileSync(file, JSON.stringify({ schema: 'kerf.hosts/v1', token, entry, hosts }));
  return file;
}

/** x[1,3,32,32] → `depth` × (Conv 3×3 + Relu) → GlobalAveragePool → [1,8,1,1]; weights from `seed`. */
export function tinyNet(seed: number, depth = 4, width = 16): Uint8Array {
  const b = new ModelBuilder({ opset: 13, name: 'tiny' });
  const r = new Rng(seed);
  b.input('x', 'float32', [1, 3, 32, 32]);
  let x = 'x', c = 3;
  for (let i = 0; i < depth; i++) {
    const out = i === depth - 1 ? 8 : width;
    b.initializer(`w${i}`, 'float32', [out, c, 3, 3], r.he([out, c, 3, 3]));
    b.node('Conv', [x, `w${i}`], [`c${i}`], { pads: [1, 1, 1, 1] });
    b.node('Relu', [`c${i}`], [`r${i}`]);
    x = `r${i}`; c = out;
  }
  b.node('GlobalAveragePool', [x], ['y']);
  b.output('y', 'float32', [1, 8, 1, 1]);
  return b.toBytes();
}

export interface UpReady { url: string; model: string; processes: { pid: number; name: string; role: string; host?: string }[] }

/**
 * Run `kerf up … --json` as the controller (in the root namespace); `ready` resolves with its
 * ready line, `lines` holds every JSON line it printed (e.g. failover events).
 */
export function kerfUp(args: string[]): { proc: ChildProcess; ready: Promise<UpReady>; err: () => string; exit: Promise<number | null>; lines: Record<string, unknown>[] } {
  const proc = spawn(process.execPath, [KERF, 'up', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); if (process.env.KERF_TEST_LOG) process.stderr.write(c); });
  const exit = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  const lines: Record<string, unknown>[] = [];
  const ready = new Promise<UpReady>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`kerf up not ready: ${err}`)), 120_000);
    void exit.then((c) => { clearTimeout(t); reject(new Error(`kerf up exited (${c}): ${err}`)); });
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const parts = out.split('\n');
      out = parts.pop()!;
      for (const l of parts) {
        let doc: Record<string, unknown>;
        try { doc = JSON.parse(l) as Record<string, unknown>; } catch { continue; }
        lines.push(doc);
        if (doc.event === 'ready') { clearTimeout(t); resolve(doc as unknown as UpReady); }
      }
    });
  });
  return { proc, ready, err: () => err, exit, lines };
}

/** Network-namespace hosts named `names`, a `kerf agent` on each, and a hosts file naming them
 *  (the first as the entry host). `close()` stops the agents then in `agents` (a test may replace
 *  one) and removes the namespaces; a failed start undoes itself. */
export async function agentHosts(names: string[], o: { prefix?: string } = {}): Promise<{
  net: TestNet; agents: RunningAgent[]; file: string; close: () => Promise<void>;
}> {
  const net = await TestNet.create(names.length, { names, ...(o.prefix ? { prefix: o.prefix } : {}) });
  if (!net) throw new Error('network namespaces unavailable (check netnsUnavailable() first)');
  const agents: RunningAgent[] = [];
  const close = async (): Promise<void> => {
    for (const a of agents) a.proc.kill('SIGTERM');
    await net.close();
  };
  try {
    for (const h of net.hosts) agents.push(await startAgent({ net, host: h }));
    return { net, agents, file: hostsFile(net.hosts.map((h, i) => ({ name: h.name, agent: agents[i]!.agent })), names[0]), close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Wait (≤ 10 s) until nothing but the agents runs on the hosts; fails naming what is left. */
export async function onlyAgentsLeft(net: TestNet, agents: RunningAgent[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const extra = (await Promise.all(net.hosts.map((h) => net.pids(h)))).flat().filter((p) => !agents.some((a) => a.proc.pid === p));
    if (extra.length === 0) return;
    await sleep(100);
  }
  const left = await Promise.all(net.hosts.map(async (h) => `${h.name}: ${(await net.pids(h)).join(',')}`));
  assert.fail(`processes left on the hosts besides the agents: ${left.join('; ')} (agents ${agents.map((a) => a.proc.pid).join(',')})`);
}

export interface UpRun { url: string; token: string; err: () => string; exit: Promise<number | null>; kill: (signal?: NodeJS.Signals) => void }

/** Run `kerf up … --hosts` (plain output) as the controller; resolves once ready with its endpoint and control token. */
export async function kerfUpHosts(args: string[]): Promise<UpRun> {
  const up = spawn(process.execPath, [KERF, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  up.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  up.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exit = new Promise<number | null>((r) => up.once('exit', r));
  let exited = false;
  void exit.then(() => { exited = true; });
  for (let i = 0; i < 1200 && !exited && !/#token=/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
  const url = /ready at (http:\/\/[\d.]+:\d+)\//.exec(out)?.[1];
  const token = /#token=([0-9a-f]+)/.exec(out)?.[1];
  if (!url || !token) { up.kill('SIGKILL'); throw new Error(`kerf up not ready: ${err}`); }
  return { url, token, err: () => err, exit, kill: (s = 'SIGKILL') => { up.kill(s); } };
}

/** The PaddleOCR cls model (x = 1×3×48×192) on `net`: an agent on every host (pushed to `agents`,
 *  so the caller's `finally` stops them), the model prepared, four inputs and the unsplit model's
 *  answers to them (bytes), and a hosts file with `entry` as the entry host. */
export async function ocrClsOnHosts(net: TestNet, model: string, agents: RunningAgent[], entry: string): Promise<{
  prep: Prepared; out: string; feeds: Record<string, HostTensor>[]; refs: Buffer[]; file: string;
}> {
  for (const h of net.hosts) agents.push(await startAgent({ net, host: h }));
  const prep = await prepareModel(model, { inputShapes: { x: [1, 3, 48, 192] } });
  const out = prep.model.outputs[0]!.name;
  const feeds = inputsFor(prep, 4);
  const refs = await Promise.all(feeds.map(async (f) => bytesOf((await reference(prep, f))[out]!)));
  const file = hostsFile(net.hosts.map((h, i) => ({ name: h.name, agent: agents[i]!.agent })), entry);
  return { prep, out, feeds, refs, file };
}
