/**
 * Live repartitioning: the gateway's control API (`/v1/partition`) and the four ways to
 * switch a running pipeline to new cuts.
 *
 * A split being served is a *version*: segment id `vN` on every worker (requests name it in
 * their meta, tier to tier) and one gateway `Pipeline`. A switch prepares the new version
 * beside the old one (or, for pause-resume, after tearing the old one down), flips the
 * gateway's active pipeline in one assignment, lets requests in flight finish on the old
 * version, then releases it. Strategies differ in what preparing costs:
 *
 * - `pause-resume`: stop admitting (503), drain, unload, load the new sessions, resume;
 * - `standby`: a second version is always loaded; flipping to it loads nothing, and the old
 *   version becomes the new standby (two copies of the model, always);
 * - `on-demand`: load the new version's sessions beside the old, flip, unload the old;
 * - `hot-swap`: every tier composes its range from shared chunk sessions
 *   (switch-chunks.ts); a new version reuses them and loads only what no chunk covers.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createHash, timingSafeEqual } from 'node:crypto';
import { access, readFile, stat } from 'node:fs/promises';
import type { Prepared } from '../engine/prepare.js';
import { prepareModelInThread } from '../engine/prepare-thread.js';
import type * as http from 'node:http';
import { isKerfError, kerfError } from '../errors.js';
import { blockCuts, checkCutIds } from '../graph/cuts.js';
import type { PlanDocument } from '../plan/types.js';
import { checkPlanModel, validatePlan } from '../plan/validate.js';
import type { Gateway } from './gateway.js';
import { Pipeline } from './pipeline.js';
import { NextHop, parseAddress } from './nexthop.js';
import type { SegmentRunner } from './segment.js';
import { ChunkStore, type ComposeReport } from './switch-chunks.js';
import { partBytes, sha256 as sha256Hex } from '../cluster/parts.js';
import { PART_CHUNK_BYTES } from './part-cache.js';
import { besideEstimate, chooseRolloutWay, memoryReport, type MemoryReport, type RolloutWay, type TierMemory } from './rollout-memory.js';
import { ThreadSegment } from './thread-segment.js';
import { DEFAULT_SEGMENT, type LoadResult } from './worker.js';
import { parseHopCodec } from '../codec/index.js';
import { errorStatus, readBody, sendJson } from '../util/http.js';

/** How a pipeline switches to a new split. */
export type SwitchStrategy = 'pause-resume' | 'standby' | 'on-demand' | 'hot-swap';
export const SWITCH_STRATEGIES: readonly SwitchStrategy[] = Object.freeze(['pause-resume', 'standby', 'on-demand', 'hot-swap']);
/** Strategy of a gateway nobody configured. */
export const DEFAULT_STRATEGY: SwitchStrategy = 'on-demand';

/** What one tier did to prepare a version. */
export interface TierPrepare {
  tier: string;
  /** milliseconds the tier took to load (sessions or chunks) */
  loadMs: number;
  /** across hosts: the part it loaded from its host's part cache, and the bytes sent there (0: it had it) */
  part?: { sha256: string; bytes: number; sentBytes: number };
  /** hot-swap: chunk sessions loaded and reused, bytes loaded */
  chunksLoaded?: number;
  chunksReused?: number;
  loadedBytes?: number;
}

/** One switch, as `POST /v1/partition` answers it and `GET /v1/partition` lists it. */
export interface SwitchReport {
  version: string;
  strategy: SwitchStrategy;
  from: number[];
  to: number[];
  /** ISO time the switch started */
  at: string;
  /** how the new version was ready: loaded now, the standby, composed from chunks, or nothing to do */
  prepared: 'loaded' | 'standby' | 'chunks' | 'none';
  /** no pipeline admitted new requests for this long (the flip; for pause-resume the whole pause) */
  downtimeMs: number;
  /** preparing the new version (for pause-resume: tearing down the old one and loading the new) */
  prepareMs: number;
  /** waiting for requests in flight on the old version */
  drainMs: number;
  /** requests in flight on the old split that started over on the new one (`reroute`) */
  rerouted?: number;
  /** releasing the old version's sessions */
  releaseMs: number;
  /** start of preparation to old version released */
  durationMs: number;
  tiers: TierPrepare[];
  /** a plan's summary when the switch came from one */
  plan?: { model: string; totalS: number; objective: string };
  /** the links' codecs, when the switch changed them (one per cut; docs/codec.md) */
  codecs?: { from: string[]; to: string[] };
  /** set up by the switcher itself (e.g. adopting hot-swap), not asked for */
  setup?: boolean;
  /** the longest the gateway's event loop was blocked during the switch (requests wait that long) */
  gatewayStallMs?: number;
  /** a failover's cause and phases (the switch moved the gateway onto a new chain of workers) */
  failover?: FailoverRecord;
  /** a rollout: the model version switched from and to */
  rollout?: { from: ModelVersion; to: ModelVersion; back: boolean; way?: RolloutWay };
}

/** A version of the served model: its name and the sha256 of its file. */
export interface ModelVersion { name: string; sha256: string; file: string | null }

/** What a failover did and how long each phase took. */
export interface FailoverRecord {
  reason: string;
  /** hosts (or stages) given up */
  lost: string[];
  /** from the loss to its detection; from detection to a new placement; deploying it; switching */
  detectMs: number;
  replanMs: number;
  deployMs: number;
  switchMs: number;
  /** requests that ran again on the new pipeline (held after failing, or moved off the broken one) */
  replayed: number;
  /** the new pipeline's workers were staged before the loss */
  staged: boolean;
}

/** A new chain of workers to serve from, deployed by a failover controller (src/cluster/failover.ts). */
export interface RetargetTarget {
  cuts: number[];
  /** the first worker of the new chain ("host:port"); null: the gateway runs the whole model */
  next: string | null;
  /** segment id to ask the first worker for (default: its default) */
  nextSegment?: string;
  /** the gateway runs part 0 (default: true when cuts leave it a part before `next`) */
  local?: boolean;
  reason: string;
  lost?: string[];
  detectMs?: number;
  replanMs?: number;
  deployMs?: number;
  staged?: boolean;
}

/** A new version of the model to roll out (same inputs and outputs). */
export interface RolloutTarget {
  /** the new model file (on every host that runs a part: the same path) */
  model?: string;
  /** return to the version served before the last rollout */
  back?: boolean;
  /** its cuts (default: the current ones when they are cuts of the new model, else the same share of its blocks) */
  cuts?: number[];
  /** stage by stage: stop admitting, unload the old version, load the new one, resume (when two
   * versions do not fit in memory side by side; costs downtime). Default: chosen from the hosts'
   * memory (beside where every host has room for the new parts, else stage by stage) */
  stageByStage?: boolean;
  /** load beside the old version even where the hosts' memory says it does not fit */
  beside?: boolean;
}

/** `GET /v1/partition`. */
export interface PartitionStatus {
  strategy: SwitchStrategy;
  model: string;
  version: string;
  cuts: number[];
  /** codec of the link at each cut ('none': raw; docs/codec.md) */
  codecs: string[];
  plan: SwitchReport['plan'] | null;
  standby: { version: string; cuts: number[] } | null;
  tiers: { name: string; address: string; part: number }[];
  /** the gateway's hot-swap chunk sessions */
  chunks: { start: number | null; end: number | null; bytes: number; refs: number }[];
  switching: boolean;
  history: SwitchReport[];
  /** the model version served (name and sha256) and the one `rollout --back` returns to */
  modelVersion: ModelVersion;
  previousModel: ModelVersion | null;
}

