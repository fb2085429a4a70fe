/** Helpers of the cluster tests: agents as processes (on loopback or inside netns hosts), hosts files. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KERF } from '../serve/serve-helpers.js';
import type { NetHost, TestNet } from '../support/netns.js';

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
