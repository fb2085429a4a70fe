/**
 * `kerf up` as a library: start a gateway and its workers as child processes on this
 * machine, with emulated links (src/link) between tiers, wait until the pipeline is ready,
 * and tear everything down on `close()`. Children watch their IPC channel and exit when this
 * process goes away, so no orphan survives even a SIGKILL of the parent.
 *
 * A tier may be held to a share of the CPU (`TierSpec.cpus`): its process goes into a cgroup
 * with a CFS quota (src/serve/cpu.ts) from the moment it is spawned, so it starts, loads and
 * serves as slowly as the node it stands for. Where cgroups are not writable, tiers run with one
 * onnxruntime thread and `UpHandle.cpu.notice` says that the shares are not enforced.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { kerfError } from '../errors.js';
import { Link, type TraceStep } from '../link/index.js';
import type { PlanDocument } from '../plan/types.js';
import { validatePlan } from '../plan/validate.js';
import type { Placement } from '../plan/place/types.js';
import { fmtAddress } from './nexthop.js';
import { CpuGroup, cpuPeriodForShare, cpuQuotaUnavailable, processMemory, sweepStaleCpuGroups } from './cpu.js';
import { GATEWAY_MALLOC_ENV, GATEWAY_NODE_FLAGS, WORKER_MALLOC_ENV } from './malloc-env.js';
import { parseHopCodec } from '../codec/index.js';

/** An emulated link's settings (absent fields: unlimited rate, no delay). */
export interface LinkSpec {
  rateBps?: number; delayMs?: number; jitterMs?: number;
  /** settings to replay over time (kerf link --trace), from the link's start */
  trace?: TraceStep[];
  traceLoop?: boolean;
}

/** Per-tier settings, in pipeline order (the gateway's tier first). */
export interface TierSpec {
  name: string;
  threads?: number;
  /** profiled compute seconds of the tier's part (enables the workers' load factor) */
  profiledS?: number;
  /** hold the tier's process to this many cores (cgroup CPU quota); absent: no limit */
  cpus?: number;
  /** memory the tier's node has, bytes (reported beside the process's resident memory) */
  memoryLimitBytes?: number;
}

/** How tiers with a CPU share are held to it. */
export interface CpuLimitOptions {
  /** cgroup v1 cpu hierarchy (default /sys/fs/cgroup/cpu) */
  root?: string;
  /** CFS period, µs (default 100000) */
  periodUs?: number;
  /** each tier's period as `kerf profile --cpus` sets it for that share instead (cpuPeriodForShare:
   * 10 ms, longer below 10 %), so tiers are held as their profiles were */
  periodPerShare?: boolean;
  /** never use cgroups (as if they were not writable) */
  disabled?: boolean;
  /** prefix of the groups' labels, so several deployments of one process can hold CPU at once */
  label?: string;
  /** hold each tier to its share only once the pipeline is ready: processes start and load
   * their parts at full speed (default false: from the moment they are spawned) */
  fromReady?: boolean;
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
  /** hop i's codec (gateway first; absent or 'none': raw; docs/codec.md) */
  codecs?: (string | null | undefined)[];
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
  /** how tiers' CPU shares are enforced (by `localLauncher`; a given `launch` decides itself) */
  cpu?: CpuLimitOptions;
  /** how each tier's process is started (default: a child process of this one, see
   * `spawnWorker`); src/cluster passes one that starts it through a substrate */
  launch?: TierLauncher;
  /** the plan file the cuts come from: the gateway reports it in GET /v1/partition */
  planFile?: string;
}

/** A process of the deployment. */
export interface UpProcess {
  name: string;
  role: 'gateway' | 'worker';
  pid: number;
  address: string;
  /** CPU share it is held to (cgroup), when it has one */
  cpus?: number;
  /** its cgroup directory, when it is in one */
  cgroup?: string;
  memoryLimitBytes?: number;
}