/** What `Switcher.warm` did: per tier, chunks loaded and reused over all candidates. */
export interface WarmReport {
  candidates: number[][];
  durationMs: number;
  tiers: TierPrepare[];
}

/** A target split: cut ids, or a kerf plan whose cuts are used. */
export interface PartitionTarget {
  cuts?: number[];
  plan?: PlanDocument;
  /** requests in flight on the old split start over on the new one instead of finishing where
   * they are (for leaving a saturated split: its backlog would keep them for seconds) */
  reroute?: boolean;
  /** codec of the link at each cut (`C` or `C/REPLY`, 'none': raw; default: the links' codecs in
   * force). A codec change is a switch like any other: a new version, its own connections. */
  codecs?: string[];
}

interface WorkerTier { name: string; where: string; hop: NextHop; next: string | null; part: number; nextCodec?: string; cache?: boolean }

interface Version {
  id: string;
  cuts: number[];
  pipeline: Pipeline;
  /** segment id on the workers */
  seg: string;
  /** a composed local segment the switcher must release after the pipeline closes */
  ownLocal: SegmentRunner | null;
  shared: boolean;
  plan?: SwitchReport['plan'];
  /** codec of the link at each cut */
  codecs: string[];
}

const LOAD_TIMEOUT_MS = 300_000;
const ms = (a: number, b: number): number => b - a;
const sameCuts = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const sameCodecs = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const dec = (b: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(b));

/** The switching machinery of one gateway. Create with `Switcher.attach`. */
export class Switcher {
  private strategyName: SwitchStrategy;
  private active: Version;
  private standbyV: Version | null = null;
  private workers: WorkerTier[] | null = null;
  private store: ChunkStore | null = null;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private busy = 0;
  private closed = false;
  private v0Alive = true;
  /** the model file workers load segments from when it is not their own (after a rollout) */
  private modelFile: string | null = null;
  private modelV: ModelVersion;
  private firstFile: string | null;
  private previousV: ModelVersion | null = null;
  private failoverMetrics: { total: import('./metrics.js').Counter; seconds: import('./metrics.js').Histogram; replayed: import('./metrics.js').Counter } | null = null;
  readonly history: SwitchReport[] = [];

  private constructor(readonly gateway: Gateway, strategy: SwitchStrategy) {
    this.strategyName = strategy;
    const p = gateway.pipeline;
    this.active = { id: 'v0', cuts: [...p.cuts], pipeline: p, seg: p.nextSegment ?? DEFAULT_SEGMENT, ownLocal: null, shared: false, codecs: this.chainCodecs(p, []) };
    this.modelV = { name: gateway.prep.model.name, sha256: gateway.prep.model.sha256 ?? '', file: gateway.prep.model.file ?? null };
    this.firstFile = this.modelV.file;
    gateway.onClose(() => this.close());
  }

  /** A switcher for `gateway` (its current pipeline is version v0); mounts `/v1/partition`. */
  static attach(gateway: Gateway, opts: { strategy?: SwitchStrategy } = {}): Switcher {
    const s = new Switcher(gateway, opts.strategy ?? DEFAULT_STRATEGY);
    gateway.mount('/v1/partition', (req, res, path) => s.route(req, res, path));
    gateway.mount('/v1/rollout', (req, res, path) => s.route(req, res, path));
    return s;
  }

  get strategy(): SwitchStrategy { return this.strategyName; }
  get cuts(): number[] { return [...this.active.cuts]; }
  /** Codec of the link at each cut in force ('none': raw); the workers' own are known once found (`discover`). */
  get codecs(): string[] { return [...this.active.codecs]; }
  private readonly codecsByPipeline = new WeakMap<Pipeline, string[]>();
  /** The links' codecs of the version `p` serves (the one in force when `p` is none the switcher made). */
  codecsOf(p: Pipeline): string[] { return [...(this.codecsByPipeline.get(p) ?? this.active.codecs)]; }

  /** The codec of each cut's link for pipeline `p` whose workers send with `workerCodecs` (the first worker's first). */
  private chainCodecs(p: Pipeline, workerCodecs: readonly (string | undefined)[]): string[] {
    const links = [...(p.local ? [p.next?.codec ?? 'none'] : []), ...workerCodecs.map((c) => c ?? 'none')];
    return Array.from({ length: p.cuts.length }, (_, j) => links[j] ?? 'none');
  }

  private get local(): boolean { return this.active.pipeline.local !== null; }
  private get parts(): number { return this.active.cuts.length + 1; }

  /** Find the workers by walking the chain from the gateway's first remote tier. */
  private async tiers(): Promise<WorkerTier[]> {
    if (this.workers) return this.workers;
    const opts = this.gateway.pipelineOptions;
    const tiers: WorkerTier[] = [];
    let where = this.active.pipeline.next?.where ?? null;
    let seg: string | undefined = this.active.pipeline.nextSegment;
    try {
      while (where) {
        if (tiers.length > 64) throw kerfError('KERF_ERR_UPSTREAM', 'partition: more than 64 tiers (a loop in the chain?)');
        const hop = NextHop.open(parseAddress(where, 'tier'), { token: opts.token ?? '', info: 'gateway switcher', ...(opts.tls ? { tls: opts.tls } : {}) });
        tiers.push({ name: where, where, hop, next: null, part: tiers.length + (this.local ? 1 : 0) });
        await hop.waitConnected(5000);
        const info = dec(await hop.control('info', '', { timeoutMs: 5000 })) as { name: string; default: string; partCache?: boolean; segments: { id: string; next: string | null; nextSegment: string | null; nextCodec?: string }[] };
        // a worker an agent started: a rollout sends it its part through its host's part cache
        if (info.partCache === true) tiers[tiers.length - 1]!.cache = true;
        const s = info.segments.find((x) => x.id === (seg ?? info.default));
        if (!s) throw kerfError('KERF_ERR_UPSTREAM', `partition: tier ${where} has no segment '${seg ?? info.default}'`);
        tiers[tiers.length - 1]!.name = info.name;
        tiers[tiers.length - 1]!.next = s.next;
        if (s.nextCodec) tiers[tiers.length - 1]!.nextCodec = s.nextCodec;
        where = s.next;
        seg = s.nextSegment ?? undefined;
      }
    } catch (e) {
      await Promise.all(tiers.map((t) => t.hop.close()));
      throw e;
    }
    if (tiers.length + (this.local ? 1 : 0) !== this.parts) {
      await Promise.all(tiers.map((t) => t.hop.close()));
      throw kerfError('KERF_ERR_UPSTREAM', `partition: found ${tiers.length} workers for ${this.parts} parts of cuts ${this.active.cuts.join(',')}`);
    }
    this.workers = tiers;
    // The version in force is the one just walked: its links' codecs are the workers' own.
    this.active.codecs = this.chainCodecs(this.active.pipeline, tiers.filter((t) => t.next !== null).map((t) => t.nextCodec));
    this.codecsByPipeline.set(this.active.pipeline, this.active.codecs);
    return tiers;
  }

  /** The status once the workers are found (status() lists only the gateway before the first switch). */
  async discover(): Promise<PartitionStatus> {
    await this.tiers();
    return this.status();
  }

