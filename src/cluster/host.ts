/**
 * `kerf agent` as a host's daemon: beside profiling (src/profile/agent.ts) it runs stages for
 * controllers. Every route is under /v1/host/ and every request is signed with the cluster
 * token (auth.ts; the token never crosses the network):
 *
 *   GET    /v1/host/status?session=S     health, memory, CPU, cached parts, stages (renews S's lease)
 *   GET    /v1/host/parts/SHA            { have } — is the part cached here
 *   PUT    /v1/host/parts/SHA            the part's bytes (checked against SHA, cached on disk)
 *   GET    /v1/host/blobs/SHA            a cached part's bytes (another agent fetching it on demand)
 *   POST   /v1/host/stages?session=S     start a stage (StageSpec without token: derived from S)
 *   DELETE /v1/host/stages/NAME?session=S
 *   DELETE /v1/host/sessions/S           stop every stage of a session
 *   GET    /v1/host/ping                 RTT probe
 *   POST   /v1/host/sink                 upload probe: { bytes, seconds } first to last byte
 *   GET    /v1/host/source?seconds=T     download probe: bytes for T seconds
 *   POST   /v1/host/measure              { peer, seconds } → this host's link to another agent
 *   POST   /v1/host/bench                { seconds } → the reference block's time on this host's CPU share
 *
 * Stages are `kerf worker` children (they die with the agent), held to the host's declared
 * CPU share (`--cpus`: a cgroup every stage sits under) and to their own share inside it, and
 * together to its declared memory (`--memory-mb`: a memory cgroup every stage sits in, from the
 * moment it is spawned). A stage is admitted only when its memory by kerf's memory model
 * (src/cluster/memory.ts) fits in what the host offers beside the stages it runs; else the
 * start is refused (KERF_ERR_MEMORY) before anything starts.
 * A session whose controller stops renewing its lease (default 15 s) is stopped: a controller
 * killed with SIGKILL leaves nothing running.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { connect } from 'node:net';
import { availableParallelism, homedir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isKerfError, kerfError, type ErrorCode } from '../errors.js';
import { spawnWorker, type StartedTier, type TierStart } from '../serve/up.js';
import { CGROUP_CPU_ROOT, CpuGroup, MemoryGroup, cpuQuotaUnavailable, currentMemoryGroup, memoryLimitUnavailable, processCpuSeconds, sweepStaleCpuGroups } from '../serve/cpu.js';
import { admissionRefusal, describeFileFloor, describeStageMemory, fileMemoryFloor, type Admitted, type StageMemory } from './memory.js';
import { RequestVerifier, bodySha, signRequest } from './auth.js';
import { CONTENT_SHA, agentRequest } from './client.js';
import type { HostStatus, StageStatus } from './substrate.js';
import { referenceInChild } from './reference.js';
import { boosted } from './boost.js';

export interface HostDaemonOptions {
  /** the cluster token */
  token: string;
  /** interface stages listen on (the agent's) */
  host: string;
  /** where parts are cached (default $XDG_CACHE_HOME/kerf/parts or ~/.cache/kerf/parts) */
  cacheDir?: string;
  /** memory offered to stages (default: the host's) */
  memoryMB?: number;
  /** cores offered to stages, held with a cgroup quota where possible (default: the host's, no quota) */
  cpus?: number;
  /** a session is stopped when not renewed for this long (default 15000 ms) */
  leaseMs?: number;
  kerfBin?: string;
  log?: (line: string) => void;
  cpu?: { root?: string; periodUs?: number; disabled?: boolean };
  /** the memory group stages are held in is made under `parent` (default: the agent's own memory group); `disabled`: never use one */
  memory?: { parent?: string; disabled?: boolean };
  /** largest part accepted, bytes (default 2 GB) */
  maxPartBytes?: number;
  /**
   * The agent's own TLS files (kerf agent --tls-cert/--tls-key/--tls-ca): a controller asking for
   * TLS gets stages that serve with this certificate and verify their next hop with the CA it
   * sends (else `ca`, else the system's); with `ca`, stages also require client certificates.
   */
  tls?: { cert: string; key: string; ca?: string };
}

/** The token a session's stages authenticate each other with: derived on both sides, never sent. */
export function sessionToken(clusterToken: string, session: string): string {
  return createHmac('sha256', clusterToken).update(`kerf pipeline\n${session}`).digest('hex');
}

/** A stage request's body: a StageSpec without the token (derived from the session) and with `part` by hash. */
export type StageRequest = Omit<TierStart, 'model' | 'host'> & {
  part: { sha256: string };
  tls?: PeerTls;
  /** when `part` is only the stage's segment: the whole model by hash, and the agent ("host:port") to fetch it from when the stage asks */
  whole?: { sha256: string; from: string };
  /** the controller's estimate of the stage's memory (kerf's memory model, src/cluster/memory.ts) */
  memory?: StageMemory;
};

