/**
 * The substrate of `kerf up --hosts`: every host runs `kerf agent` (src/cluster/host.ts) and
 * this controller drives them with signed requests. One session per substrate: its stages'
 * pipeline token is derived from the cluster token and the session id on both sides (never
 * sent), and a heartbeat per host renews the session's lease and turns what it sees into
 * events (`host-lost` after `lostAfterMs` without an answer, `host-back`, `stage-exit`).
 */
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { randomBytes } from 'node:crypto';
import { kerfError, type KerfError } from '../errors.js';
import { agentRequest } from './client.js';
import { sessionToken, type StageRequest } from './host.js';
import { readHostsTls, type ClusterTls, type HostEntry, type HostsFile } from './hosts.js';
import { fileSha256 } from './parts.js';
import type { HostStatus, PartRef, StageHandle, StageSpec, StageStatus, Substrate, SubstrateEvent } from './substrate.js';

export interface AgentSubstrateOptions {
  /** ms between heartbeats per host (default 500) */
  heartbeatMs?: number;
  /** a host is lost after this long without an answer (default 1500 ms) */
  lostAfterMs?: number;
  /** ms to wait for an agent's answer before calling it unreachable (default 5000; uploads and starts wait longer) */
  timeoutMs?: number;
  log?: (line: string) => void;
  /** TLS material (default: read from the hosts file's tls) */
  tls?: ClusterTls | null;
}

/** A host's status as its agent answers it: every session's stages. */
type AgentStatus = Omit<HostStatus, 'stages'> & { stages: (StageStatus & { session: string; exit?: string })[] };

interface HostState {
  entry: HostEntry;
  base: string;
  /** the agent's host part, where its stages listen */
  addr: string;
  agent: http.Agent;
  last: HostStatus | null;
  lastOk: number;
  lost: boolean;
  timer: NodeJS.Timeout | null;
  beating: boolean;
}

export class AgentSubstrate extends EventEmitter implements Substrate {
  readonly kind = 'hosts';
  readonly session: string;
  /** the token this session's stages use (derived by each agent from the cluster token) */
  readonly pipelineToken: string;
  readonly entry: string;
  readonly #token: string;
  readonly #hosts = new Map<string, HostState>();
  readonly #stages = new Map<string, StageHandle>();
  readonly #o: AgentSubstrateOptions;
  /** TLS to the agents and between the tiers, or null */
  readonly tls: ClusterTls | null;
  #closed: Promise<void> | null = null;