  /** Cut ids of `target`, checked against the model and the pipeline's number of tiers. */
  resolve(target: PartitionTarget): { cuts: number[]; plan?: SwitchReport['plan']; codecs?: string[] } {
    const prep = this.gateway.prep;
    let cuts: unknown;
    let plan: SwitchReport['plan'] | undefined;
    if (target.plan !== undefined) {
      const p = validatePlan(target.plan, 'partition: "plan"');
      checkPlanModel(p, { sha256: prep.model.sha256, names: [prep.model.name, this.gateway.name], label: `the served model '${this.gateway.name}'` }, 'partition: "plan"');
      if (p.cuts.some((c) => c === null)) throw kerfError('KERF_ERR_PLAN', `partition: the plan has no cut ids (made from imported profiles?); plan from kerf profiles`);
      cuts = p.cuts;
      plan = { model: String(p.model ?? prep.model.name), totalS: Number(p.totalS ?? NaN), objective: String(p.objective ?? 'latency') };
      if (target.cuts !== undefined) throw kerfError('KERF_ERR_USAGE', 'partition: give "plan" or "cuts", not both');
    } else cuts = target.cuts;
    if (!Array.isArray(cuts) || cuts.some((c) => typeof c !== 'number')) throw kerfError('KERF_ERR_USAGE', 'partition: expected {"cuts": [ids…]} or {"plan": {…}}');
    const ids = checkCutIds(prep.model, prep.analysis, cuts as number[]);
    if (ids.length !== this.parts - 1 && target.plan !== undefined) {
      const p = target.plan;
      const used = p.tiers.filter((t) => t.blocks !== null).map((t) => t.tier);
      const unused = p.tiers.filter((t) => t.blocks === null).map((t) => t.tier);
      throw kerfError('KERF_ERR_PLAN', `partition: the plan leaves ${unused.join(' and ')} unused (it runs on ${used.join(', ')}: ${used.length} part${used.length === 1 ? '' : 's'}), ` +
        `but this pipeline has ${this.parts} running tiers and a switch keeps every tier in use; plan with every tier used ` +
        `(kerf plan … -d '!-1' -e '!-1' -c '!-1'), or start a new pipeline from this plan (kerf up plan.json)`, { field: 'tiers' });
    }
    if (ids.length !== this.parts - 1) {
      throw kerfError('KERF_ERR_CUT', `partition: ${ids.length} cut${ids.length === 1 ? '' : 's'} (${ids.join(',')}) for a pipeline of ${this.parts} tiers; give ${this.parts - 1} cut id${this.parts === 2 ? '' : 's'} (a switch keeps the same tiers)`);
    }
    let codecs: string[] | undefined;
    if (target.codecs !== undefined) {
      if (!Array.isArray(target.codecs) || target.codecs.length !== ids.length || target.codecs.some((c) => typeof c !== 'string')) {
        throw kerfError('KERF_ERR_USAGE', `partition: "codecs" must list one codec per cut (${ids.length}), e.g. ${JSON.stringify(ids.map(() => 'zstd-1'))}`, { field: 'codecs' });
      }
      codecs = target.codecs.map((c, j) => parseHopCodec(c, `partition: codecs[${j}]`).name);
    }
    return { cuts: ids, ...(plan ? { plan } : {}), ...(codecs ? { codecs } : {}) };
  }

  /**
   * Record that the active split came from `plan` (a pipeline started from a plan file, as
   * `kerf up plan.json` does), so `GET /v1/partition` shows it. The plan is checked as a switch
   * to it would be, and its cuts must be the active ones.
   */
  adoptPlan(plan: unknown): void {
    const r = this.resolve({ plan: plan as PlanDocument });
    if (!sameCuts(r.cuts, this.active.cuts)) {
      throw kerfError('KERF_ERR_PLAN', `partition: the plan's cuts ${r.cuts.join(',')} are not the active ones (${this.active.cuts.join(',')})`, { field: 'cuts' });
    }
    if (r.plan) this.active.plan = r.plan;
  }

  /** Every worker tier's Prometheus text (control op `metrics`), for the gateway's /metrics. */
  async tierMetrics(timeoutMs = 1000): Promise<{ tier: string; text: string }[]> {
    const tiers = await this.tiers();
    return Promise.all(tiers.map(async (t) => ({ tier: t.name, text: new TextDecoder().decode(await t.hop.control('metrics', '', { timeoutMs })) })));
  }

  /** Every worker tier's `info` (name, pid, host, CPU seconds, resident bytes, segments…), for the dashboard. */
  async tierInfo(timeoutMs = 1000): Promise<{ tier: string; address: string; info: Record<string, unknown> }[]> {
    const tiers = await this.tiers();
    return Promise.all(tiers.map(async (t) => ({ tier: t.name, address: t.where, info: dec(await t.hop.control('info', '', { timeoutMs })) as Record<string, unknown> })));
  }

  /** Switch to `target` with the current strategy; resolves when the old version is released. */
  partition(target: PartitionTarget): Promise<SwitchReport> {
    if (this.closed) return Promise.reject(kerfError('KERF_ERR_CLOSED', 'partition: the gateway is closing'));
    let r: ReturnType<Switcher['resolve']>;
    try { r = this.resolve(target); } catch (e) { return Promise.reject(e); }
    return this.serial(async () => {
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      try {
        const rep = await this.doSwitch(r.cuts, r.plan, false, target.reroute === true, undefined, r.codecs);
        rep.gatewayStallMs = Math.round(loop.max / 1e4) / 100;
        return rep;
      } finally { loop.disable(); }
    });
  }

  /**
   * Change the strategy. Standby loads the version for `standby` cuts beside the active one
   * (the next likely split); hot-swap moves the active version onto shared chunk sessions.
   */
  setStrategy(strategy: SwitchStrategy, opts: { standby?: number[] } = {}): Promise<PartitionStatus> {
    if (!SWITCH_STRATEGIES.includes(strategy)) return Promise.reject(kerfError('KERF_ERR_USAGE', `unknown switch strategy '${String(strategy)}' (one of ${SWITCH_STRATEGIES.join(', ')})`));
    let standby: number[] | undefined;
    try { if (opts.standby) standby = this.resolve({ cuts: opts.standby }).cuts; } catch (e) { return Promise.reject(e); }
    if (standby && strategy !== 'standby') return Promise.reject(kerfError('KERF_ERR_USAGE', `"standby" cuts need the standby strategy, not ${strategy}`));
    return this.serial(async () => {
      this.strategyName = strategy;
      if (strategy !== 'standby' || (standby && this.standbyV && !sameCuts(standby, this.standbyV.cuts))) await this.dropStandby();
      if (strategy === 'standby' && standby && !this.standbyV && !sameCuts(standby, this.active.cuts)) {
        this.standbyV = (await this.prepare(standby, false, true)).v;
      }
      if (strategy === 'hot-swap' && !this.active.shared) await this.doSwitch(this.active.cuts, this.active.plan, true);
      return this.status();
    });
  }

