/**
 * The substrate of `kerf up` on one machine: every stage is a `kerf worker` child process of
 * this one (serve/up.ts's `spawnWorker`), held to its CPU share with a cgroup quota where
 * cgroups are writable. Its one host is `local`; staging a part only hashes the file (it is
 * already here).
 */
import { EventEmitter } from 'node:events';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kerfError } from '../errors.js';
import { spawnWorker, type StartedTier } from '../serve/up.js';
import { cpuQuotaUnavailable, processCpuSeconds, sweepStaleCpuGroups } from '../serve/cpu.js';
import { availableParallelism, totalmem } from 'node:os';
import { fileSha256 } from './parts.js';
import type { HostStatus, PartRef, StageHandle, StageSpec, Substrate, SubstrateEvent } from './substrate.js';

export interface LocalSubstrateOptions {
  /** names of the hosts it pretends to have (all this machine; default ['local']): lets a
   * deployment meant for several hosts, parts and all, run here */
  hosts?: string[];
  /** interface stages listen on (default 127.0.0.1) */
  host?: string;
  /** the kerf executable (default: this package's bin/kerf.js) */
  kerfBin?: string;
  /** a line of progress or a child's output */
  log?: (line: string) => void;
  /** ms a stage may take to listen (default 60000) */
  startTimeoutMs?: number;
  /** cgroup v1 cpu hierarchy; `disabled`: never hold stages to their shares */
  cpu?: { root?: string; periodUs?: number; disabled?: boolean };
}

const here = dirname(fileURLToPath(import.meta.url));
export const LOCAL_HOST = 'local';

export class LocalSubstrate extends EventEmitter implements Substrate {
  readonly kind = 'local';
  readonly #parts = new Map<string, string>();
  readonly #stages = new Map<string, { handle: StageHandle; tier: StartedTier; stopping: boolean }>();
  readonly #o: LocalSubstrateOptions;
  /** null when CPU shares are held by cgroups, else why not */
  readonly cpuQuota: string | null;
  #closed: Promise<void> | null = null;

  constructor(o: LocalSubstrateOptions = {}) {
    super();
    this.#o = o;
    this.cpuQuota = o.cpu?.disabled ? 'CPU limits disabled' : cpuQuotaUnavailable(o.cpu?.root);
    if (this.cpuQuota === null) for (const p of sweepStaleCpuGroups(o.cpu?.root)) o.log?.(`removed stale cgroup ${p}`);
  }

  hosts(): readonly string[] { return this.#o.hosts ?? [LOCAL_HOST]; }

  #check(onHost: string): void {
    if (this.#closed) throw kerfError('KERF_ERR_CLOSED', 'the local substrate is closed');
    if (!this.hosts().includes(onHost)) throw kerfError('KERF_ERR_USAGE', `host '${onHost}': this machine's substrate has only ${this.hosts().join(', ')}`);
  }

  async stage(onHost: string, file: string): Promise<PartRef> {
    this.#check(onHost);
    const ref = await fileSha256(file);
    this.#parts.set(`${onHost}\0${ref.sha256}`, file);
    return ref;
  }

  async start(spec: StageSpec): Promise<StageHandle> {
    this.#check(spec.onHost);
    if (this.#stages.has(spec.name)) throw kerfError('KERF_ERR_USAGE', `stage '${spec.name}' is already running`);
    const model = this.#parts.get(`${spec.onHost}\0${spec.part.sha256}`);
    if (!model) throw kerfError('KERF_ERR_USAGE', `stage '${spec.name}': part ${spec.part.sha256.slice(0, 12)} is not staged on ${spec.onHost}`);
    const { onHost, part, token, whole, ...rest } = spec;
    // a stage holding only its part may load other segments of the whole model (staged on this machine)
    const wholeFile = whole ? this.#parts.get(`${whole.onHost}\0${whole.sha256}`) : undefined;
    if (wholeFile) rest.args = [...rest.args, '--whole-model', wholeFile];
    const cpu = this.cpuQuota === null ? { ...(this.#o.cpu?.root ? { root: this.#o.cpu.root } : {}), ...(this.#o.cpu?.periodUs ? { periodUs: this.#o.cpu.periodUs } : {}) } : null;
    const threads = spec.cpus !== undefined && cpu === null ? 1 : spec.threads;
    const tier = await spawnWorker({ ...rest, ...(threads ? { threads } : {}), model, host: this.#o.host ?? '127.0.0.1' }, {
      bin: this.#o.kerfBin ?? resolve(here, '..', '..', '..', 'bin', 'kerf.js'), token, log: this.#o.log ?? (() => {}),
      timeoutMs: this.#o.startTimeoutMs ?? 60_000, cpu,
      onExit: (why) => {
        const s = this.#stages.get(spec.name);
        if (!s || s.stopping) return;
        this.#stages.delete(spec.name);
        this.emit('event', { type: 'stage-exit', stage: spec.name, onHost, reason: why } satisfies SubstrateEvent);
      },
    });
    const handle: StageHandle = {
      name: spec.name, onHost, role: spec.role, address: tier.address, pid: tier.pid,
      ...(tier.cgroup ? { cpus: tier.cpus!, cgroup: tier.cgroup } : {}),
    };
    this.#stages.set(spec.name, { handle, tier, stopping: false });
    return handle;
  }

  async stop(name: string): Promise<void> {
    const s = this.#stages.get(name);
    if (!s) return;
    s.stopping = true;
    await s.tier.stop();
    this.#stages.delete(name);
  }

  stageMemory(name: string): { rss: number; peak: number } | null { return this.#stages.get(name)?.tier.memory?.() ?? null; }

  async status(onHost: string): Promise<HostStatus> {
    this.#check(onHost);
    return {
      name: onHost, ok: true, memoryBytes: totalmem(), cpus: availableParallelism(), cpuQuota: this.cpuQuota ?? true,
      parts: [...this.#parts.keys()].filter((k) => k.startsWith(`${onHost}\0`)).map((k) => k.slice(onHost.length + 1)),
      stages: [...this.#stages.values()].filter((s) => s.handle.onHost === onHost).map(({ handle, tier }) => {
        const m = tier.memory?.();
        const c = processCpuSeconds(handle.pid);
        return { name: handle.name, pid: handle.pid, alive: !tier.exited(), ...(m ? { rss: m.rss, peak: m.peak } : {}), ...(c !== null ? { cpuSeconds: c } : {}) };
      }),
    };
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.allSettled([...this.#stages.keys()].map((n) => this.stop(n)));
    })();
    return this.#closed;
  }
}