  private constructor(file: HostsFile, o: AgentSubstrateOptions, tls: ClusterTls | null) {
    super();
    this.#o = o;
    this.tls = tls;
    this.#token = file.token;
    this.entry = file.entry;
    this.session = randomBytes(12).toString('base64url');
    this.pipelineToken = sessionToken(file.token, this.session);
    for (const e of file.hosts) {
      const addr = e.agent.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      const agent = tls ? new https.Agent({ keepAlive: true, maxSockets: 8, ...this.#tlsOpts() }) : new http.Agent({ keepAlive: true, maxSockets: 8 });
      this.#hosts.set(e.name, { entry: e, base: `${tls ? 'https' : 'http'}://${e.agent}`, addr, agent, last: null, lastOk: 0, lost: false, timer: null, beating: false });
    }
  }

  #tlsOpts(): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
    const t = this.tls;
    return t ? { ...(t.ca ? { ca: t.ca } : {}), ...(t.cert && t.key ? { cert: t.cert, key: t.key } : {}) } : {};
  }

  /**
   * What a stage request or a link measurement carries for TLS between the hosts: the CA the
   * hops verify each other with (certificates and keys stay on their hosts: each agent's own).
   */
  peerTls(): { tls?: { ca?: string } } {
    return this.tls ? { tls: this.tls.ca ? { ca: this.tls.ca.toString('utf8') } : {} } : {};
  }

  /** Reach every agent of `file` (its token checked); rejects naming the first host that fails. */
  static async connect(file: HostsFile, o: AgentSubstrateOptions = {}): Promise<AgentSubstrate> {
    const s = new AgentSubstrate(file, o, o.tls !== undefined ? o.tls : await readHostsTls(file.tls));
    try {
      await Promise.all([...s.#hosts.keys()].map(async (name) => { await s.status(name); }));
    } catch (e) {
      await s.close();
      throw e;
    }
    for (const h of s.#hosts.values()) s.#beat(h);
    return s;
  }

  hosts(): readonly string[] { return [...this.#hosts.keys()]; }

  #host(name: string): HostState {
    if (this.#closed) throw kerfError('KERF_ERR_CLOSED', 'the hosts substrate is closed');
    const h = this.#hosts.get(name);
    if (!h) throw kerfError('KERF_ERR_USAGE', `no host '${name}' in the hosts file (hosts: ${this.hosts().join(', ')})`);
    return h;
  }

  #req<T>(h: HostState, method: string, path: string, o: Parameters<typeof agentRequest>[4] = {}): Promise<T> {
    return agentRequest<T>(h.base, this.#token, method, path, { agent: h.agent, label: `host ${h.entry.name} (agent ${h.entry.agent})`, timeoutMs: this.#o.timeoutMs ?? 5000, ...this.#tlsOpts(), ...o }).then((r) => r.json);
  }

  async stage(onHost: string, file: string): Promise<PartRef> {
    const h = this.#host(onHost);
    const ref = await fileSha256(file);
    const { have } = await this.#req<{ have: boolean }>(h, 'GET', `/v1/host/parts/${ref.sha256}`);
    if (!have) {
      const t0 = performance.now();
      await this.#req(h, 'PUT', `/v1/host/parts/${ref.sha256}`, { body: createReadStream(file), sha: ref.sha256, timeoutMs: 600_000 });
      this.#o.log?.(`sent ${(ref.bytes / 1e6).toFixed(1)} MB to ${onHost} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    return ref;
  }

  async start(spec: StageSpec): Promise<StageHandle> {
    const h = this.#host(spec.onHost);
    if (spec.token !== this.pipelineToken) throw kerfError('KERF_ERR_USAGE', `stage '${spec.name}': on hosts, stages use the substrate's pipelineToken (the agents derive it; it is never sent)`);
    if (this.#stages.has(spec.name)) throw kerfError('KERF_ERR_USAGE', `stage '${spec.name}' is already running`);
    const { onHost, token: _t, part, whole, ...rest } = spec;
    const body: StageRequest = {
      ...rest, part: { sha256: part.sha256 }, ...this.peerTls(),
      ...(whole ? { whole: { sha256: whole.sha256, from: this.#host(whole.onHost).entry.agent } } : {}),
    };
    const r = await this.#req<{ pid: number; port: number; cpus?: number; cgroup?: string }>(h, 'POST', `/v1/host/stages?session=${this.session}`,
      { body: JSON.stringify(body), timeoutMs: 180_000 }).catch((e: KerfError) => {
      throw kerfError(e.code, e.message.replace(/^(host \S+ \(agent [^)]+\)): /, `$1: starting ${spec.role} ${spec.name}: `));
    });
    const handle: StageHandle = {
      name: spec.name, onHost, role: spec.role, address: `${h.addr.includes(':') ? `[${h.addr}]` : h.addr}:${r.port}`, pid: r.pid,
      ...(r.cgroup ? { cpus: r.cpus!, cgroup: r.cgroup } : {}),
    };
    this.#stages.set(spec.name, handle);
    return handle;
  }

  async stop(name: string): Promise<void> {
    const s = this.#stages.get(name);
    if (!s) return;
    this.#stages.delete(name);
    const h = this.#hosts.get(s.onHost)!;
    await this.#req(h, 'DELETE', `/v1/host/stages/${encodeURIComponent(name)}?session=${this.session}`, { timeoutMs: 10_000 });
  }

  async status(onHost: string): Promise<HostStatus> {
    const h = this.#host(onHost);
    const st = await this.#req<AgentStatus>(h, 'GET', `/v1/host/status?session=${this.session}`);
    const mine: HostStatus = {
      ...st, name: onHost,
      ...(h.entry.memoryMB !== undefined ? { memoryBytes: h.entry.memoryMB * 1e6 } : {}), ...(h.entry.cpus !== undefined ? { cpus: h.entry.cpus } : {}),
      stages: st.stages.filter((s) => s.session === this.session).map(({ session: _s, ...rest }) => rest),
    };
    h.last = mine;
    h.lastOk = Date.now();
    return mine;
  }

  stageMemory(name: string): { rss: number; peak: number } | null {
    const s = this.#stages.get(name);
    const st = s ? this.#hosts.get(s.onHost)?.last?.stages.find((x) => x.name === name) : undefined;
    return st?.rss !== undefined ? { rss: st.rss, peak: st.peak ?? st.rss } : null;
  }

  /** An agent's own request on this controller's behalf (measurement, reference block). */
  request<T>(onHost: string, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<T> {
    return this.#req<T>(this.#host(onHost), method, path, { ...(body !== undefined ? { body: JSON.stringify(body) } : {}), timeoutMs });
  }

  /** "host:port" of a host's agent. */
  agentOf(onHost: string): string { return this.#host(onHost).entry.agent; }

  #emit(e: SubstrateEvent): void {
    this.#o.log?.(e.type === 'host-back' ? `host ${e.onHost} answers again` : `${e.type}: ${e.onHost}${'stage' in e ? ` ${e.stage}` : ''}: ${e.reason}`);
    this.emit('event', e);
  }

  #beat(h: HostState): void {
    const period = this.#o.heartbeatMs ?? 500;
    const lostAfter = this.#o.lostAfterMs ?? 1500;
    h.timer = setInterval(() => {
      if (h.beating || this.#closed) return;
      h.beating = true;
      const name = h.entry.name;
      this.#req<AgentStatus>(h, 'GET', `/v1/host/status?session=${this.session}`, { timeoutMs: lostAfter })
        .then((st) => {
          h.lastOk = Date.now();
          if (h.lost) { h.lost = false; this.#emit({ type: 'host-back', onHost: name }); }
          const seen = new Map(st.stages.filter((s) => s.session === this.session).map((s) => [s.name, s]));
          h.last = { ...st, name, stages: [...seen.values()] };
          for (const s of [...this.#stages.values()].filter((x) => x.onHost === name)) {
            const got = seen.get(s.name);
            if (got && got.alive) continue;
            this.#stages.delete(s.name);
            this.#emit({ type: 'stage-exit', stage: s.name, onHost: name, reason: got?.exit ?? 'no longer on its host' });
          }
        }, (e: Error) => {
          if (!h.lost && Date.now() - h.lastOk >= lostAfter) {
            h.lost = true;
            this.#emit({ type: 'host-lost', onHost: name, reason: e.message });
          }
        })
        .finally(() => { h.beating = false; });
    }, period);
    // not unref'd: an open substrate keeps its controller alive (close() clears it)
  }

  /** Stop this session's stages on every host (best effort: a lost host's agent ends them with its lease). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      for (const h of this.#hosts.values()) if (h.timer) clearInterval(h.timer);
      await Promise.allSettled([...this.#hosts.values()].map(async (h) => {
        try {
          await agentRequest(h.base, this.#token, 'DELETE', `/v1/host/sessions/${this.session}`, { agent: h.agent, timeoutMs: 5000, ...this.#tlsOpts() });
        } catch (e) {
          if (this.#stages.size && [...this.#stages.values()].some((s) => s.onHost === h.entry.name)) {
            this.#o.log?.(`could not stop the stages on ${h.entry.name}: ${(e as Error).message} (its agent stops them when the lease runs out)`);
          }
        }
        h.agent.destroy();
      }));
      this.#stages.clear();
    })();
    return this.#closed;
  }
}