  /**
   * Hot-swap: load now, on every tier, the chunks that `candidates` (splits likely to be
   * switched to) need, so a later switch to any of them composes loaded chunks and loads
   * nothing. Each candidate's ranges are composed and released at once (the chunks stay in
   * the tiers' caches, LRU-bounded); candidates are warmed one at a time, so a switch asked for
   * meanwhile waits for one candidate at most.
   */
  async warm(candidates: readonly (readonly number[])[]): Promise<WarmReport> {
    if (this.strategyName !== 'hot-swap') throw kerfError('KERF_ERR_USAGE', `warm: needs the hot-swap strategy (this pipeline switches ${this.strategyName})`);
    const t0 = performance.now();
    const resolved = candidates.map((c) => this.resolve({ cuts: [...c] }).cuts);
    const byTier = new Map<string, TierPrepare>();
    const add = (tier: string, loadMs: number, r: ComposeReport | undefined): void => {
      const t = byTier.get(tier) ?? { tier, loadMs: 0, chunksLoaded: 0, chunksReused: 0, loadedBytes: 0 };
      t.loadMs += loadMs;
      t.chunksLoaded! += r?.loaded ?? 0;
      t.chunksReused! += r?.reused ?? 0;
      t.loadedBytes! += r?.loadedBytes ?? 0;
      byTier.set(tier, t);
    };
    for (const cuts of resolved) {
      await this.serial(async () => {
        const workers = await this.tiers();
        const id = `warm${++this.seq}`;
        const jobs: Promise<void>[] = workers.map(async (w) => {
          const t1 = performance.now();
          const r = dec(await w.hop.control('load', JSON.stringify({ id, cuts, blocks: [w.part, w.part], next: null, shared: true }), { timeoutMs: LOAD_TIMEOUT_MS })) as LoadResult;
          await w.hop.control('unload', JSON.stringify({ id }), { timeoutMs: 60_000 });
          add(w.name, ms(t1, performance.now()), r.chunks);
        });
        if (this.local) {
          jobs.push((async () => {
            const t1 = performance.now();
            const r = await this.chunkStore().compose(null, workers.length ? cuts[0]! : null, `gateway ${id}`);
            await r.segment.close();
            add('gateway', ms(t1, performance.now()), r.report);
          })());
        }
        const settled = await Promise.allSettled(jobs);
        const bad = settled.find((s) => s.status === 'rejected');
        if (bad) throw (bad as PromiseRejectedResult).reason;
      });
    }
    const order = ['gateway', ...(this.workers ?? []).map((w) => w.name)];
    return {
      candidates: resolved, durationMs: ms(t0, performance.now()),
      tiers: [...byTier.values()].sort((a, b) => order.indexOf(a.tier) - order.indexOf(b.tier)),
    };
  }

  /** The gateway's own chunk sessions (hot-swap), created on first use. */
  private chunkStore(): ChunkStore {
    return (this.store ??= new ChunkStore(this.gateway.prep, { threads: this.gateway.pipelineOptions.threads ?? 1, label: 'gateway' }));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    this.busy++;
    const p = this.queue.then(fn);
    this.queue = p.catch(() => {}).finally(() => { this.busy--; });
    return p;
  }

  /**
   * Load version `cuts` on every tier: composed from chunks when `shared`; else fresh sessions,
   * on threads of their own when `thread` (loaded at low priority and warmed up beside the
   * version being served, which they never stall).
   */
  private async prepare(cuts: number[], shared: boolean, thread = false, model?: { prep: Prepared; file: string | null }, codecs = this.active.codecs): Promise<{ v: Version; tiers: TierPrepare[] }> {
    const workers = await this.tiers();
    const id = `v${++this.seq}`;
    const { localSegment: _l, id: _i, nextSegment: _n, next: _x, cuts: _c, local: _o, ...gopts } = this.gateway.pipelineOptions;
    const prep = model?.prep ?? this.gateway.prep;
    const modelFile = model ? model.file : this.modelFile;
    if (shared && modelFile) throw kerfError('KERF_ERR_USAGE', `hot-swap composes the workers' own model's chunks; after a rollout switch with on-demand`);
    const tiers: TierPrepare[] = [];
    const loaded: WorkerTier[] = [];
    let ownLocal: SegmentRunner | null = null;
    let pipeline: Pipeline | null = null;
    try {
      const localJob = async (): Promise<void> => {
        if (!this.local) return;
        const t0 = performance.now();
        let report: ComposeReport | undefined;
        if (shared) {
          const r = await this.chunkStore().compose(null, workers.length ? cuts[0]! : null, `gateway ${id}`);
          ownLocal = r.segment;
          report = r.report;
        } else if (thread) {
          ownLocal = await ThreadSegment.create(prep, { cuts, blocks: [0, workers.length ? 0 : cuts.length] }, { threads: gopts.threads ?? 1, label: `gateway ${id}` });
        }
        pipeline = await Pipeline.create({
          ...gopts, prep, cuts, id, local: true, ...(workers[0] ? { next: workers[0].where, nextSegment: id, codec: codecs[0] ?? 'none' } : {}),
          ...(ownLocal ? { localSegment: ownLocal } : {}),
        });
        tiers.push({ tier: 'gateway', loadMs: ms(t0, performance.now()), ...(report ? { chunksLoaded: report.loaded, chunksReused: report.reused, loadedBytes: report.loadedBytes } : {}) });
      };
      const workerJob = async (w: WorkerTier, j: number): Promise<void> => {
        const t0 = performance.now();
        // Worker j sends the tensors at cut part j (its part's end) with that link's codec.
        const nextCodec = w.next !== null ? codecs[w.part] : undefined;
        // Across hosts (a worker with a part cache) after a rollout: its part goes through the cache.
        const ship = !shared && w.cache === true && (model !== undefined || this.modelFile !== null) ? await shipPart(w, prep, cuts, this.gateway.name) : null;
        const body = {
          id, ...(ship ? {} : { cuts, blocks: [w.part, w.part] }), next: w.next, ...(j < workers.length - 1 ? { nextSegment: id } : {}), ...(shared ? { shared: true } : {}), ...(thread ? { thread: true } : {}),
          ...(ship ? { ...modelLoad(prep, ship.file), sha256: ship.sha256 } : modelFile ? modelLoad(prep, modelFile) : {}),
          ...(nextCodec && nextCodec !== 'none' ? { nextCodec } : {}) };
        const r = dec(await w.hop.control('load', JSON.stringify(body), { timeoutMs: LOAD_TIMEOUT_MS })) as LoadResult;
        loaded.push(w);
        tiers.push({ tier: w.name, loadMs: ms(t0, performance.now()), ...(r.chunks ? { chunksLoaded: r.chunks.loaded, chunksReused: r.chunks.reused, loadedBytes: r.chunks.loadedBytes } : {}), ...(ship ? { part: { sha256: ship.sha256, bytes: ship.bytes, sentBytes: ship.sent } } : {}) });
      };
      const jobs = [localJob, ...workers.map((w, j) => () => workerJob(w, j))];
      if (thread) {
        // One tier at a time: the loads run on the cores serving leaves idle, and several at
        // once would only share those (and the memory bus) with each other and the servers.
        for (const job of jobs) await job();
      } else {
        const settled = await Promise.allSettled(jobs.map((job) => job()));
        const bad = settled.find((s) => s.status === 'rejected');
        if (bad) throw (bad as PromiseRejectedResult).reason;
      }
      if (!this.local) {
        pipeline = await Pipeline.create({ ...gopts, prep, cuts, id, local: false, next: workers[0]!.where, nextSegment: id });
      }
      await pipeline!.waitReady(30_000);
    } catch (e) {
      // Leave nothing of a half-prepared version behind.
      await (pipeline as Pipeline | null)?.close();
      await (ownLocal as SegmentRunner | null)?.close();
      await Promise.all(loaded.map((w) => w.hop.control('unload', JSON.stringify({ id }), { timeoutMs: 60_000 }).catch(() => {})));
      throw e;
    }
    const order = ['gateway', ...workers.map((w) => w.name)];
    tiers.sort((a, b) => order.indexOf(a.tier) - order.indexOf(b.tier));
    this.codecsByPipeline.set(pipeline!, [...codecs]);
    return { v: { id, cuts, pipeline: pipeline!, seg: id, ownLocal, shared, codecs: [...codecs] }, tiers };
  }