/** Resident memory of one process now (VmRSS) and at its peak (VmHWM), bytes. */
export interface ProcessMemory { name: string; pid: number; rss: number; peak: number; limit?: number }

/** A running deployment. `close()` is idempotent. */
export interface UpHandle {
  /** the gateway's base URL */
  url: string;
  name: string;
  processes: UpProcess[];
  links: { from: string; to: string; link: Link }[];
  /** 'cgroup': CPU shares are enforced; 'threads': they were asked for but cannot be (see
   * notice), tiers run with one thread each; 'none': no tier asked for one */
  cpu: { mode: 'cgroup' | 'threads' | 'none'; notice?: string };
  /** resident memory of every live process, in pipeline order */
  memory(): ProcessMemory[];
  /** the pipeline's token: the gateway's control endpoints (POST /v1/partition, /v1/rollout, the dashboard's controls) need it */
  token: string;
  close(): Promise<void>;
}

const DEFAULT_NAMES = ['device', 'edge', 'cloud'];
const here = dirname(fileURLToPath(import.meta.url));

/**
 * One tier's process as the controller asks for it: what `kerf worker` runs (a segment of a
 * model file with given cuts), where it listens and where it sends. A launcher turns it into
 * a running process: a child of this process (`localLauncher`) or a worker on a host's agent
 * (src/cluster). `blocks`: the `--blocks` value ('0..0', 'none', …), null for all of the model.
 */
export interface TierStart {
  /** position in the pipeline, gateway = 0 */
  index: number;
  name: string;
  role: 'gateway' | 'worker';
  /** the model file this tier loads */
  model: string;
  cuts: number[];
  blocks: string | null;
  /** next tier's address (host:port), null for the last */
  next: string | null;
  /** interface and port to listen on (port 0: any free one) */
  host: string;
  port: number;
  threads?: number;
  profiledS?: number;
  /** hold the process to this many cores (cgroup CPU quota) */
  cpus?: number;
  memoryLimitBytes?: number;
  /** the gateway's model name in URLs */
  modelName?: string;
  inputShapes?: Record<string, number[]>;
  /** further `kerf worker` flags */
  args: string[];
}

/** A tier's process once it listens. `stop()` is idempotent and resolves when it is gone. */
export interface StartedTier {
  address: string;
  pid: number;
  cpus?: number;
  cgroup?: string;
  /** true once the process has exited */
  exited(): boolean;
  /** resident memory now, when it can be read here (a local process) */
  memory?(): { rss: number; peak: number } | null;
  stop(): Promise<void>;
}

/** Starts one tier's process with the pipeline's token; rejects with a KerfError naming the tier. */
export type TierLauncher = (t: TierStart, token: string) => Promise<StartedTier>;

