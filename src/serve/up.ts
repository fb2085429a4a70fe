/**
 * `kerf up` as a library: start a gateway and its workers as child processes on this
 * machine, with emulated links (src/link) between tiers, wait until the pipeline is ready,
 * and tear everything down on `close()`. Children watch their IPC channel and exit when this
 * process goes away, so no orphan survives even a SIGKILL of the parent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { kerfError } from '../errors.js';
import { Link } from '../link/index.js';
import type { PlanDocument } from '../plan/types.js';
import { fmtAddress } from './nexthop.js';

/** An emulated link's settings (absent fields: unlimited rate, no delay). */
export interface LinkSpec { rateBps?: number; delayMs?: number; jitterMs?: number }

/** Per-tier settings, in pipeline order (the gateway's tier first). */
export interface TierSpec {
  name: string;
  threads?: number;
  /** profiled compute seconds of the tier's part (enables the workers' load factor) */
  profiledS?: number;
}

export interface UpOptions {
  /** model file */
  model: string;
  inputShapes?: Record<string, number[]>;
  /** model name in URLs (default: file name without .onnx) */
  name?: string;
  /** cut ids of the tier boundaries */
  cuts: number[];
  /** the gateway (device) runs part 0 itself (default true); false: every part runs on a worker */
  local?: boolean;
  /** tier names and settings; default device, edge, cloud, tier3… */
  tiers?: TierSpec[];
  /** hop i: from the i-th tier that sends to the next (gateway first); null/absent: direct */
  links?: (LinkSpec | null | undefined)[];
  host?: string;
  /** gateway HTTP port (default 0: any free port) */
  port?: number;
  /** the pipeline's shared secret (default: random) */
  token?: string;
  readyTimeoutMs?: number;
  /** a line of progress or a child's output */
  log?: (line: string) => void;
  /** the kerf executable (default: this package's bin/kerf.js) */
  kerfBin?: string;
  /** extra arguments for every child (e.g. ['--queue', '128']) */
  workerArgs?: string[];
}

/** A running deployment. `close()` is idempotent. */
export interface UpHandle {
  /** the gateway's base URL */
  url: string;
  name: string;
  processes: { name: string; role: 'gateway' | 'worker'; pid: number; address: string }[];
  links: { from: string; to: string; link: Link }[];
  close(): Promise<void>;
}

const DEFAULT_NAMES = ['device', 'edge', 'cloud'];
const here = dirname(fileURLToPath(import.meta.url));

interface Child { name: string; role: 'gateway' | 'worker'; proc: ChildProcess; address: string }