  /** Unload a version everywhere (its pipeline must be closed or idle). */
  private async release(v: Version): Promise<void> {
    await v.pipeline.close();
    await v.ownLocal?.close();
    const workers = await this.tiers();
    await Promise.all(workers.map((w) => w.hop.control('unload', JSON.stringify({ id: v.seg }), { timeoutMs: 120_000 }).catch((e: unknown) => {
      // A segment already gone is what we want; anything else is worth reporting.
      if (!(isKerfError(e) && /no segment/.test(e.message))) throw e;
    })));
    if (v.id === 'v0' || v.seg === DEFAULT_SEGMENT) {
      this.v0Alive = false;
      await this.makeDefault(this.active);
    }
  }

  private async dropStandby(): Promise<void> {
    const s = this.standbyV;
    if (!s) return;
    this.standbyV = null;
    await this.release(s);
  }

  /**
   * New requests of clients that name no segment go to `v` on every worker. Version v0 (the
   * pipeline the gateway started with) names no segment, so while it lives the default stays.
   */
  private async makeDefault(v: Version): Promise<void> {
    if (this.v0Alive || v.id === 'v0') return;
    const workers = await this.tiers();
    await Promise.all(workers.map((w) => w.hop.control('default', JSON.stringify({ id: v.seg }), { timeoutMs: 10_000 }).catch(() => {})));
  }

  private async doSwitch(cuts: number[], plan: SwitchReport['plan'] | undefined, setup = false, reroute = false, model?: { prep: Prepared; file: string | null }, toCodecs?: string[]): Promise<SwitchReport> {
    const strategy = this.strategyName;
    const old = this.active;
    const at = new Date().toISOString();
    const t0 = performance.now();
    const codecs = toCodecs ?? old.codecs;
    const recode = !sameCodecs(codecs, old.codecs);
    const base = { strategy, from: [...old.cuts], to: [...cuts], at, ...(plan ? { plan } : {}), ...(setup ? { setup } : {}), ...(recode ? { codecs: { from: [...old.codecs], to: [...codecs] } } : {}) };
    if (!setup && sameCuts(cuts, old.cuts) && !recode) {
      const r: SwitchReport = { ...base, version: old.id, prepared: 'none', downtimeMs: 0, prepareMs: 0, drainMs: 0, releaseMs: 0, durationMs: 0, tiers: [] };
      this.history.push(r);
      return r;
    }
    let report: SwitchReport;
    if (strategy === 'pause-resume') {
      this.gateway.pause(`repartitioning to cuts ${cuts.join(',')}`);
      let next: { v: Version; tiers: TierPrepare[] };
      let drainMs = 0;
      try {
        const d0 = performance.now();
        await old.pipeline.drain();
        drainMs = ms(d0, performance.now());
        await this.release(old);
        next = await this.prepare(cuts, false, false, model, codecs);
      } catch (e) {
        // Bring the old split back rather than stay down.
        const back = await this.prepare(old.cuts, false, false, undefined, old.codecs).catch(() => null);
        this.gateway.resume(back?.v.pipeline);
        if (back) this.active = back.v;
        throw e;
      }
      const downtimeS = this.gateway.resume(next.v.pipeline);
      this.active = next.v;
      const t1 = performance.now();
      await this.makeDefault(next.v);
      report = {
        ...base, version: next.v.id, prepared: 'loaded', downtimeMs: downtimeS * 1000, prepareMs: ms(t0, t1) - drainMs, drainMs,
        releaseMs: 0, durationMs: ms(t0, performance.now()), tiers: next.tiers,
      };
    } else {
      let next: { v: Version; tiers: TierPrepare[] };
      let prepared: SwitchReport['prepared'];
      if (strategy === 'standby' && this.standbyV && sameCuts(this.standbyV.cuts, cuts) && sameCodecs(this.standbyV.codecs, codecs)) {
        next = { v: this.standbyV, tiers: [] };
        this.standbyV = null;
        prepared = 'standby';
      } else {
        const shared = strategy === 'hot-swap';
        next = await this.prepare(cuts, shared, !shared, model, codecs);
        prepared = shared ? 'chunks' : 'loaded';
      }
      const t1 = performance.now();
      const keepOld = strategy === 'standby';
      const { drainS, downtimeS, rerouted } = await this.gateway.switchTo(next.v.pipeline, { keepOld, reroute });
      this.active = next.v;
      const t2 = performance.now();
      await this.makeDefault(next.v);
      if (keepOld) {
        // The old version is the new standby; the one it replaces goes.
        await this.dropStandby();
        this.standbyV = old;
      } else await this.release(old);
      report = {
        ...base, version: next.v.id, prepared, downtimeMs: downtimeS * 1000, prepareMs: ms(t0, t1), drainMs: drainS * 1000,
        releaseMs: ms(t2, performance.now()), durationMs: ms(t0, performance.now()), tiers: next.tiers,
        ...(reroute ? { rerouted } : {}),
      };
    }
    if (plan) this.active.plan = plan;
    this.history.push(report);
    if (this.history.length > 1000) this.history.splice(0, this.history.length - 1000);
    return report;
  }

  status(): PartitionStatus {
    const workers = this.workers ?? [];
    return {
      strategy: this.strategyName, model: this.gateway.name, version: this.active.id, cuts: [...this.active.cuts], codecs: [...this.active.codecs],
      plan: this.active.plan ?? null,
      standby: this.standbyV ? { version: this.standbyV.id, cuts: [...this.standbyV.cuts] } : null,
      tiers: [...(this.local ? [{ name: 'gateway', address: `${this.gateway.address.host}:${this.gateway.address.port}`, part: 0 }] : []),
        ...workers.map((w) => ({ name: w.name, address: w.where, part: w.part }))],
      chunks: this.store?.list() ?? [],
      switching: this.busy > 0,
      history: [...this.history],
      modelVersion: { ...this.modelV },
      previousModel: this.previousV ? { ...this.previousV } : null,
    };
  }

  /** The model version served now. */
  get modelVersion(): ModelVersion { return { ...this.modelV }; }

  private failoverCounters(): NonNullable<Switcher['failoverMetrics']> {
    const r = this.gateway.registry;
    return (this.failoverMetrics ??= {
      total: r.counter('kerf_failovers_total', 'Failovers: the gateway moved onto a new chain of workers after losing a host, by reason.'),
      seconds: r.histogram('kerf_failover_seconds', 'Seconds per failover phase: detect, replan, deploy, switch, total (loss to serving again).'),
      replayed: r.counter('kerf_failover_replayed_total', 'Requests replayed on the new pipeline by failovers.'),
    });
  }