/** The `kerf worker …` arguments (after the verb) of a tier. */
export function tierArgv(t: TierStart): string[] {
  const a = ['--model', t.model, '--json', ...(t.cuts.length ? ['--cuts', t.cuts.join(',')] : [])];
  for (const [k, v] of Object.entries(t.inputShapes ?? {})) a.push('--input-shape', `${k}=${v.join('x')}`);
  a.push('--name', t.name);
  if (t.threads) a.push('--threads', String(t.threads));
  if (t.profiledS !== undefined) a.push('--profiled-ms', String(t.profiledS * 1000));
  if (t.next) a.push('--next', t.next);
  a.push(...t.args);
  const listen = `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
  if (t.role === 'gateway') return ['--gateway', '--listen', listen, ...(t.blocks !== null ? ['--blocks', t.blocks] : []), ...(t.modelName ? ['--model-name', t.modelName] : []), ...a];
  return ['--listen', listen, ...(t.blocks !== null ? ['--blocks', t.blocks] : []), ...a];
}

/** Options of `spawnWorker` (beside the tier). */
export interface SpawnOptions {
  bin: string;
  token: string;
  log: (line: string) => void;
  timeoutMs: number;
  /** put the process in a cgroup with the tier's CPU share before it loads anything */
  cpu?: { root?: string; periodUs?: number; periodPerShare?: boolean; label?: string; prefix?: string; fromReady?: boolean } | null;
  /** extra environment */
  env?: NodeJS.ProcessEnv;
  /** called when the process exits after it listened, unless `stop()` asked it to */
  onExit?: (reason: string) => void;
  /** the child's other IPC messages (e.g. a worker asking its agent for the whole model) */
  onMessage?: (m: { event?: string; [k: string]: unknown }) => void;
  /** called with the child's pid as soon as it is spawned, before it loads anything (e.g. an
   * agent putting it in its memory group); a rejection fails the start (the child is stopped) */
  onSpawn?: (pid: number) => Promise<void>;
}

/**
 * Spawn `kerf worker` for a tier as a child of this process (it exits when this process goes
 * away: its IPC channel closes), held to its CPU share when `o.cpu` is given and the tier has
 * one, and resolve once it listens.
 */
export function spawnWorker(t: TierStart, o: SpawnOptions): Promise<StartedTier> {
  return new Promise((resolvePromise, reject) => {
    const role = t.role;
    const proc = spawn(process.execPath, [...(role === 'gateway' ? GATEWAY_NODE_FLAGS : []), o.bin, 'worker', ...tierArgv(t)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...(role === 'gateway' ? GATEWAY_MALLOC_ENV : WORKER_MALLOC_ENV), ...process.env, ...o.env, KERF_TOKEN: o.token } });
    let group: CpuGroup | null = null;
    let stopping: Promise<void> | null = null;
    const stop = (): Promise<void> => (stopping ??= stopChild(proc).then(async () => { await group?.remove(); }));
    let settled = false;
    const fail = (e: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop().catch(() => {});
      reject(e);
    };
    let grouped: Promise<void> = Promise.resolve();
    if (o.cpu && t.cpus !== undefined && proc.pid !== undefined) {
      const cpu = o.cpu;
      grouped = CpuGroup.create(cpu.label ?? `${cpu.prefix ?? ''}${t.index}-${t.name}`, t.cpus, { ...(cpu.root ? { root: cpu.root } : {}), ...(cpu.periodPerShare ? { periodUs: cpuPeriodForShare(t.cpus) } : cpu.periodUs ? { periodUs: cpu.periodUs } : {}) })
        .then(async (g) => { group = g; if (!cpu.fromReady) await g.add(proc.pid!); });
      grouped.catch(fail);
    }
    if (o.onSpawn && proc.pid !== undefined) o.onSpawn(proc.pid).catch(fail);
    let stderr = '';
    // While starting, a child's lines are held: if it fails, its last line is the error (said
    // once); once it listens they are logged. Its JSON events are for this process, not people.
    let held: string[] | null = [];
    const prefix = (chunk: Buffer, err: boolean): void => {
      const text = chunk.toString('utf8');
      if (err && !settled) stderr += text;
      for (const line of text.split('\n')) {
        if (!line.trim() || /^\s*\{"event":/.test(line)) continue;
        if (held) held.push(`[${t.name}] ${line}`); else o.log(`[${t.name}] ${line}`);
      }
    };
    const flush = (): void => { const h = held ?? []; held = null; for (const l of h) o.log(l); };
    proc.stdout!.on('data', (c: Buffer) => prefix(c, false));
    proc.stderr!.on('data', (c: Buffer) => prefix(c, true));
    const timer = setTimeout(() => fail(kerfError('KERF_ERR_TIMEOUT', `${role} ${t.name} did not start within ${o.timeoutMs} ms`)), o.timeoutMs);
    proc.on('message', (m: { event?: string; address?: string }) => {
      if (m?.event !== 'listening') { o.onMessage?.(m); return; }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      flush();
      const done = (): void => resolvePromise({
        address: m.address!, pid: proc.pid!, ...(group ? { cpus: group.cpus, cgroup: group.path } : {}),
        exited: () => proc.exitCode !== null || proc.signalCode !== null,
        memory: () => processMemory(proc.pid!),
        stop,
      });
      // fromReady: the process loaded its part at full speed; from now on it has its share.
      if (o.cpu?.fromReady) grouped.then(() => group?.add(proc.pid!)).then(done, (e: unknown) => { void stop().catch(() => {}); reject(e); });
      else done();
    });
    proc.once('exit', (code, signal) => {
      if (settled && !stopping) o.onExit?.(`${role} ${t.name} (pid ${proc.pid}) exited (${signal ?? `code ${code}`})`);
      const why = stderr.trim().split('\n').pop()?.replace(/^kerf: /, '') ?? '';
      fail(kerfError('KERF_ERR_UPSTREAM', `${role} ${t.name} exited (${signal ?? `code ${code}`}) while starting${why ? `: ${why}` : ''}`));
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
  const log = opts.log ?? (() => {});
  const timeout = opts.readyTimeoutMs ?? 60_000;
  const started: StartedTier[] = [];
  const links: UpHandle['links'] = [];
  const wantCpu = tiers.some((t) => t.cpus !== undefined);
  const cpuRoot = opts.cpu?.root;
  let cpu: UpHandle['cpu'] = { mode: 'none' };
  let launch: TierLauncher;
  if (opts.launch) {
    launch = opts.launch;
  } else {
    const why = !wantCpu ? null : opts.cpu?.disabled ? 'CPU limits disabled' : cpuQuotaUnavailable(cpuRoot);
    cpu = !wantCpu ? { mode: 'none' } : why === null ? { mode: 'cgroup' }
      : { mode: 'threads', notice: `CPU shares not enforced (${why}): every tier runs with 1 onnxruntime thread on whatever CPU it gets` };
    if (cpu.notice) log(cpu.notice);
    if (cpu.mode === 'cgroup') {
      for (const p of sweepStaleCpuGroups(cpuRoot)) log(`removed stale cgroup ${p}`);
    }
    const bin = opts.kerfBin ?? resolve(here, '..', '..', '..', 'bin', 'kerf.js');
    const cgroups = cpu.mode === 'cgroup' ? {
      ...(cpuRoot ? { root: cpuRoot } : {}), ...(opts.cpu?.periodUs ? { periodUs: opts.cpu.periodUs } : {}), ...(opts.cpu?.periodPerShare ? { periodPerShare: true } : {}),
      ...(opts.cpu?.label ? { prefix: opts.cpu.label } : {}), ...(opts.cpu?.fromReady ? { fromReady: true } : {}),
    } : null;
    launch = (t, tok) => spawnWorker(t, { bin, token: tok, log, timeoutMs: timeout, cpu: cgroups });
  }
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    if (!closing) {
      closing = (async () => {
        const failed = (await Promise.allSettled(started.map((p) => p.stop()))).filter((r) => r.status === 'rejected');
        for (const f of failed) log(String((f as PromiseRejectedResult).reason?.message ?? f));
        await Promise.all(links.map((l) => l.link.close()));
      })();
    }
    return closing;
  };
  try {
    let next: string | null = null;
    const byTier: StartedTier[] = [];
    // Last tier first: each tier needs the address of the one after it.
    for (let w = nWorkers - 1; w >= -1; w--) {
      const tierIndex = w + 1;
      const tier = tiers[tierIndex]!;
      if (next !== null) {
        const spec = opts.links?.[tierIndex];
        if (spec && (spec.rateBps !== undefined || spec.delayMs || spec.jitterMs || spec.trace)) {
          // Each emulated link has kerf link's control API, so it can be changed while serving.
          const link = await Link.create({
            listen: { host, port: 0 }, to: next, control: { host, port: 0 },
            ...(spec.rateBps !== undefined ? { rateBps: spec.rateBps } : {}), delayMs: spec.delayMs ?? 0, jitterMs: spec.jitterMs ?? 0,
            ...(spec.trace ? { trace: spec.trace, traceLoop: spec.traceLoop ?? false } : {}),
          });
          links.unshift({ from: tier.name, to: tiers[tierIndex + 1]!.name, link });
          next = fmtAddress(link.address);
        }
      }
      const threads = cpu.mode === 'threads' ? 1 : tier.threads;
      const part = local ? w + 1 : w;
      const t: TierStart = {
        index: tierIndex, name: tier.name, role: w >= 0 ? 'worker' : 'gateway', model: opts.model, cuts: opts.cuts,
        blocks: w >= 0 ? (opts.cuts.length ? `${part}..${part}` : null) : local ? (nWorkers ? '0..0' : `0..${parts - 1}`) : 'none',
        next, host, port: w >= 0 ? 0 : opts.port ?? 0, args: [...(opts.workerArgs ?? []), ...(w < 0 && opts.planFile ? ['--plan', opts.planFile] : []), ...(next && opts.codecs?.[tierIndex] && opts.codecs[tierIndex] !== 'none' ? ['--next-codec', opts.codecs[tierIndex]!] : [])],
        ...(threads ? { threads } : {}), ...(tier.profiledS !== undefined ? { profiledS: tier.profiledS } : {}),
        ...(tier.cpus !== undefined ? { cpus: tier.cpus } : {}), ...(tier.memoryLimitBytes !== undefined ? { memoryLimitBytes: tier.memoryLimitBytes } : {}),
        ...(w < 0 && opts.name ? { modelName: opts.name } : {}), ...(opts.inputShapes ? { inputShapes: opts.inputShapes } : {}),
      };
      const child = await launch(t, token);
      started.push(child);
      byTier[tierIndex] = child;
      log(`${t.role} ${tier.name} (pid ${child.pid}) on ${child.address}${child.cgroup ? `, ${child.cpus} CPU (${child.cgroup})` : ''}`);
      next = child.address;
    }
    if (opts.launch && wantCpu) {
      const held = tiers.every((t, i) => t.cpus === undefined || byTier[i]!.cgroup !== undefined);
      cpu = held ? { mode: 'cgroup' } : { mode: 'threads', notice: 'CPU shares not enforced on every host (no writable cgroup there)' };
    }
    const url = `http://${byTier[0]!.address}`;
    const until = performance.now() + timeout;
    while (!(await httpReady(url))) {
      if (performance.now() > until) throw kerfError('KERF_ERR_TIMEOUT', `the pipeline was not ready within ${timeout} ms (see ${url}/v2/health/ready)`);
      if (started.some((c) => c.exited())) throw kerfError('KERF_ERR_UPSTREAM', 'a tier exited before the pipeline was ready');
      await new Promise((r) => setTimeout(r, 50));
    }
    const name = await modelName(url);
    const processes: UpProcess[] = byTier.map((c, i) => {
      const lim = tiers[i]!.memoryLimitBytes;
      return { name: tiers[i]!.name, role: i === 0 ? 'gateway' : 'worker', pid: c.pid, address: c.address, ...(c.cgroup ? { cpus: c.cpus!, cgroup: c.cgroup } : {}), ...(lim !== undefined ? { memoryLimitBytes: lim } : {}) };
    });
    const memory = (): ProcessMemory[] => processes.flatMap((p, i) => {
      const m = byTier[i]!.memory?.();
      return m ? [{ name: p.name, pid: p.pid, rss: m.rss, peak: m.peak, ...(p.memoryLimitBytes !== undefined ? { limit: p.memoryLimitBytes } : {}) }] : [];
    });
    return { url, name, links, processes, cpu, memory, token, close };
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
export function planToUp(doc: PlanDocument, model: string, source = 'plan'): UpOptions {
  const plan = validatePlan(doc, source);
  if (plan.cuts.some((c) => c === null)) throw kerfError('KERF_ERR_PLAN', `plan for '${plan.model}' has no cut ids (made from imported profiles?); plan from kerf profiles to serve it`);
  const cuts = plan.cuts as number[];
  const used = plan.tiers.filter((t) => t.blocks !== null);
  const local = plan.tiers[0]?.blocks !== null;
  const tiers: TierSpec[] = [];
  if (!local) tiers.push({ name: `device(${plan.tiers[0]?.system ?? '-'})` });
  for (const t of used) tiers.push({ name: t.system ? `${t.tier}(${t.system})` : t.tier, profiledS: t.computeS });
  const links: (LinkSpec | null)[] = [];
  const codecs: string[] = [];
  plan.transfers.filter((t) => t.kind === 'forward').forEach((tr, i) => {
    const l = plan.network.links.find((x) => (x.from === tr.from && x.to === tr.to) || (x.from === tr.to && x.to === tr.from));
    links.push(l ? { rateBps: l.bandwidthMbps * 1e6, delayMs: l.rttMs / 2 } : null);
    // The plan's codec per hop (`--codec auto`); replies in its lossless part.
    codecs.push(tr.codec === undefined ? 'none' : parseHopCodec(String(tr.codec), `${source}: transfers[${i}].codec`).name);
  });
  return { model, cuts, local, tiers, links, ...(codecs.some((c) => c !== 'none') ? { codecs } : {}) };
}


/** How `placementToUp` gives each node its CPU share. */
export interface PlacementUpOptions {
  /**
   * Cores of the system the placement's compute times were measured on (default 1: `kerf
   * profile` times blocks with one thread on a whole core). A node of speed s is as fast as s
   * such systems, so it gets s × referenceCpus cores.
   */
  referenceCpus?: number;
  /** cores per node name, overriding the derivation from speed; the only way to give the
   * entry node's gateway a share when the entry runs no stage (placements do not record its speed) */
  cpus?: Record<string, number>;
}

/**
 * UpOptions for a placement (`kerf place -o placement.json`): one worker per stage in the
 * placement's order (the stage's cut ids are the pipeline's cuts), the gateway at the entry
 * node (running stage 0 itself when the entry is stage 0's node), one emulated link per hop
 * (rate = bandwidthMbps, one-way delay = rttMs / 2) and every node held to its CPU share.
 */
export function placementToUp(p: Placement, model: string, o: PlacementUpOptions = {}): UpOptions {
  const bad = (msg: string): never => { throw kerfError('KERF_ERR_PLACE', `placement${p?.model?.name ? ` of '${p.model.name}'` : ''}: ${msg}`); };
  if (typeof p !== 'object' || p === null || p.schema !== 'kerf.placement/v1') bad(`schema '${String((p as { schema?: unknown })?.schema)}' is not kerf.placement/v1`);
  if (!Array.isArray(p.stages) || p.stages.length === 0) bad("field 'stages' must be a non-empty list");
  if (!Array.isArray(p.links)) bad("field 'links' must be a list");
  const ref = o.referenceCpus ?? 1;
  if (!(ref > 0)) throw kerfError('KERF_ERR_USAGE', `reference CPU share ${ref}: expected a positive number of cores`);
  const nodes = new Set(p.stages.map((s) => s.node));
  for (const [n, c] of Object.entries(o.cpus ?? {})) {
    if (!nodes.has(n) && n !== p.entry) throw kerfError('KERF_ERR_USAGE', `--cpus ${n}=${c}: the placement has no node '${n}' (nodes: ${[...nodes].join(', ')}${p.entry ? `, entry ${p.entry}` : ''})`);
    if (!(c > 0)) throw kerfError('KERF_ERR_USAGE', `--cpus ${n}=${c}: expected a positive number of cores`);
  }
  const cuts: number[] = [];
  p.stages.forEach((s, k) => {
    if (typeof s?.node !== 'string') bad(`stage ${k} names no node`);
    const want = k === 0 ? null : p.stages[k - 1]!.cutOut;
    if (s.cutIn !== want) bad(`stage ${k} starts at cut ${String(s.cutIn)} but stage ${k - 1} ends at cut ${String(want)}`);
    if (k < p.stages.length - 1) {
      if (!Number.isInteger(s.cutOut) || s.cutOut! < 0) bad(`stage ${k} has no cut id at its end (cutOut ${String(s.cutOut)}); place from a kerf profile of the model`);
      if (cuts.length && s.cutOut! <= cuts[cuts.length - 1]!) bad(`stage ${k} ends at cut ${s.cutOut}, not after stage ${k - 1}'s cut ${cuts[cuts.length - 1]}`);
      cuts.push(s.cutOut!);
    } else if (s.cutOut !== null) bad(`the last stage ends at cut ${String(s.cutOut)}, not at the model's output`);
  });
  const share = (node: string, speed: number | undefined): number | undefined => o.cpus?.[node] ?? (speed !== undefined ? speed * ref : undefined);
  const local = p.entry !== null && p.stages[0]!.node === p.entry;
  const tiers: TierSpec[] = [];
  if (!local) {
    const c = p.entry !== null ? o.cpus?.[p.entry] : undefined;
    tiers.push({ name: p.entry ?? 'gateway', ...(c !== undefined ? { cpus: c } : {}) });
  }
  for (const s of p.stages) {
    const c = share(s.node, s.speed ?? 1);
    tiers.push({ name: s.node, profiledS: s.computeSeconds, ...(c !== undefined ? { cpus: c } : {}), memoryLimitBytes: s.memoryLimitBytes });
  }
  const links: (LinkSpec | null)[] = [];
  for (let i = 0; i + 1 < tiers.length; i++) {
    const from = tiers[i]!.name;
    const to = tiers[i + 1]!.name;
    if (i === 0 && !local && p.entry === null) { links.push(null); continue; }
    const l = p.links.find((x) => x.from === from && x.to === to) ?? p.links.find((x) => x.from === to && x.to === from);
    if (!l) bad(`no link ${from} -> ${to} in its links`);
    if (!(typeof l!.bandwidthMbps === 'number' && l!.bandwidthMbps > 0 && Number.isFinite(l!.bandwidthMbps))) bad(`link ${from} -> ${to}: field 'bandwidthMbps' must be megabits per second > 0, got ${JSON.stringify(l!.bandwidthMbps)}`);
    if (l!.rttMs !== undefined && !(typeof l!.rttMs === 'number' && l!.rttMs >= 0 && Number.isFinite(l!.rttMs))) bad(`link ${from} -> ${to}: field 'rttMs' must be milliseconds ≥ 0, got ${JSON.stringify(l!.rttMs)}`);
    links.push({ rateBps: l!.bandwidthMbps * 1e6, delayMs: (l!.rttMs ?? 0) / 2 });
  }
  return { model, cuts, local, tiers, links };
}

/**
 * Check that a placement was made for this model: its block count is the model's at single or
 * all granularity, and every stage boundary is a cut of that granularity. Catches placements
 * of the built-in architecture tables (`kerf place resnet50` without a profile), whose block
 * indices are not the model's cut ids. Throws KERF_ERR_PLACE naming the mismatch.
 */
export async function checkPlacementModel(p: Placement, model: string, inputShapes: Record<string, number[]> = {}, source = 'placement'): Promise<void> {
  const { prepareModel } = await import('../engine/prepare.js');
  const { blockCuts } = await import('../graph/cuts.js');
  const prep = await prepareModel(model, { inputShapes });
  const single = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const all = blockCuts(prep.analysis, 'all').map((c) => c.id);
  const ids = p.stages.slice(0, -1).map((s) => s.cutOut!);
  const fits = (cuts: number[]): boolean => p.model.blocks === cuts.length + 1 && ids.every((id) => cuts.includes(id));
  if (!fits(single) && !fits(all)) {
    throw kerfError('KERF_ERR_PLACE', `${source}: placed '${p.model.name}' as ${p.model.blocks} blocks with stage cuts ${ids.join(',') || 'none'}, ` +
      `but ${model} has ${single.length + 1} blocks (single) or ${all.length + 1} (all) with other cut ids; place it from a kerf profile of this model`);
  }
}