/** TLS between hosts as a controller asks for it: the CA (PEM) hops verify each other with, if not the agent's own or the system's. */
export interface PeerTls { ca?: string }

interface PeerConn { scheme: 'http' | 'https'; agent: http.Agent; opts: { ca?: Buffer; cert?: Buffer; key?: Buffer } }

interface Running {
  session: string;
  name: string;
  role: 'gateway' | 'worker';
  tier: StartedTier;
  exit: string | null;
  /** bytes it was admitted with */
  estimate: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const SHA = /^[0-9a-f]{64}$/;
const SESSION = /^[A-Za-z0-9_-]{8,64}$/;
const STAGE = /^[A-Za-z0-9_.()@:-]{1,80}$/;
const STATUS: Partial<Record<ErrorCode, number>> = { KERF_ERR_USAGE: 400, KERF_ERR_AUTH: 401, KERF_ERR_PROTOCOL: 400, KERF_ERR_CLOSED: 503, KERF_ERR_TIMEOUT: 504, KERF_ERR_UPSTREAM: 502, KERF_ERR_MEMORY: 507 };

export class HostDaemon {
  readonly #o: HostDaemonOptions;
  readonly #verify: RequestVerifier;
  readonly #cache: string;
  readonly #stages = new Map<string, Running>();
  readonly #leases = new Map<string, number>();
  readonly #group: CpuGroup | null;
  /** null when stages are held to CPU shares by cgroups, else why not */
  readonly cpuQuota: string | null;
  readonly #mem: MemoryGroup | null;
  /** null when stages are held to the declared memory by a memory cgroup, else why not (admission still holds) */
  readonly memoryLimit: string | null;
  /** stages admitted and still starting: name → bytes */
  readonly #starting = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  readonly #peers = new http.Agent({ keepAlive: true, maxSockets: 4 });
  readonly #peersTls = new Map<string, https.Agent>();
  #closed: Promise<void> | null = null;

  private constructor(o: HostDaemonOptions, cache: string, group: CpuGroup | null, quota: string | null, mem: MemoryGroup | null, memWhy: string | null) {
    this.#o = o;
    this.#verify = new RequestVerifier(o.token);
    this.#cache = cache;
    this.#group = group;
    this.cpuQuota = quota;
    this.#mem = mem;
    this.memoryLimit = memWhy;
    this.#timer = setInterval(() => this.#expire(), 1000);
    this.#timer.unref();
  }

  static async create(o: HostDaemonOptions): Promise<HostDaemon> {
    if (!o.token) throw kerfError('KERF_ERR_USAGE', 'agent: a token is required');
    if (o.cpus !== undefined && !(o.cpus > 0)) throw kerfError('KERF_ERR_USAGE', `agent: --cpus ${o.cpus} must be a positive number of cores`);
    if (o.memoryMB !== undefined && !(o.memoryMB > 0)) throw kerfError('KERF_ERR_USAGE', `agent: --memory-mb ${o.memoryMB} must be positive`);
    const cache = o.cacheDir ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kerf', 'parts');
    try { await mkdir(cache, { recursive: true }); } catch (e) {
      throw kerfError('KERF_ERR_FILE', `agent: cannot make the part cache ${cache} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); pass --cache DIR`);
    }
    const quota = o.cpu?.disabled ? 'CPU limits disabled' : cpuQuotaUnavailable(o.cpu?.root);
    let group: CpuGroup | null = null;
    if (quota === null && o.cpus !== undefined) {
      for (const p of sweepStaleCpuGroups(o.cpu?.root ?? CGROUP_CPU_ROOT)) o.log?.(`removed stale cgroup ${p}`);
      group = await CpuGroup.create('host', o.cpus, { ...(o.cpu?.root ? { root: o.cpu.root } : {}), ...(o.cpu?.periodUs ? { periodUs: o.cpu.periodUs } : {}) });
    }
    if (quota !== null && o.cpus !== undefined) o.log?.(`CPU share ${o.cpus} not enforced (${quota}): stages run with 1 thread`);
    // Memory: one group for all the stages, limited to what the host offers (only when it is declared).
    let mem: MemoryGroup | null = null;
    let memWhy: string | null = o.memoryMB === undefined ? 'no --memory-mb declared' : null;
    if (o.memoryMB !== undefined) {
      const parent = o.memory?.parent ?? currentMemoryGroup();
      memWhy = o.memory?.disabled ? 'memory limits disabled' : memoryLimitUnavailable(parent);
      if (memWhy === null) {
        for (const p of sweepStaleCpuGroups(parent)) o.log?.(`removed stale cgroup ${p}`);
        try {
          mem = await MemoryGroup.create('host', o.memoryMB * 1e6, { parent });
        } catch (e) {
          await group?.remove().catch(() => {});
          throw e;
        }
        o.log?.(`stages held to ${o.memoryMB} MB together (${mem.path}, memory.limit_in_bytes ${mem.limitBytes})`);
      } else {
        o.log?.(`memory limit of ${o.memoryMB} MB not enforced (${memWhy}): stages are only admitted by kerf's memory model`);
      }
    }
    return new HostDaemon(o, cache, group, quota, mem, memWhy);
  }