  /**
   * Failover: serve from now on from a new chain of workers (deployed by the controller after
   * a host was lost), replaying on it every request that was in flight on the broken one. The
   * old chain's workers are not touched (they are gone, or the controller stops them).
   */
  retarget(t: RetargetTarget): Promise<SwitchReport> {
    if (this.closed) return Promise.reject(kerfError('KERF_ERR_CLOSED', 'failover: the gateway is closing'));
    const prep = this.gateway.prep;
    let cuts: number[];
    try {
      if (!Array.isArray(t.cuts) || t.cuts.some((c) => typeof c !== 'number')) throw kerfError('KERF_ERR_USAGE', 'failover: "cuts" must be a list of cut ids');
      if (t.next !== null && typeof t.next !== 'string') throw kerfError('KERF_ERR_USAGE', 'failover: "next" must be "host:port" or null');
      if (typeof t.reason !== 'string' || !t.reason) throw kerfError('KERF_ERR_USAGE', 'failover: "reason" must say why');
      cuts = checkCutIds(prep.model, prep.analysis, t.cuts);
      if (t.next !== null) parseAddress(t.next, 'failover next');
      if (t.next === null && cuts.length) throw kerfError('KERF_ERR_USAGE', `failover: cuts ${cuts.join(',')} need a next worker`);
    } catch (e) { return Promise.reject(e); }
    return this.serial(async () => {
      const t0 = performance.now();
      const old = this.active;
      const local = t.local ?? (t.next === null || cuts.length > 0);
      const { localSegment: _l, id: _i, nextSegment: _n, next: _x, cuts: _c, local: _o, ...gopts } = this.gateway.pipelineOptions;
      const id = `v${++this.seq}`;
      // The same cuts: the gateway's own part runs on, nothing to load.
      const reuse = local && sameCuts(cuts, old.cuts) ? (old.ownLocal ?? old.pipeline.adoptLocal()) : null;
      let pipeline: Pipeline;
      try {
        pipeline = await Pipeline.create({
          ...gopts, prep, cuts, id, local, next: t.next, ...(t.nextSegment ? { nextSegment: t.nextSegment } : {}), ...(reuse ? { localSegment: reuse } : {}),
        });
      } catch (e) { if (reuse) old.ownLocal = reuse; throw e; }
      // Not ready: the old version serves on with its part (now the switcher's to release).
      try { await pipeline.waitReady(30_000); } catch (e) { await pipeline.close(); if (reuse) old.ownLocal = reuse; throw e; }
      const t1 = performance.now();
      const held = this.gateway.held;
      const { drainS, downtimeS, rerouted } = await this.gateway.switchTo(pipeline, { reroute: true });
      const t2 = performance.now();
      this.active = { id, cuts, pipeline, seg: t.nextSegment ?? DEFAULT_SEGMENT, ownLocal: reuse, shared: old.shared && reuse !== null, codecs: this.chainCodecs(pipeline, []) };
      this.v0Alive = this.active.seg === DEFAULT_SEGMENT;
      // The old chain: its control connections and its standby go with it.
      const gone = this.workers;
      this.workers = null;
      const standby = this.standbyV;
      this.standbyV = null;
      await Promise.all((gone ?? []).map((w) => w.hop.close()));
      if (standby) { await standby.pipeline.close(); await standby.ownLocal?.close(); }
      if (old.ownLocal !== reuse) await old.ownLocal?.close();
      const f: FailoverRecord = {
        reason: t.reason, lost: [...(t.lost ?? [])], detectMs: t.detectMs ?? 0, replanMs: t.replanMs ?? 0, deployMs: t.deployMs ?? 0,
        switchMs: ms(t0, t2) - drainS * 1000, replayed: held + rerouted, staged: t.staged === true,
      };
      const report: SwitchReport = {
        version: id, strategy: this.strategyName, from: [...old.cuts], to: [...cuts], at: new Date().toISOString(), prepared: t.staged ? 'standby' : 'loaded',
        downtimeMs: downtimeS * 1000, prepareMs: ms(t0, t1), drainMs: drainS * 1000, releaseMs: ms(t2, performance.now()), durationMs: ms(t0, performance.now()),
        tiers: [], rerouted, failover: f,
      };
      const m = this.failoverCounters();
      m.total.inc({ reason: t.reason.split(':')[0]!.slice(0, 40) });
      for (const [phase, v] of [['detect', f.detectMs], ['replan', f.replanMs], ['deploy', f.deployMs], ['switch', f.switchMs], ['total', f.detectMs + f.replanMs + f.deployMs + f.switchMs]] as const) {
        m.seconds.observe(v / 1000, { phase });
      }
      m.replayed.inc(undefined, f.replayed);
      this.pushHistory(report);
      return report;
    });
  }

  private pushHistory(r: SwitchReport): void {
    this.history.push(r);
    if (this.history.length > 1000) this.history.splice(0, this.history.length - 1000);
  }

  /**
   * Roll out another version of the model (same inputs and outputs; any weights or
   * architecture): load it on every tier beside the old one (or, with `stageByStage`, after
   * unloading the old one, admitting nothing meanwhile), flip the gateway in one assignment —
   * requests admitted before finish on the old version, every later one runs on the new — then
   * unload the old version. `back` returns to the version served before.
   */
  rollout(t: RolloutTarget): Promise<SwitchReport> {
    if (this.closed) return Promise.reject(kerfError('KERF_ERR_CLOSED', 'rollout: the gateway is closing'));
    if (t.back && t.model !== undefined) return Promise.reject(kerfError('KERF_ERR_USAGE', 'rollout: give "model" or "back", not both'));
    if (!t.back && (typeof t.model !== 'string' || !t.model)) return Promise.reject(kerfError('KERF_ERR_USAGE', 'rollout: expected {"model": "new.onnx"} or {"back": true}'));
    if (t.beside && t.stageByStage) return Promise.reject(kerfError('KERF_ERR_USAGE', 'rollout: give "beside" or "stageByStage", not both'));
    if (t.back && !this.previousV) return Promise.reject(kerfError('KERF_ERR_USAGE', 'rollout --back: no earlier version to return to (nothing was rolled out)'));
    return this.serial(async () => {
      const t0 = performance.now();
      // Whatever still blocks this loop while the new model is prepared (on a thread) and loaded counts.
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      try { return await this.rolloutNow(t, t0, loop); } finally { loop.disable(); }
    });
  }

