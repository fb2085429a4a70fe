/**
 * The substrate: what the one controller (deploy, watch, re-place on loss, switch, replay,
 * roll out) needs from whatever actually runs a stage. Three implement it: child processes on
 * this machine (`LocalSubstrate`, src/cluster/local.ts, what `kerf up` uses), a host's agent
 * (`AgentSubstrate`, src/cluster/agents.ts, `kerf up --hosts`), and pinned Deployments (the
 * operator, src/k8s). Everything above it is written once against this contract.
 *
 * The contract:
 * - `hosts()` names the hosts a stage may be put on (LocalSubstrate: one, `local`).
 * - `stage(host, file)` puts a model file (a whole model or one stage's part) on a host ahead
 *   of use, named by its SHA-256; staging the same content twice sends nothing. `start` only
 *   takes parts staged on its host.
 * - `start(spec)` runs one stage — a `kerf worker` (or the gateway) on a segment of a staged
 *   part with given cuts, threads, CPU share, token, port and next hop — and resolves once it
 *   listens, with the address other stages reach it at. It rejects with a KerfError naming the
 *   stage and host (KERF_ERR_AUTH: wrong token; KERF_ERR_REMOTE: the host cannot be reached or refused;
 *   KERF_ERR_UPSTREAM: the stage exited while starting; KERF_ERR_TIMEOUT);
 *   a stage that failed to start leaves nothing running.
 * - `stop(name)` stops a stage and resolves when it is gone (idempotent; an unknown or lost
 *   stage resolves too).
 * - `status(host)` reports a host's health, memory, CPU and its stages' resident memory and CPU
 *   seconds; it rejects when the host cannot be reached.
 * - Losses are events, not polls: `on('event', fn)` gets `stage-exit` when a started stage ends
 *   without `stop` asking, `host-lost` when a host stops answering its heartbeat (or its agent
 *   connection breaks) and `host-back` when it answers again. A substrate never restarts a
 *   stage by itself: deciding what to do is the controller's job.
 * - `close()` stops every stage it started, on every host, and releases what it holds; it is
 *   idempotent, and calls after it reject with KERF_ERR_CLOSED.
 */
import type { EventEmitter } from 'node:events';
import type { TierStart } from '../serve/up.js';
import type { StageMemory } from './memory.js';

/** A model file staged on a host, named by its content. */
export interface PartRef {
  sha256: string;
  bytes: number;
}

/**
 * One stage to run: the fields of serve's `TierStart` (role, cuts, blocks, threads, CPU share,
 * next hop, port, extra worker flags), on `host`, loading the staged `part`. `TierStart.model`
 * and `TierStart.host` (a local path and interface) are the substrate's to fill in.
 */
export interface StageSpec extends Omit<TierStart, 'model' | 'host'> {
  /** a name `hosts()` lists */
  onHost: string;
  part: PartRef;
  /** the pipeline's shared secret (the stage authenticates its peers with it) */
  token: string;
  /** when `part` is only this stage's segment: the whole model and a host holding it, from
   * which the stage's host fetches it on demand (a repartition loading another segment) */
  whole?: PartRef & { onHost: string };
  /** the stage's memory by kerf's memory model (src/cluster/memory.ts): a host's agent admits it only when it fits */
  memory?: StageMemory;
}

/** A running stage. */
export interface StageHandle {
  name: string;
  onHost: string;
  role: 'gateway' | 'worker';
  /** host:port other stages (and clients, for the gateway) reach it at */
  address: string;
  pid: number;
  /** CPU share it is held to by a cgroup quota, when it is */
  cpus?: number;
  cgroup?: string;
}

/** A stage as its host sees it now. */
export interface StageStatus {
  name: string;
  pid: number;
  alive: boolean;
  /** resident memory now and at its peak, bytes */
  rss?: number;
  peak?: number;
  /** CPU seconds it has used */
  cpuSeconds?: number;
}

/** A host's health and what it offers. */
export interface HostStatus {
  name: string;
  ok: boolean;
  /** memory and cores it offers stages (declared, else its own) */
  memoryBytes: number;
  cpus: number;
  /** whether CPU shares are held by cgroup quotas there (else: why not) */
  cpuQuota: true | string;
  /** whether its stages are held to `memoryBytes` by a memory cgroup there (else: why not; stages are still admitted by the memory model) */
  memoryLimit?: true | string;
  /** part hashes cached there */
  parts: string[];
  stages: StageStatus[];
}

/** What a substrate tells its controller without being asked. */
export type SubstrateEvent =
  | { type: 'stage-exit'; stage: string; onHost: string; reason: string }
  | { type: 'host-lost'; onHost: string; reason: string }
  | { type: 'host-back'; onHost: string };

export interface Substrate extends Pick<EventEmitter, 'on' | 'off' | 'once'> {
  /** 'local', 'hosts', 'k8s' */
  readonly kind: string;
  hosts(): readonly string[];
  /** the token stages must use, when the substrate fixes it (agents derive it from the cluster
   * token and the session, so it never crosses the network); deploy passes it to every stage */
  readonly pipelineToken?: string;
  stage(onHost: string, file: string): Promise<PartRef>;
  start(spec: StageSpec): Promise<StageHandle>;
  stop(name: string): Promise<void>;
  status(onHost: string): Promise<HostStatus>;
  /** a stage's resident memory as last seen (now, for a local process; at the last heartbeat, on a host), if known */
  stageMemory?(name: string): { rss: number; peak: number } | null;
  close(): Promise<void>;
}