  get memoryBytes(): number { return this.#o.memoryMB !== undefined ? this.#o.memoryMB * 1e6 : totalmem(); }
  get cpus(): number { return this.#o.cpus ?? availableParallelism(); }

  #log(line: string): void { this.#o.log?.(line); }

  /** Serve one /v1/host/ request. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      if (this.#closed) throw kerfError('KERF_ERR_CLOSED', 'the agent is shutting down');
      const path = req.url ?? '/';
      const url = new URL(path, 'http://agent');
      const sha = String(req.headers[CONTENT_SHA] ?? '');
      this.#verify.verify(req.headers.authorization, req.method ?? 'GET', path, sha || bodySha(''));
      const route = `${req.method} ${url.pathname.replace(/^\/v1\/host\//, '').replace(/\/[^/]+$/, '/*')}`;
      const last = decodeURIComponent(url.pathname.split('/').pop() ?? '');
      switch (route) {
        case 'GET status': {
          const s = url.searchParams.get('session');
          if (s && SESSION.test(s)) this.#leases.set(s, Date.now());
          return send(res, 200, this.status());
        }
        case 'GET parts/*': return send(res, 200, { have: SHA.test(last) && existsSync(this.#partFile(last)) });
        case 'PUT parts/*': return send(res, 200, await this.#putPart(req, last, sha));
        case 'GET blobs/*': return sendPart(res, SHA.test(last) ? this.#partFile(last) : null, last);
        case 'POST stages': return send(res, 200, await this.#start(url.searchParams.get('session') ?? '', await json(req, sha)));
        case 'DELETE stages/*': await this.#stop(url.searchParams.get('session') ?? '', last); return send(res, 200, { stopped: last });
        case 'DELETE sessions/*': return send(res, 200, { stopped: await this.#stopSession(last) });
        case 'GET ping': return send(res, 200, { t: Date.now() });
        case 'POST sink': return send(res, 200, await boosted(() => sink(req)));
        case 'GET source': return void boosted(() => source(res, Number(url.searchParams.get('seconds') ?? 1)));
        case 'POST measure': {
          const b = await json(req, sha) as { peer?: unknown; seconds?: unknown };
          if (typeof b.peer !== 'string' || !/^[^/\s]+:\d+$/.test(b.peer)) throw kerfError('KERF_ERR_USAGE', 'measure: body needs peer: "host:port" of another agent');
          const secs = Number(b.seconds ?? 1);
          if (!(secs > 0 && secs <= 30)) throw kerfError('KERF_ERR_USAGE', `measure: seconds ${String(b.seconds)}: expected 0 < s ≤ 30`);
          return send(res, 200, await this.measure(b.peer, secs, await this.#peerTls((b as { tls?: PeerTls }).tls)));
        }
        case 'POST bench': {
          const b = await json(req, sha) as { seconds?: unknown };
          const secs = Number(b.seconds ?? 1);
          if (!(secs > 0 && secs <= 30)) throw kerfError('KERF_ERR_USAGE', `bench: seconds ${String(b.seconds)}: expected 0 < s ≤ 30`);
          return send(res, 200, await this.#bench(secs));
        }
        default: throw kerfError('KERF_ERR_USAGE', `no route ${req.method} ${url.pathname}`, { status: 404 });
      }
    } catch (e) {
      const code = isKerfError(e) ? e.code : 'KERF_ERR_REMOTE';
      const message = (e as Error)?.message ?? String(e);
      if (!isKerfError(e)) this.#log(`internal error: ${(e as Error)?.stack ?? message}`);
      else if (code === 'KERF_ERR_AUTH') this.#log(`refused ${req.method} ${req.url?.split('?')[0]} from ${req.socket.remoteAddress}: ${message}`);
      const status = (e as { status?: number }).status ?? STATUS[code as ErrorCode] ?? 500;
      if (!req.complete) { res.setHeader('connection', 'close'); req.resume(); }
      if (!res.headersSent && !res.destroyed) send(res, status, { error: { code, message } });
    }
  }

  status(): HostStatus {
    return {
      name: '', ok: true, memoryBytes: this.memoryBytes, cpus: this.cpus, cpuQuota: this.cpuQuota ?? true, memoryLimit: this.memoryLimit ?? true,
      parts: readdirSync(this.#cache).filter((f) => /^[0-9a-f]{64}\.onnx$/.test(f)).map((f) => f.slice(0, 64)),
      stages: [...this.#stages.values()].map((s): StageStatus & { session: string; exit?: string } => {
        const m = s.tier.memory?.();
        const c = processCpuSeconds(s.tier.pid);
        return {
          name: s.name, session: s.session, pid: s.tier.pid, alive: s.exit === null, ...(s.exit ? { exit: s.exit } : {}),
          ...(m ? { rss: m.rss, peak: m.peak } : {}), ...(c !== null ? { cpuSeconds: c } : {}),
        };
      }),
    };
  }

  #partFile(sha: string): string { return join(this.#cache, `${sha}.onnx`); }

  async #putPart(req: http.IncomingMessage, sha: string, declared: string): Promise<{ sha256: string; bytes: number }> {
    if (!SHA.test(sha) || declared !== sha) throw kerfError('KERF_ERR_USAGE', `part upload: the path names ${sha.slice(0, 16)}… but the signed content hash is ${declared.slice(0, 16)}…`);
    return this.#receivePart(req, sha);
  }

  readonly #fetching = new Map<string, Promise<void>>();
  /**
   * Fetch a part by hash from another agent that holds it (GET /v1/host/blobs/SHA, signed with
   * the cluster token; over HTTPS with TLS), checked against the hash, into the cache. Once at a
   * time per part; a failure is left as PART.error for the stage that waits on it.
   */
  fetchPart(sha: string, from: string, tls?: PeerTls): Promise<void> {
    const file = this.#partFile(sha);
    if (existsSync(file)) return Promise.resolve();
    let p = this.#fetching.get(sha);
    if (p) return p;
    p = (async () => {
      await rm(`${file}.error`, { force: true });
      const t0 = performance.now();
      try {
        const pc = await this.#peerTls(tls);
        const path = `/v1/host/blobs/${sha}`;
        const res = await new Promise<http.IncomingMessage>((resolvePromise, reject) => {
          const h = bodySha('');
          const req = (pc.scheme === 'https' ? https : http).request(`${pc.scheme}://${from}${path}`, { agent: pc.agent, ...pc.opts, headers: { authorization: signRequest(this.#o.token, 'GET', path, h), [CONTENT_SHA]: h } }, resolvePromise);
          req.setTimeout(30_000, () => req.destroy(kerfError('KERF_ERR_REMOTE', `agent ${from}: no answer within 30 s`)));
          req.on('error', (e: NodeJS.ErrnoException) => reject(kerfError('KERF_ERR_REMOTE', `agent ${from}: cannot reach it (${e.code ?? e.message})`)));
          req.end();
        });
        if (res.statusCode !== 200) { res.resume(); throw kerfError('KERF_ERR_REMOTE', `agent ${from} answered ${res.statusCode} for part ${sha.slice(0, 12)}`); }
        const r = await this.#receivePart(res, sha);
        this.#log(`fetched part ${sha.slice(0, 12)} from ${from} (${(r.bytes / 1e6).toFixed(1)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (e) {
        this.#log(`fetching part ${sha.slice(0, 12)} from ${from} failed: ${(e as Error).message}`);
        await writeFile(`${file}.error`, (e as Error).message).catch(() => {});
      }
    })().finally(() => this.#fetching.delete(sha));
    this.#fetching.set(sha, p);
    return p;
  }

  /** A part's bytes from `req` into the cache, checked against `sha`. */
  async #receivePart(req: http.IncomingMessage, sha: string): Promise<{ sha256: string; bytes: number }> {
    const file = this.#partFile(sha);
    if (existsSync(file)) { req.resume(); return { sha256: sha, bytes: -1 }; }
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    const h = createHash('sha256');
    let n = 0;
    const max = this.#o.maxPartBytes ?? 2e9;
    await new Promise<void>((resolvePromise, reject) => {
      const out = createWriteStream(tmp);
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n > max) { req.destroy(); out.destroy(); reject(kerfError('KERF_ERR_USAGE', `part of more than ${max / 1e6} MB refused`)); return; }
        h.update(c);
        if (!out.write(c)) { req.pause(); out.once('drain', () => req.resume()); }
      });
      req.on('end', () => out.end(() => resolvePromise()));
      req.on('error', (e) => { out.destroy(); reject(kerfError('KERF_ERR_REMOTE', `part upload broke: ${e.message}`)); });
    }).catch(async (e: unknown) => { await rm(tmp, { force: true }); throw e; });
    const got = h.digest('hex');
    if (got !== sha) { await rm(tmp, { force: true }); throw kerfError('KERF_ERR_USAGE', `part upload: the bytes hash to ${got.slice(0, 16)}…, not ${sha.slice(0, 16)}…`); }
    await rename(tmp, file);
    this.#log(`cached part ${sha.slice(0, 12)} (${(n / 1e6).toFixed(1)} MB)`);
    return { sha256: sha, bytes: n };
  }

  async #start(session: string, body: unknown): Promise<{ pid: number; port: number; cpus?: number; cgroup?: string }> {
    if (!SESSION.test(session)) throw kerfError('KERF_ERR_USAGE', 'start: ?session= must be 8..64 of [A-Za-z0-9_-]');
    const r = body as StageRequest;
    if (typeof r !== 'object' || r === null || typeof r.name !== 'string' || !STAGE.test(r.name)) throw kerfError('KERF_ERR_USAGE', `start: stage name ${JSON.stringify((r as { name?: unknown })?.name)} is not [A-Za-z0-9_.()@:-]{1,80}`);
    if (r.role !== 'gateway' && r.role !== 'worker') throw kerfError('KERF_ERR_USAGE', `start ${r.name}: role must be gateway or worker`);
    if (!SHA.test(r.part?.sha256 ?? '')) throw kerfError('KERF_ERR_USAGE', `start ${r.name}: part.sha256 must be a SHA-256`);
    if (!Array.isArray(r.cuts) || !r.cuts.every(Number.isInteger)) throw kerfError('KERF_ERR_USAGE', `start ${r.name}: cuts must be a list of cut ids`);
    if (!Array.isArray(r.args) || !r.args.every((a) => typeof a === 'string')) throw kerfError('KERF_ERR_USAGE', `start ${r.name}: args must be a list of strings`);
    const forbidden = r.args.find((a) => /^--(model|listen|token|next|gateway|metrics|tls-cert|tls-key|tls-ca|host-name|memory-mb|part-cache)(=|$)/.test(a));
    if (forbidden) throw kerfError('KERF_ERR_USAGE', `start ${r.name}: ${forbidden} is the agent's to set`);
    const key = `${session}/${r.name}`;
    if (this.#stages.get(key)?.exit === null) throw kerfError('KERF_ERR_USAGE', `start ${r.name}: already running in this session`);
    const tlsArgs = r.tls !== undefined ? await this.#stageTls(r.name, r.tls) : [];
    if (r.whole !== undefined && (!SHA.test(r.whole?.sha256 ?? '') || typeof r.whole.from !== 'string' || !/^[^/\s]+:\d+$/.test(r.whole.from))) {
      throw kerfError('KERF_ERR_USAGE', `start ${r.name}: whole must be {sha256, from: "host:port" of an agent holding it}`);
    }
    const whole = r.whole;
    if (whole) tlsArgs.push('--whole-model', this.#partFile(whole.sha256));
    const model = this.#partFile(r.part.sha256);
    if (!existsSync(model)) throw kerfError('KERF_ERR_USAGE', `start ${r.name}: part ${r.part.sha256.slice(0, 12)} is not cached on this host (PUT /v1/host/parts/SHA first)`);
    const need = this.#admit(key, r, model);
    this.#leases.set(session, Date.now());
    const cap = this.#o.cpus;
    const share = r.cpus !== undefined ? Math.min(r.cpus, cap ?? r.cpus) : undefined;
    const cgroups = this.cpuQuota === null && (share !== undefined || this.#group)
      ? { root: this.#group?.path ?? this.#o.cpu?.root, ...(this.#o.cpu?.periodUs ? { periodUs: this.#o.cpu.periodUs } : {}), label: `${session.slice(0, 8)}-${r.name}` }
      : null;
    const threads = this.cpuQuota !== null && (share !== undefined || cap !== undefined) ? 1 : r.threads;
    const t: TierStart = {
      ...r, model, host: this.#o.host, port: 0, ...(threads ? { threads } : {}),
      // what this host offers, for a rollout to decide whether a new version fits beside the old
      args: [...r.args, '--host-name', this.#o.host, ...(this.#o.memoryMB !== undefined ? ['--memory-mb', String(this.#o.memoryMB)] : []),
        // and its part cache, for a rollout to send a worker the new version's part (not the gateway: it reads the new model itself)
        ...(r.role === 'worker' ? ['--part-cache', this.#cache] : [])],
      // in the host's group, a stage without a share of its own may use all of the host's
      ...(share !== undefined ? { cpus: share } : this.#group ? { cpus: this.#group.cpus } : {}),
    };
    delete (t as { part?: unknown }).part;
    delete (t as { tls?: unknown }).tls;
    delete (t as { whole?: unknown }).whole;
    if (tlsArgs.length) t.args = [...t.args, ...tlsArgs];
    let running: Running | null = null;
    const mem = this.#mem;
    const oomBefore = mem?.stat().oomKills ?? 0;
    const tier = await spawnWorker(t, {
      bin: this.#o.kerfBin ?? resolve(here, '..', '..', '..', 'bin', 'kerf.js'), token: sessionToken(this.#o.token, session),
      log: (l) => this.#log(l), timeoutMs: 120_000, cpu: cgroups,
      onExit: (why) => { if (running) { running.exit = why + this.#oomNote(oomBefore); this.#log(running.exit); } },
      // a stage holding only its part asks for the whole model when a switch loads another segment
      onMessage: (m) => { if (m.event === 'need-model' && whole) void this.fetchPart(whole.sha256, whole.from, r.tls); },
      // into the host's memory group before it loads anything
      ...(mem ? { onSpawn: (pid: number) => mem.add(pid) } : {}),
    }).catch((e: unknown) => {
      this.#starting.delete(key);
      const oom = this.#oomNote(oomBefore);
      throw oom && isKerfError(e) ? kerfError(e.code, e.message + oom) : e;
    });
    this.#starting.delete(key);
    running = { session, name: r.name, role: r.role, tier, exit: null, estimate: need };
    this.#stages.set(key, running);
    this.#log(`session ${session.slice(0, 8)}: ${r.role} ${r.name} (pid ${tier.pid}) on port ${tier.address.split(':').pop()}${tier.cgroup ? `, ${tier.cpus} CPU` : ''}`);
    return { pid: tier.pid, port: Number(tier.address.split(':').pop()), ...(tier.cgroup ? { cpus: tier.cpus!, cgroup: tier.cgroup } : {}) };
  }

  /**
   * Admission: the stage's memory (the controller's estimate, or the agent's floor from the part
   * file, whichever is larger) must fit in what the host offers beside the stages running or
   * starting here; reserved until the stage runs or fails. Returns the bytes admitted.
   */
  #admit(key: string, r: StageRequest, model: string): number {
    const m = r.memory;
    const given = m !== undefined && typeof m === 'object' && m !== null && [m.bytes, m.weightBytes, m.activationBytes, m.wholeBytes, m.margin, m.overheadBytes].every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0) ? m : null;
    if (m !== undefined && !given) throw kerfError('KERF_ERR_USAGE', `start ${r.name}: memory must be {bytes, weightBytes, activationBytes, wholeBytes, margin, overheadBytes} (non-negative numbers)`);
    const fileBytes = statSync(model).size;
    const floor = fileMemoryFloor(fileBytes);
    const need = Math.max(given?.bytes ?? 0, floor);
    const why = given && given.bytes >= floor ? describeStageMemory(given)
      : describeFileFloor(fileBytes);
    const running: Admitted[] = [
      ...[...this.#stages.values()].filter((s) => s.exit === null).map((s) => ({ name: s.name, estimateBytes: s.estimate, rssBytes: s.tier.memory?.()?.rss ?? null })),
      ...[...this.#starting].map(([k, b]) => ({ name: `${k.split('/').pop()} (starting)`, estimateBytes: b, rssBytes: null })),
    ];
    const source = this.#o.memoryMB !== undefined ? `kerf agent --memory-mb ${this.#o.memoryMB}${this.#mem ? ', held by a memory cgroup' : ''}` : 'all of its memory';
    const no = admissionRefusal(r.name, need, why, this.memoryBytes, source, running);
    if (no) {
      this.#log(`refused ${r.role} ${r.name}: ${no}`);
      throw kerfError('KERF_ERR_MEMORY', no);
    }
    this.#starting.set(key, need);
    return need;
  }

  /** ", killed by …" when the memory group's OOM killer ended processes since `before`. */
  #oomNote(before: number): string {
    const n = (this.#mem?.stat().oomKills ?? before) - before;
    return n > 0 ? ` (the host's memory limit of ${this.#o.memoryMB} MB was reached: the kernel killed ${n} process${n > 1 ? 'es' : ''} of its stages)` : '';
  }

  /** A stage's TLS flags: this agent's certificate and key, the controller's CA (cached by hash) or the agent's own. */
  async #stageTls(name: string, t: PeerTls): Promise<string[]> {
    const own = this.#o.tls;
    if (!own) throw kerfError('KERF_ERR_USAGE', `start ${name}: TLS between the hosts was asked for, but this agent has no certificate (start kerf agent with --tls-cert and --tls-key)`);
    const ca = await this.#caFile(t);
    return ['--tls-cert', own.cert, '--tls-key', own.key, ...(ca ? ['--tls-ca', ca] : [])];
  }

  /** The CA file for TLS to other hosts: the controller's (written once into the cache, by hash), else the agent's --tls-ca. */
  async #caFile(t: PeerTls | undefined): Promise<string | undefined> {
    if (typeof t?.ca === 'string' && t.ca) {
      if (t.ca.length > 256_000 || !t.ca.includes('-----BEGIN CERTIFICATE-----')) throw kerfError('KERF_ERR_USAGE', 'tls.ca: expected PEM certificates (under 256 KB)');
      const file = join(this.#cache, `ca-${createHash('sha256').update(t.ca).digest('hex').slice(0, 32)}.pem`);
      if (!existsSync(file)) await writeFile(file, t.ca);
      return file;
    }
    return this.#o.tls?.ca;
  }

  async #stop(session: string, name: string): Promise<void> {
    const key = `${session}/${name}`;
    const s = this.#stages.get(key);
    if (!s) return;
    this.#stages.delete(key);
    await s.tier.stop();
    this.#log(`session ${session.slice(0, 8)}: stopped ${s.role} ${name}`);
  }

  async #stopSession(session: string): Promise<number> {
    const mine = [...this.#stages.values()].filter((s) => s.session === session);
    await Promise.all(mine.map((s) => this.#stop(session, s.name)));
    this.#leases.delete(session);
    if (mine.length) this.#log(`session ${session.slice(0, 8)}: stopped ${mine.length} stage(s)`);
    return mine.length;
  }

  #expire(): void {
    const lease = this.#o.leaseMs ?? 15_000;
    const now = Date.now();
    for (const [s, t] of this.#leases) {
      if (now - t <= lease) continue;
      this.#log(`session ${s.slice(0, 8)}: no controller for ${Math.round((now - t) / 1000)} s, stopping its stages`);
      void this.#stopSession(s);
    }
  }

  /** How this agent reaches its peers: plain, or HTTPS with the CA (and its own certificate as the client's) when a controller asks for TLS. */
  async #peerTls(t: PeerTls | undefined): Promise<PeerConn> {
    if (t === undefined) return { scheme: 'http', agent: this.#peers, opts: {} };
    if (!this.#o.tls) throw kerfError('KERF_ERR_USAGE', 'TLS between the hosts was asked for, but this agent has no certificate (start kerf agent with --tls-cert and --tls-key)');
    const ca = await this.#caFile(t);
    const opts = { ...(ca ? { ca: readFileSync(ca) } : {}), cert: readFileSync(this.#o.tls.cert), key: readFileSync(this.#o.tls.key) };
    const key = ca ?? '';
    let agent = this.#peersTls.get(key);
    if (!agent) { agent = new https.Agent({ keepAlive: true, maxSockets: 4, ...opts }); this.#peersTls.set(key, agent); }
    return { scheme: 'https', agent, opts };
  }

  /** This host's link to another agent: bandwidth both ways over `seconds` each, and RTT. */
  measure(peer: string, seconds: number, conn?: PeerConn): Promise<{ peer: string; upMbps: number; downMbps: number; rttMs: number }> {
    // at a raised priority where allowed: a host busy with other work must not read as a slow link
    return boosted(() => this.#measure(peer, seconds, conn));
  }

  async #measure(peer: string, seconds: number, conn?: PeerConn): Promise<{ peer: string; upMbps: number; downMbps: number; rttMs: number }> {
    const pc = conn ?? { scheme: 'http', agent: this.#peers, opts: {} };
    const base = `${pc.scheme}://${peer}`;
    const o = { agent: pc.agent, label: `peer agent ${peer}`, timeoutMs: seconds * 1000 + 15_000, ...pc.opts };
    // RTT: TCP handshakes to the peer's agent (kernel round trips, no HTTP handling in them)
    const [ph, pp] = [peer.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1'), Number(peer.split(':').pop())];
    const rtts: number[] = [];
    for (let i = 0; i < 7; i++) {
      rtts.push(await new Promise<number>((res, rej) => {
        const t0 = performance.now();
        const c = connect(pp, ph, () => { const dt = performance.now() - t0; c.destroy(); res(dt); });
        c.setTimeout(5000, () => { c.destroy(); rej(kerfError('KERF_ERR_REMOTE', `peer agent ${peer}: no TCP handshake within 5 s`)); });
        c.on('error', (e: NodeJS.ErrnoException) => rej(kerfError('KERF_ERR_REMOTE', `peer agent ${peer}: cannot reach it (${e.code ?? e.message})`)));
      }));
    }
    const rttMs = rtts.sort((a, b) => a - b)[3]!;
    await agentRequest(base, this.#o.token, 'GET', '/v1/host/ping', o);
    const { Readable } = await import('node:stream');
    const chunk = randomBytes(64 * 1024);
    const end = performance.now() + seconds * 1000;
    const up = await agentRequest<{ bytes: number; seconds: number }>(base, this.#o.token, 'POST', '/v1/host/sink', {
      ...o, body: Readable.from((function* () { while (performance.now() < end) yield chunk; })()),
    });
    const down = await new Promise<{ bytes: number; seconds: number }>((resolvePromise, reject) => {
      let bytes = 0, t0 = 0, t1 = 0;
      const path = `/v1/host/source?seconds=${seconds}`;
      {
        const sha = bodySha('');
        const req = (pc.scheme === 'https' ? https : http).request(`${base}${path}`, { agent: pc.agent, ...pc.opts, headers: { authorization: signRequest(this.#o.token, 'GET', path, sha), [CONTENT_SHA]: sha } }, (res) => {
          if (res.statusCode !== 200) { res.resume(); reject(kerfError('KERF_ERR_REMOTE', `peer agent ${peer}: source answered ${res.statusCode}`)); return; }
          res.on('data', (c: Buffer) => { const now = performance.now(); if (!t0) t0 = now; else bytes += c.length; t1 = now; });
          res.on('end', () => resolvePromise({ bytes, seconds: (t1 - t0) / 1000 }));
          res.on('error', reject);
        });
        req.on('error', (e: NodeJS.ErrnoException) => reject(kerfError('KERF_ERR_REMOTE', `peer agent ${peer}: cannot reach it (${e.code ?? e.message})`)));
        req.end();
      }
    });
    const mbps = (r: { bytes: number; seconds: number }): number => r.seconds > 0 ? r.bytes * 8 / r.seconds / 1e6 : NaN;
    return { peer, upMbps: mbps(up.json), downMbps: mbps(down), rttMs };
  }

  /** The reference block's seconds per run in a child process held to this host's CPU share. */
  async #bench(seconds: number): Promise<{ secondsPerRun: number; runs: number; cpus: number; held: boolean }> {
    let group: CpuGroup | null = null;
    const r = await referenceInChild(seconds, {
      ...(this.#o.kerfBin ? { kerfBin: this.#o.kerfBin } : {}),
      onSpawn: async (pid) => {
        if (this.cpuQuota !== null || this.#o.cpus === undefined) return;
        group = await CpuGroup.create(`bench-${randomBytes(3).toString('hex')}`, this.#o.cpus, { ...(this.#group ? { root: this.#group.path } : {}) });
        await group.add(pid);
      },
    }).finally(() => (group as CpuGroup | null)?.remove().catch(() => {}));
    return { ...r, cpus: this.cpus, held: group !== null };
  }

  /** Stop every stage and release the host's cgroup. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      await Promise.allSettled([...this.#stages.values()].map((s) => s.tier.stop()));
      this.#stages.clear();
      this.#peers.destroy();
      for (const a of this.#peersTls.values()) a.destroy();
      await this.#group?.remove().catch(() => {});
      await this.#mem?.remove().catch((e: Error) => this.#log(e.message));
    })();
    return this.#closed;
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A cached part's bytes (another agent fetching it by hash). */
function sendPart(res: http.ServerResponse, file: string | null, sha: string): void {
  if (!file || !existsSync(file)) { send(res, 404, { error: { code: 'KERF_ERR_FILE', message: `part ${sha.slice(0, 12)} is not cached on this host` } }); return; }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': statSync(file).size });
  const s = createReadStream(file);
  s.on('error', () => res.destroy());
  s.pipe(res);
}

/** A JSON body whose SHA-256 is the signed one. */
async function json(req: http.IncomingMessage, sha: string): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) { n += (c as Buffer).length; if (n > 1e6) throw kerfError('KERF_ERR_USAGE', 'request body over 1 MB'); chunks.push(c as Buffer); }
  const body = Buffer.concat(chunks);
  if (createHash('sha256').update(body).digest('hex') !== sha) throw kerfError('KERF_ERR_AUTH', 'the body does not match its signed hash');
  if (!body.length) return {};
  try { return JSON.parse(body.toString('utf8')); } catch { throw kerfError('KERF_ERR_PROTOCOL', 'request body is not JSON'); }
}

/** Count an upload's bytes from its second chunk's arrival to its last (the first may sit in a buffer). */
async function sink(req: http.IncomingMessage): Promise<{ bytes: number; seconds: number }> {
  let bytes = 0, t0 = 0, t1 = 0;
  for await (const c of req) {
    const now = performance.now();
    if (!t0) t0 = now; else bytes += (c as Buffer).length;
    t1 = now;
  }
  return { bytes, seconds: (t1 - t0) / 1000 };
}

/** Write bytes for `seconds`, as fast as the link takes them; resolves when the response is done. */
function source(res: http.ServerResponse, seconds: number): Promise<void> {
  if (!(seconds > 0 && seconds <= 30)) { send(res, 400, { error: { code: 'KERF_ERR_USAGE', message: `source: seconds ${seconds}: expected 0 < s ≤ 30` } }); return Promise.resolve(); }
  const done = new Promise<void>((r) => res.once('close', () => r()));
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  const chunk = randomBytes(64 * 1024);
  const end = performance.now() + seconds * 1000;
  const pump = (): void => {
    while (performance.now() < end) { if (!res.write(chunk)) { res.once('drain', pump); return; } }
    res.end();
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
  return done;
}