  private async rolloutNow(t: RolloutTarget, t0: number, loop: ReturnType<typeof monitorEventLoopDelay>): Promise<SwitchReport> {
    {
      const file = t.back ? this.previousV!.file : t.model!;
      if (!file) throw kerfError('KERF_ERR_USAGE', 'rollout --back: the earlier version has no model file to load again');
      await access(file).catch((e: NodeJS.ErrnoException) => { throw kerfError('KERF_ERR_FILE', `rollout: cannot read ${file} (${e.code ?? e.message})`); });
      const prep = await prepareModelInThread(file, { inputShapes: this.gateway.prep.inputShapes });
      // loadModel hashed the bytes it parsed
      const sha256 = prep.model.sha256 ?? createHash('sha256').update(await readFile(file)).digest('hex');
      if (t.back && this.previousV!.sha256 && sha256 !== this.previousV!.sha256) {
        throw kerfError('KERF_ERR_FILE', `rollout --back: ${file} changed since it was served (sha256 ${sha256.slice(0, 12)}…, was ${this.previousV!.sha256.slice(0, 12)}…)`);
      }
      this.gateway.checkModel(prep);
      const cuts = this.rolloutCuts(prep, t.cuts);
      const from = { ...this.modelV };
      const to: ModelVersion = { name: prep.model.name, sha256, file };
      let rep: SwitchReport;
      let way!: RolloutWay;
      const strategy = this.strategyName;
      try {
        // Versions of the old model cannot serve the new one: the standby and the chunks go.
        await this.dropStandby();
        const model = { prep, file: file === this.ownFile ? null : file };
        way = await this.rolloutWay(prep, cuts, file, t.stageByStage ? 'stage-by-stage' : t.beside ? 'beside' : undefined);
        this.strategyName = way.way === 'stage-by-stage' ? 'pause-resume' : 'on-demand';
        rep = await this.doSwitch(cuts, undefined, true, false, model);
      } finally {
        this.strategyName = strategy === 'hot-swap' || strategy === 'standby' ? 'on-demand' : strategy;
      }
      this.gateway.setModel(prep);
      this.modelFile = file === this.ownFile ? null : file;
      this.previousV = from;
      this.modelV = to;
      const store = this.store;
      this.store = null;
      await store?.close();
      delete rep.setup;
      rep.rollout = { from, to, back: t.back === true, way };
      rep.gatewayStallMs = Math.round(loop.max / 1e4) / 100;
      rep.durationMs = ms(t0, performance.now());
      return rep;
    }
  }

  /**
   * Beside or stage by stage: every tier's process reports its host's memory (worker `info`), and
   * the new version's part there is estimated with the placement's memory model.
   */
  private async rolloutWay(prep: Prepared, cuts: number[], file: string, asked: 'beside' | 'stage-by-stage' | undefined): Promise<RolloutWay> {
    const workers = await this.tiers();
    const fileBytes = (await stat(file)).size;
    const bounds = (part: number): [number | null, number | null] => [part > 0 ? cuts[part - 1]! : null, part < cuts.length ? cuts[part]! : null];
    const tiers: TierMemory[] = [];
    if (this.local) {
      const m = await memoryReport(this.gateway.memoryDecl);
      const [a, b] = bounds(0);
      // its new model is prepared already (in its resident memory now)
      tiers.push({ tier: 'gateway', host: m.host, rssBytes: m.rssBytes, limitBytes: m.limitBytes, availableBytes: m.availableBytes, besideBytes: besideEstimate(prep.analysis, a, workers.length ? b : null, fileBytes, false) });
    }
    await Promise.all(workers.map(async (w) => {
      const info = dec(await w.hop.control('info', '', { timeoutMs: 5000 })) as { memory?: MemoryReport };
      const m = info.memory;
      if (!m) return; // a worker of an older kerf: nothing known, assumed to fit
      const [a, b] = bounds(w.part);
      // A worker slices its part from the whole new model, prepared there (the file's bytes) unless it is its own.
      const prepares = file !== this.ownFile;
      tiers.push({ tier: w.name, host: m.host, rssBytes: m.rssBytes, limitBytes: m.limitBytes, availableBytes: m.availableBytes, besideBytes: besideEstimate(prep.analysis, a, b, fileBytes, prepares) });
    }));
    return chooseRolloutWay(tiers, asked);
  }