function startChild(bin: string, name: string, role: Child['role'], args: string[], env: NodeJS.ProcessEnv, log: (l: string) => void, timeoutMs: number): Promise<Child> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, [bin, 'worker', ...args], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env });
    let settled = false;
    let stderr = '';
    const prefix = (chunk: Buffer, err: boolean): void => {
      const text = chunk.toString('utf8');
      if (err && !settled) stderr += text;
      for (const line of text.split('\n')) if (line.trim()) log(`[${name}] ${line}`);
    };
    proc.stdout!.on('data', (c: Buffer) => prefix(c, false));
    proc.stderr!.on('data', (c: Buffer) => prefix(c, true));
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      proc.kill('SIGKILL');
      reject(kerfError('KERF_ERR_TIMEOUT', `${role} ${name} did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    proc.on('message', (m: { event?: string; address?: string }) => {
      if (settled || m?.event !== 'listening') return;
      settled = true;
      clearTimeout(timer);
      resolvePromise({ name, role, proc, address: m.address! });
    });
    proc.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const why = stderr.trim().split('\n').pop()?.replace(/^kerf: /, '') ?? '';
      reject(kerfError('KERF_ERR_UPSTREAM', `${role} ${name} exited (${signal ?? `code ${code}`}) while starting${why ? `: ${why}` : ''}`));
    });
  });
}

async function httpReady(url: string): Promise<boolean> {
  return new Promise((r) => {
    const req = http.get(`${url}/v2/health/ready`, (res) => { res.resume(); r(res.statusCode === 200); });
    req.on('error', () => r(false));
    req.setTimeout(1000, () => { req.destroy(); r(false); });
  });
}

/** Start the gateway and workers for `opts.cuts`; resolves once the gateway reports ready. */
export async function up(opts: UpOptions): Promise<UpHandle> {
  const local = opts.local ?? true;
  const parts = opts.cuts.length + 1;
  const nWorkers = local ? parts - 1 : parts;
  const tiers: TierSpec[] = opts.tiers ?? Array.from({ length: nWorkers + 1 }, (_, i) => ({ name: DEFAULT_NAMES[i] ?? `tier${i}` }));
  // Tier 0 is always the gateway (device); with local=false it runs nothing.
  if (tiers.length !== nWorkers + 1) {
    throw kerfError('KERF_ERR_USAGE', `up: ${tiers.length} tier names for ${nWorkers + 1} tiers (gateway + ${nWorkers} workers)`);
  }
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? randomBytes(16).toString('hex');
  const bin = opts.kerfBin ?? resolve(here, '..', '..', '..', 'bin', 'kerf.js');
  const log = opts.log ?? (() => {});
  const timeout = opts.readyTimeoutMs ?? 60_000;
  const env = { ...process.env, KERF_TOKEN: token };
  const common = ['--model', opts.model, '--json', ...(opts.cuts.length ? ['--cuts', opts.cuts.join(',')] : [])];
  for (const [k, v] of Object.entries(opts.inputShapes ?? {})) common.push('--input-shape', `${k}=${v.join('x')}`);
  const children: Child[] = [];
  const links: UpHandle['links'] = [];
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    if (!closing) {
      closing = (async () => {
        await Promise.all(children.map((c) => stopChild(c.proc)));
        await Promise.all(links.map((l) => l.link.close()));
      })();
    }
    return closing;
  };
  try {
    let next: string | null = null;
    // Last tier first: each tier needs the address of the one after it.
    for (let w = nWorkers - 1; w >= -1; w--) {
      const tierIndex = w + 1;
      const tier = tiers[tierIndex]!;
      if (next !== null) {
        const spec = opts.links?.[tierIndex];
        if (spec && (spec.rateBps !== undefined || spec.delayMs || spec.jitterMs)) {
          const link = await Link.create({
            listen: { host, port: 0 }, to: next,
            ...(spec.rateBps !== undefined ? { rateBps: spec.rateBps } : {}), delayMs: spec.delayMs ?? 0, jitterMs: spec.jitterMs ?? 0,
          });
          links.unshift({ from: tier.name, to: tiers[tierIndex + 1]!.name, link });
          next = fmtAddress(link.address);
        }
      }
      const args = [...common, '--name', tier.name, ...(tier.threads ? ['--threads', String(tier.threads)] : []),
        ...(tier.profiledS !== undefined ? ['--profiled-ms', String(tier.profiledS * 1000)] : []), ...(next ? ['--next', next] : []), ...(opts.workerArgs ?? [])];
      let child: Child;
      if (w >= 0) {
        const part = local ? w + 1 : w;
        child = await startChild(bin, tier.name, 'worker', ['--listen', `${host}:0`, ...(opts.cuts.length ? ['--blocks', `${part}..${part}`] : []), ...args], env, log, timeout);
      } else {
        child = await startChild(bin, tier.name, 'gateway', ['--gateway', '--listen', `${host}:${opts.port ?? 0}`, '--blocks', local ? (nWorkers ? '0..0' : `0..${parts - 1}`) : 'none',
          ...(opts.name ? ['--model-name', opts.name] : []), ...args], env, log, timeout);
      }
      children.push(child);
      log(`${child.role} ${tier.name} (pid ${child.proc.pid}) on ${child.address}`);
      next = child.address;
    }
    const gw = children[children.length - 1]!;
    const url = `http://${gw.address}`;
    const until = performance.now() + timeout;
    while (!(await httpReady(url))) {
      if (performance.now() > until) throw kerfError('KERF_ERR_TIMEOUT', `the pipeline was not ready within ${timeout} ms (see ${url}/v2/health/ready)`);
      if (children.some((c) => c.proc.exitCode !== null || c.proc.signalCode !== null)) throw kerfError('KERF_ERR_UPSTREAM', 'a tier exited before the pipeline was ready');
      await new Promise((r) => setTimeout(r, 50));
    }
    const name = await modelName(url);
    return {
      url, name, links,
      processes: children.slice().reverse().map((c) => ({ name: c.name, role: c.role, pid: c.proc.pid!, address: c.address })),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

async function modelName(url: string): Promise<string> {
  return new Promise((r, reject) => {
    http.get(`${url}/v2/models/__kerf_probe__`, (res) => {
      let b = '';
      res.on('data', (c) => { b += c; });
      res.on('end', () => { const m = /serves '([^']+)'/.exec(b); m ? r(m[1]!) : reject(kerfError('KERF_ERR_UPSTREAM', `gateway at ${url} did not name its model`)); });
    }).on('error', (e) => reject(kerfError('KERF_ERR_UPSTREAM', `gateway at ${url}: ${e.message}`)));
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
function stopChild(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.once('exit', () => { clearTimeout(t); r(); });
    p.kill('SIGTERM');
  });
}

/** UpOptions from a plan document: its cuts, used tiers, their compute, and its network links. */
export function planToUp(plan: PlanDocument, model: string): UpOptions {
  if (plan.schema !== 'kerf.plan/v1') throw kerfError('KERF_ERR_PLAN', `plan: schema '${String(plan.schema)}' is not kerf.plan/v1`);
  if (plan.cuts.some((c) => c === null)) throw kerfError('KERF_ERR_PLAN', `plan for '${plan.model}' has no cut ids (made from imported profiles?); plan from kerf profiles to serve it`);
  const cuts = plan.cuts as number[];
  const used = plan.tiers.filter((t) => t.blocks !== null);
  const local = plan.tiers[0]?.blocks !== null;
  const tiers: TierSpec[] = [];
  if (!local) tiers.push({ name: `device(${plan.tiers[0]?.system ?? '-'})` });
  for (const t of used) tiers.push({ name: t.system ? `${t.tier}(${t.system})` : t.tier, profiledS: t.computeS });
  const links: (LinkSpec | null)[] = [];
  for (const tr of plan.transfers.filter((t) => t.kind === 'forward')) {
    const l = plan.network.links.find((x) => (x.from === tr.from && x.to === tr.to) || (x.from === tr.to && x.to === tr.from));
    links.push(l ? { rateBps: l.bandwidthMbps * 1e6, delayMs: l.rttMs / 2 } : null);
  }
  return { model, cuts, local, tiers, links };
}