  private uploads: string | null = null;
  /**
   * `POST /v1/rollout/model`: the new model's bytes (application/octet-stream, from a machine
   * that is not the gateway's: `kerf rollout --to f --upload`), kept as `<sha256>.onnx` in a
   * folder of this gateway's until it closes; answers the file to roll out.
   */
  private async receiveModel(req: http.IncomingMessage): Promise<{ file: string; sha256: string; bytes: number }> {
    const { mkdtemp, rename, rm } = await import('node:fs/promises');
    const { createWriteStream } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    if (!this.uploads) {
      const dir = await mkdtemp(join(tmpdir(), 'kerf-rollout-'));
      this.uploads = dir;
      this.gateway.onClose(() => rm(dir, { recursive: true, force: true }));
    }
    const tmp = join(this.uploads, `upload-${++this.seq}.tmp`);
    const h = createHash('sha256');
    let n = 0;
    const max = 2e9;
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(tmp);
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n > max) { req.destroy(); out.destroy(); reject(kerfError('KERF_ERR_USAGE', `rollout upload: over ${max / 1e9} GB`)); return; }
        h.update(c);
        if (!out.write(c)) { req.pause(); out.once('drain', () => req.resume()); }
      });
      req.on('end', () => out.end(() => resolve()));
      req.on('error', (e) => { out.destroy(); reject(kerfError('KERF_ERR_USAGE', `rollout upload: ${e.message}`)); });
      out.on('error', (e) => reject(kerfError('KERF_ERR_FILE', `rollout upload: cannot write ${tmp} (${e.message})`)));
    }).catch(async (e: unknown) => { await rm(tmp, { force: true }); throw e; });
    if (n === 0) { await rm(tmp, { force: true }); throw kerfError('KERF_ERR_USAGE', 'rollout upload: the body is empty (send the .onnx file\'s bytes)'); }
    const sha = h.digest('hex');
    const file = join(this.uploads, `${sha}.onnx`);
    await rename(tmp, file);
    return { file, sha256: sha, bytes: n };
  }

  /** The file the workers were started with (they load it without being told). */
  private get ownFile(): string | null { return this.firstFile; }

  /** Cuts of the new version: asked for, else the current ones if the new model has them, else the same share of its blocks. */
  private rolloutCuts(prep: Prepared, asked: number[] | undefined): number[] {
    const n = this.active.cuts.length;
    const check = (c: number[]): number[] => {
      const ids = checkCutIds(prep.model, prep.analysis, c);
      if (ids.length !== n) throw kerfError('KERF_ERR_CUT', `rollout: ${ids.length} cuts for a pipeline of ${n + 1} parts; give ${n}`);
      return ids;
    };
    if (asked) return check(asked);
    try { return check(this.active.cuts); } catch { /* another architecture: place by position */ }
    const mine = blockCuts(this.gateway.prep.analysis, 'single').map((c) => c.id);
    const theirs = blockCuts(prep.analysis, 'single').map((c) => c.id);
    if (theirs.length < n) throw kerfError('KERF_ERR_CUT', `rollout: ${prep.model.source} has ${theirs.length} cut points, the pipeline needs ${n}`);
    const out: number[] = [];
    for (const c of this.active.cuts) {
      const frac = (Math.max(0, mine.indexOf(c)) + 1) / (mine.length + 1);
      let k = Math.min(theirs.length - 1, Math.max(0, Math.round(frac * (theirs.length + 1)) - 1));
      if (out.length && theirs.indexOf(out[out.length - 1]!) >= k) k = theirs.indexOf(out[out.length - 1]!) + 1;
      out.push(theirs[Math.min(k, theirs.length - 1)]!);
    }
    return check([...new Set(out)]);
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const reply = (status: number, body: unknown): void => sendJson(req, res, status, body);
    const failWith = (e: unknown): void => {
      const code = isKerfError(e) ? e.code : 'KERF_ERR_REMOTE';
      const status = errorStatus(e) ?? (isKerfError(e) && ['KERF_ERR_CUT', 'KERF_ERR_PLAN', 'KERF_ERR_USAGE', 'KERF_ERR_SHAPE', 'KERF_ERR_FILE'].includes(e.code) ? 400
        : code === 'KERF_ERR_CLOSED' ? 503 : 500);
      reply(status, { error: isKerfError(e) ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`, code });
    };
    if (path === '/v1/partition' && (req.method === 'GET' || req.method === 'HEAD')) return reply(200, this.status());
    // Reading is open; everything that changes the pipeline (repartition, strategy, warm,
    // failover, rollout) needs the gateway's control token.
    if (req.method !== 'GET' && req.method !== 'HEAD' && !authorised(req, this.gateway.controlToken)) {
      req.resume();
      return reply(401, { error: `${req.method} ${path}: wrong or missing token (Authorization: Bearer TOKEN, the pipeline's token: kerf up prints it in the dashboard link, or set KERF_TOKEN)`, code: 'KERF_ERR_AUTH' });
    }
    if (path === '/v1/rollout/model' && req.method === 'POST') { this.receiveModel(req).then((r) => reply(200, r), failWith); return; }
    if (path === '/v1/rollout' && req.method === 'GET') return reply(200, { modelVersion: this.modelV, previousModel: this.previousV });
    const body = (fn: (doc: Record<string, unknown>) => Promise<unknown>): void => {
      readBody(req, { maxBytes: 64 << 20, what: 'partition' }).then((raw) => {
        let doc: unknown;
        try { doc = JSON.parse(raw.toString('utf8')); } catch { return failWith(kerfError('KERF_ERR_USAGE', 'partition: the body is not JSON')); }
        if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return failWith(kerfError('KERF_ERR_USAGE', 'partition: expected a JSON object'));
        fn(doc as Record<string, unknown>).then((r) => reply(200, r), failWith);
      }, failWith);
    };
    if (path === '/v1/partition' && req.method === 'POST') {
      return body(async (doc) => {
        for (const k of Object.keys(doc)) {
          if (!['cuts', 'plan', 'reroute', 'codecs'].includes(k)) throw kerfError('KERF_ERR_USAGE', `partition: unknown field '${k}' (known: cuts, plan, reroute, codecs)`, { field: k });
        }
        if (doc.reroute !== undefined && typeof doc.reroute !== 'boolean') {
          throw kerfError('KERF_ERR_USAGE', `partition: field 'reroute' must be true or false, got ${JSON.stringify(doc.reroute)}`, { field: 'reroute' });
        }
        return this.partition({
        ...(doc.cuts !== undefined ? { cuts: doc.cuts as number[] } : {}), ...(doc.plan !== undefined ? { plan: doc.plan as PlanDocument } : {}),
        ...(doc.reroute === true ? { reroute: true } : {}), ...(doc.codecs !== undefined ? { codecs: doc.codecs as string[] } : {}),
        });
      });
    }
    if (path === '/v1/partition/strategy' && (req.method === 'PUT' || req.method === 'POST')) {
      return body(async (doc) => this.setStrategy(doc.strategy as SwitchStrategy, Array.isArray(doc.standby) ? { standby: doc.standby as number[] } : {}));
    }
    if (path === '/v1/partition/strategy' && req.method === 'GET') return reply(200, { strategy: this.strategyName });
    if (path === '/v1/rollout' && req.method === 'POST') {
      return body(async (doc) => {
        for (const k of Object.keys(doc)) if (!['model', 'back', 'cuts', 'stageByStage', 'beside'].includes(k)) throw kerfError('KERF_ERR_USAGE', `rollout: unknown field "${k}" (model, back, cuts, stageByStage, beside)`);
        if (doc.cuts !== undefined && (!Array.isArray(doc.cuts) || doc.cuts.some((c) => typeof c !== 'number'))) throw kerfError('KERF_ERR_USAGE', 'rollout: "cuts" must be a list of cut ids');
        return this.rollout({
          ...(doc.model !== undefined ? { model: doc.model as string } : {}), ...(doc.back === true ? { back: true } : {}),
          ...(doc.cuts !== undefined ? { cuts: doc.cuts as number[] } : {}), ...(doc.stageByStage === true ? { stageByStage: true } : {}),
          ...(doc.beside === true ? { beside: true } : {}),
        });
      });
    }
    if (path === '/v1/partition/failover' && req.method === 'POST') {
      return body(async (doc) => this.retarget(doc as unknown as RetargetTarget));
    }
    if (path === '/v1/partition/warm' && req.method === 'POST') {
      return body(async (doc) => {
        const c = doc.candidates;
        if (!Array.isArray(c) || c.some((x) => !Array.isArray(x))) throw kerfError('KERF_ERR_USAGE', 'partition warm: expected {"candidates": [[cut ids…], …]}');
        return this.warm(c as number[][]);
      });
    }
    reply(405, { error: `${req.method} not allowed on ${path} (GET/POST /v1/partition, PUT /v1/partition/strategy, POST /v1/partition/warm, POST /v1/partition/failover, GET/POST /v1/rollout)`, code: 'KERF_ERR_USAGE' });
  }

  /** Release the standby, the tiers' control connections and the gateway's chunks. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.catch(() => {});
    const s = this.standbyV;
    this.standbyV = null;
    if (s) { await s.pipeline.close(); await s.ownLocal?.close(); }
    await Promise.all((this.workers ?? []).map((w) => w.hop.close()));
    // The active version's pipeline is the gateway's to close; its chunks go with the store.
    await this.store?.close();
  }
}

/** Put `w`'s part of `cuts` into its host's part cache unless it is there already; the file to load it from. */
async function shipPart(w: WorkerTier, prep: Prepared, cuts: number[], name: string): Promise<{ file: string; sha256: string; bytes: number; sent: number }> {
  // Named as the gateway names the model, as a deployment names the parts it stages (src/cluster/deploy.ts):
  // the same version's parts have the same bytes, so a host that has them is sent nothing.
  const bytes = partBytes({ ...prep, model: { ...prep.model, name } }, cuts, w.part, w.part);
  const sha = sha256Hex(bytes);
  const have = dec(await w.hop.control('part-have', JSON.stringify({ sha256: sha }), { timeoutMs: 10_000 })) as { have: boolean; file: string };
  if (have.have) return { file: have.file, sha256: sha, bytes: bytes.length, sent: 0 };
  let file = have.file;
  for (let off = 0; off < bytes.length || off === 0; off += PART_CHUNK_BYTES) {
    const chunk = bytes.subarray(off, off + PART_CHUNK_BYTES);
    const last = off + PART_CHUNK_BYTES >= bytes.length;
    const r = dec(await w.hop.control('part-put', JSON.stringify({ sha256: sha, offset: off, data: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('base64'), last }), { timeoutMs: 120_000 })) as { file: string };
    file = r.file;
    if (last) break;
  }
  return { file, sha256: sha, bytes: bytes.length, sent: bytes.length };
}

/** A load's fields naming another model file: its hash and its tensors' shapes (the worker need not find them again). */
function modelLoad(prep: Prepared, file: string): { model: string; sha256?: string; tensors: [string, string, number[]][] } {
  return {
    model: file, ...(prep.model.sha256 ? { sha256: prep.model.sha256 } : {}),
    tensors: [...prep.analysis.tensors].map(([n, t]) => [n, t.dtype, [...t.dims]]),
  };
}

/** The request carries `Authorization: Bearer <token>` (always true when no token is set). */
function authorised(req: http.IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const a = createHash('sha256').update(m[1]!).digest(), b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}
