/**
 * A worker: one tier of a split model. It holds one or more segments (by id; requests name
 * theirs in meta `seg`, else the default one), runs each request's segment with onnxruntime
 * behind a bounded queue (shortest expected compute first), and forwards outputs ∪ carry to
 * the segment's next tier — answering back up the chain — or answers itself when it is the
 * last tier. Control frames load and
 * unload segments without a restart, so a new split can be prepared beside the running one.
 */
import type * as http from 'node:http';
import { hostname } from 'node:os';
import { isKerfError, kerfError, type KerfError } from '../errors.js';
import { prepareModel, type Prepared } from '../engine/prepare.js';
import { prepareModelInThread } from '../engine/prepare-thread.js';
import type { DType } from '../graph/dtypes.js';
import { memoryReport, type HostMemoryDecl } from './rollout-memory.js';
import { PartCache } from './part-cache.js';
import { FrameServer, type IncomingRequest, type Reply } from './conn.js';
import type { Meta, WireTensor } from './frames.js';
import { Segment, segmentBounds, toWire, type SegmentRunner, type SegmentSpec } from './segment.js';
import { prng, randomTensor } from '../engine/shapes.js';
import { ChunkStore, type ComposeReport } from './switch-chunks.js';
import { ThreadSegment } from './thread-segment.js';
import { WorkQueue } from './queue.js';
import { Registry, processCpuSeconds, serveMetrics, type Counter, type Gauge, type Histogram } from './metrics.js';
import { parseLinkProbe, probeNextHop, type SinkReply } from './linkprobe.js';
import { NextHop, fmtAddress, parseAddress, type HostPort } from './nexthop.js';
import { parseHopCodec } from '../codec/index.js';

/** Meta key naming the segment a request is for. */
export const SEGMENT_META = 'seg';
/** Meta key prefix of per-stage timings a tier adds to a response: `t.<stage>` = "queueS,computeS". */
export const STAGE_META_PREFIX = 't.';
/** Meta key prefix of the seconds a tier waited on its next hop: `d.<stage>` = "downstreamS". */
export const DOWNSTREAM_META_PREFIX = 'd.';
/** Id of the segment a worker starts with. */
export const DEFAULT_SEGMENT = 'main';

export interface WorkerOptions {
  host?: string;
  /** its host's part cache (the agent's --cache): a rollout across hosts sends parts into it */
  partCache?: string;
  /** its host's name and declared memory, reported in `info` (a rollout decides from them whether a new version fits beside the old) */
  memory?: HostMemoryDecl;
  /** 0 or absent: any free port (see `address`) */
  port?: number;
  /** the pipeline's shared secret */
  token: string;
  /** model file, or a model already prepared */
  model: string | Prepared;
  inputShapes?: Record<string, number[]>;
  /** stage name in metrics and response meta (default "worker") */
  name?: string;
  /** the segment to start with (id "main") */
  segment: SegmentSpec;
  /** compose segments from shared chunk sessions (hot-swap), the first one too */
  shared?: boolean;
  /** where to forward outputs ∪ carry; absent: this is the last tier */
  next?: HostPort | string | null;
  /** segment id to ask the next tier for (default: its default) */
  nextSegment?: string;
  /** codec of the hop to the next tier (default 'none'; docs/codec.md) */
  nextCodec?: string;
  /** codecs this worker decodes in requests: '*' (default: all) or a list */
  codecs?: '*' | readonly string[];
  /** seconds the segment took when profiled: enables the load factor */
  profiledS?: number;
  /** onnxruntime intra-op threads per segment (default 1) */
  threads?: number;
  /** requests that may wait for compute before new ones are refused (default 64) */
  queueLimit?: number;
  /** segments run at once (default 1) */
  concurrency?: number;
  /** serve Prometheus /metrics here */
  metrics?: HostPort | string | null;
  maxFrameBytes?: number;
  /** TLS: `server` for the frames it accepts (key, cert; ca + requestCert for mTLS), `client`
   * for its hop to the next tier (ca to verify it, cert/key to present) */
  tls?: { server?: import('node:tls').TlsOptions; client?: boolean | import('node:tls').ConnectionOptions };
  /** drop the prepared whole model once a segment is sliced and loaded (a worker then holds
   * only its segment's session: resnet18's last tier 220 → 155 MB RSS); a later `load`
   * prepares the model again from the file. Only for `model` given as a file. */
  releaseModel?: boolean;
  /** when `model` is only this worker's part: the whole model's file, which loads of other
   * segments use (asked of the parent agent over IPC when absent; see cluster/host.ts) */
  wholeModel?: string;
  /** concrete input shapes of the whole model (the part's own are concrete) */
  wholeInputShapes?: Record<string, number[]>;
}

/** A segment loaded on a worker, with where its results go. */
export interface LoadedSegment {
  id: string;
  segment: SegmentRunner;
  spec: SegmentSpec;
  next: NextHop | null;
  nextSegment: string | undefined;
  profiledS: number | undefined;
  /** exponentially weighted mean compute seconds */
  computeEwmaS: number;
}

/** Body of the `load` control operation. */
export interface LoadRequest extends SegmentSpec {
  id: string;
  next?: string | null;
  nextSegment?: string;
  /** codec of the hop to `next` (default 'none'): a segment with another codec uses its own connection */
  nextCodec?: string;
  profiledS?: number;
  /** make it the segment of requests that name none */
  makeDefault?: boolean;
  /** compose it from the worker's shared chunk sessions (hot-swap) instead of loading a session of its own */
  shared?: boolean;
  /** load and run its session on a thread of its own (loading at low priority, warmed up before it
   * answers), so loading it never stalls the requests this worker is serving (on-demand switching) */
  thread?: boolean;
  /** slice it from this model file (on the worker's machine) instead of the worker's own model: a
   * rollout's new version; not with `shared` (chunk sessions are of the worker's own model) */
  model?: string;
  /** with `model`: its sha256 as the gateway read it (a file that differs here is refused) */
  sha256?: string;
  /** with `model`: every tensor's [name, dtype, dims] as the gateway's preparation of it found
   * them, so this worker need not run the whole model again to read them */
  tensors?: [string, string, number[]][];
}

/** What `load` answers. */
export interface LoadResult {
  id: string;
  loadS: number;
  inputs: string[];
  outputs: string[];
  /** with `shared`: chunks loaded and reused */
  chunks?: ComposeReport;
}

/** Body of the `probe` control operation. */
export interface ProbeRequest {
  /** the worker to probe, by name; a worker of another name passes the probe to its next tier
   * (absent: this worker) */
  tier?: string;
  /** ranges of the model as [start, end] cut ids (null: the model's inputs / outputs), in order
   * of preference: the worker runs the first it holds loaded (a segment's or a cached chunk's) */
  ranges: [number | null, number | null][];
}

/** What `probe` answers: the range run and the seconds its run took (queueing excluded), or why none ran. */
export interface ProbeResult {
  tier: string;
  start?: number | null;
  end?: number | null;
  seconds?: number;
  /** set when nothing ran: none of the ranges is loaded here, or the run failed */
  none?: string;
}

const enc = (o: unknown): string => JSON.stringify(o);

/**
 * The whole model's file of a worker that holds only its part: there already, or asked of the
 * parent (its host's agent fetches it by hash and writes it there, or `FILE.error` saying why).
 */
async function wholeModelFile(file: string, name: string, timeoutMs = 300_000): Promise<string> {
  const { existsSync, readFileSync } = await import('node:fs');
  if (existsSync(file)) return file;
  if (!process.send) throw kerfError('KERF_ERR_FILE', `${name}: holds only its part, and the whole model ${file} is not here (no agent to fetch it)`);
  process.send({ event: 'need-model', file });
  for (const end = Date.now() + timeoutMs; Date.now() < end;) {
    if (existsSync(file)) return file;
    if (existsSync(`${file}.error`)) throw kerfError('KERF_ERR_FILE', `${name}: fetching the whole model failed: ${readFileSync(`${file}.error`, 'utf8').trim()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw kerfError('KERF_ERR_TIMEOUT', `${name}: the whole model did not arrive within ${timeoutMs / 1000} s`);
}

function parseJson<T>(body: Uint8Array, op: string): T {
  if (body.length === 0) return {} as T;
  try { return JSON.parse(new TextDecoder().decode(body)) as T; } catch {
    throw kerfError('KERF_ERR_PROTOCOL', `control '${op}': body is not JSON`);
  }
}

interface WorkerMetrics {
  registry: Registry;
  requests: Counter;
  stage: Histogram;
  bytesSent: Counter;
  queueDepth: Gauge;
  inFlight: Gauge;
  loadFactor: Gauge;
}

/** A running worker. Create with `Worker.start`; `close()` is idempotent. */
export class Worker {
  readonly segments = new Map<string, LoadedSegment>();
  private readonly hops = new Map<string, NextHop>();
  private readonly queue: WorkQueue;
  private server!: FrameServer;
  private metricsServer: http.Server | null = null;
  private closing: Promise<void> | null = null;
  private inflight = 0;
  readonly metrics: WorkerMetrics;
  readonly name: string;
  defaultSegment = DEFAULT_SEGMENT;
  /** where requests arrive */
  address!: HostPort;
  /** where /metrics is served, if asked for */
  metricsAddress: HostPort | null = null;
  /** chunk sessions shared by segments loaded with `shared` (created on first use) */
  store: ChunkStore | null = null;

  /** the prepared whole model; null after a load with `releaseModel` */
  private prepared: Prepared | null;
  readonly modelName: string;

  private constructor(prep: Prepared, private readonly opts: WorkerOptions) {
    this.prepared = prep;
    this.modelName = prep.model.name;
    this.name = opts.name ?? 'worker';
    this.queue = new WorkQueue(opts.queueLimit ?? 64, opts.concurrency ?? 1, `worker ${this.name} queue`);
    const registry = new Registry();
    this.metrics = {
      registry,
      requests: registry.counter('kerf_worker_requests_total', 'Requests handled, by segment and outcome (ok or the error code).'),
      stage: registry.histogram('kerf_worker_stage_seconds', 'Seconds per stage of a request: queue, compute, downstream, total.'),
      bytesSent: registry.counter('kerf_worker_bytes_sent_total', 'Bytes written: to the next tier (next) and back to the caller (reply, tensor data).'),
      queueDepth: registry.gauge('kerf_worker_queue_depth', 'Requests waiting for compute.'),
      inFlight: registry.gauge('kerf_worker_in_flight', 'Requests received and not yet answered.'),
      loadFactor: registry.gauge('kerf_worker_load_factor', 'Observed compute time divided by the profiled time, per segment.'),
    };
    this.metrics.queueDepth.set(() => this.queue.depth);
    this.metrics.inFlight.set(() => this.inflight);
    this.metrics.bytesSent.inc({ to: 'next' }, 0);
    registry.gauge('kerf_worker_next_bytes_total', 'Bytes written to next tiers, as counted by their connections.')
      .set(() => [...this.hops.values()].reduce((a, h) => a + h.bytesSent, 0));
    // The process's, as Prometheus' process_* series (one name per role, so the gateway's merged /metrics stays valid).
    registry.counter('kerf_worker_cpu_seconds_total', 'CPU seconds (user + system) the worker process has used.').track(processCpuSeconds);
    registry.gauge('kerf_worker_resident_bytes', 'Resident memory of the worker process, bytes.').set(() => process.memoryUsage.rss());
  }

  /** Load the model and the first segment, listen, and start connecting to the next tier. */
  static async start(opts: WorkerOptions): Promise<Worker> {
    const prep = typeof opts.model === 'string'
      ? await prepareModel(opts.model, opts.inputShapes ? { inputShapes: opts.inputShapes } : {})
      : opts.model;
    const w = new Worker(prep, opts);
    try {
      await w.load({
        id: DEFAULT_SEGMENT, ...opts.segment, ...(opts.shared ? { shared: true } : {}), next: opts.next ? fmtAddress(parseAddress(opts.next, 'next')) : null,
        ...(opts.nextSegment ? { nextSegment: opts.nextSegment } : {}), ...(opts.profiledS !== undefined ? { profiledS: opts.profiledS } : {}),
        ...(opts.nextCodec ? { nextCodec: opts.nextCodec } : {}),
      });
      w.server = await FrameServer.listen({
        host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, token: opts.token,
        info: `worker ${w.name} ${w.modelName}`,
        ...(opts.maxFrameBytes ? { maxFrameBytes: opts.maxFrameBytes } : {}),
        ...(opts.codecs ? { codecs: opts.codecs } : {}), ...(opts.tls?.server ? { tls: opts.tls.server } : {}),
        onRequest: (req) => w.handle(req),
        onControl: (op, body) => w.control(op, body),
      });
      w.server.on('peer-error', () => { /* refused peers are the server's business; it serves on */ });
      w.address = w.server.address;
      if (opts.metrics) {
        const m = parseAddress(opts.metrics, 'metrics');
        w.metricsServer = await serveMetrics(w.metrics.registry, m.host, m.port);
        const a = w.metricsServer.address() as { address: string; port: number };
        w.metricsAddress = { host: a.address, port: a.port };
      }
    } catch (e) {
      await w.close();
      throw e;
    }
    return w;
  }

  private hop(where: string, codec = 'none'): NextHop {
    const key = `${where} ${codec}`;
    let h = this.hops.get(key);
    if (!h || h.closed) {
      h = NextHop.open(parseAddress(where, 'next'), { token: this.opts.token, info: `worker ${this.name}`, ...(codec !== 'none' ? { codec } : {}), ...(this.opts.tls?.client ? { tls: this.opts.tls.client } : {}) });
      h.on('down', (why: KerfError) => {
        // Requests still waiting for compute cannot be forwarded: fail them now, not later.
        this.queue.rejectWhere((tag) => (tag as LoadedSegment).next === h,
          kerfError('KERF_ERR_UPSTREAM', `${this.name}: next tier ${where} went away (${why.message})`));
      });
      this.hops.set(key, h);
    }
    return h;
  }

  /** Load a segment under `id` (replacing one of the same id once loaded). */
  async load(r: LoadRequest): Promise<LoadResult> {
    if (this.closing) throw kerfError('KERF_ERR_CLOSED', `worker ${this.name} is closing`);
    if (typeof r.id !== 'string' || !r.id) throw kerfError('KERF_ERR_USAGE', `load: segment id must be a non-empty string`);
    const spec: SegmentSpec = {
      ...(r.cuts ? { cuts: r.cuts } : {}), ...(r.blocks ? { blocks: r.blocks } : {}), ...(r.granularity ? { granularity: r.granularity } : {}),
    };
    let segment: SegmentRunner;
    let chunks: ComposeReport | undefined;
    if (r.model !== undefined && (typeof r.model !== 'string' || !r.model)) throw kerfError('KERF_ERR_USAGE', 'load: "model" must be a model file path');
    if (r.model !== undefined && r.shared) throw kerfError('KERF_ERR_USAGE', `load: "shared" segments come from ${this.name}'s own model, not ${r.model}`);
    if (r.sha256 !== undefined && (typeof r.sha256 !== 'string' || r.model === undefined)) throw kerfError('KERF_ERR_USAGE', 'load: "sha256" must be a hex string, and goes with "model"');
    if (r.tensors !== undefined && (!Array.isArray(r.tensors) || r.model === undefined || r.tensors.some((t) => !Array.isArray(t) || typeof t[0] !== 'string' || typeof t[1] !== 'string' || !Array.isArray(t[2])))) {
      throw kerfError('KERF_ERR_USAGE', 'load: "tensors" must be [[name, dtype, dims], …], with "model"');
    }
    // (a part's worker starts on its part; later segments are the whole model's)
    const prep = r.model !== undefined ? await this.otherModel(r.model, r.tensors)
      : this.opts.wholeModel && this.startedOnPart ? await this.otherModel(await wholeModelFile(this.opts.wholeModel, this.name), undefined, this.opts.wholeInputShapes) : await this.prep();
    if (r.sha256 !== undefined && prep.model.sha256 !== r.sha256) {
      throw kerfError('KERF_ERR_FILE', `load: ${r.model} on ${this.name} is not the gateway's (sha256 ${String(prep.model.sha256).slice(0, 12)}…, the gateway read ${r.sha256.slice(0, 12)}…)`);
    }
    if (r.shared) {
      const b = segmentBounds(prep, spec);
      this.store ??= new ChunkStore(prep, { threads: this.opts.threads ?? 1, label: this.name });
      ({ segment, report: chunks } = await this.store.compose(b.start, b.end, `${this.name} ${r.id}`));
    } else if (r.thread) {
      segment = await ThreadSegment.create(prep, spec, { threads: this.opts.threads ?? 1, label: `${this.name} ${r.id}` });
    } else {
      segment = await Segment.create(prep, spec, { threads: this.opts.threads ?? 1, label: `${this.name} ${r.id}` });
    }
    // The whole model's parsed graph and weights (tens to hundreds of MB) are not needed to
    // run the session: let them go unless asked to keep them (chunk stores keep their own).
    if (this.opts.releaseModel && typeof this.opts.model === 'string') { this.prepared = null; this.other = null; }
    const loaded: LoadedSegment = {
      id: r.id, segment, spec, next: r.next ? this.hop(r.next, r.nextCodec === undefined ? 'none' : parseHopCodec(r.nextCodec, 'load: nextCodec').name) : null, nextSegment: r.nextSegment,
      profiledS: r.profiledS, computeEwmaS: NaN,
    };
    const old = this.segments.get(r.id);
    this.segments.set(r.id, loaded);
    this.startedOnPart = true;
    if (r.makeDefault) this.defaultSegment = r.id;
    if (r.profiledS) this.metrics.loadFactor.set(() => loaded.computeEwmaS / r.profiledS!, { segment: r.id });
    // The replaced session may still run requests that started on it; release it once they end.
    if (old) void this.retire(old);
    return {
      id: r.id, loadS: segment.loadS, inputs: [...segment.accepts.keys()], outputs: [...segment.outputs, ...segment.carry].map((t) => t.name),
      ...(chunks ? { chunks } : {}),
    };
  }

  /** set once the first segment is loaded: with `wholeModel`, later loads are the whole model's */
  private startedOnPart = false;
  private partCacheV: PartCache | null | undefined;
  private get partCache(): PartCache | null { return (this.partCacheV ??= this.opts.partCache ? new PartCache(this.opts.partCache) : null); }
  private parts(): PartCache {
    if (!this.partCache) throw kerfError('KERF_ERR_USAGE', `${this.name} has no part cache (started without --part-cache, not by an agent)`);
    return this.partCache;
  }

  /** the last model file a load named (a rollout's version, or the whole model of a part), prepared once */
  private other: { file: string; prep: Promise<Prepared> } | null = null;
  private async otherModel(file: string, tensors?: [string, string, number[]][], inputShapes = this.opts.inputShapes): Promise<Prepared> {
    if (typeof this.opts.model === 'string' && file === this.opts.model) return this.prep();
    if (this.other?.file !== file) {
      // Off the serving thread (parsing is tens of ms), and with the tensors' shapes the gateway
      // found, not running the whole model again to find them (100+ ms of CPU, and its memory).
      const prep = prepareModelInThread(file, {
        ...(inputShapes ? { inputShapes } : {}),
        ...(tensors ? { tensors: new Map(tensors.map(([n, dtype, dims]) => [n, { dtype: dtype as DType, dims }])) } : {}),
      });
      this.other = { file, prep };
      prep.catch(() => { if (this.other?.prep === prep) this.other = null; });
    }
    return this.other.prep;
  }

  private preparing: Promise<Prepared> | null = null;
  /** The prepared whole model, prepared again from the file when it was released. */
  private async prep(): Promise<Prepared> {
    if (this.prepared) return this.prepared;
    const file = this.opts.model as string;
    this.preparing ??= prepareModel(file, this.opts.inputShapes ? { inputShapes: this.opts.inputShapes } : {}).finally(() => { this.preparing = null; });
    return (this.prepared = await this.preparing);
  }

  /** Drop a segment (requests already running on it finish). */
  async unload(id: string): Promise<void> {
    const l = this.segments.get(id);
    if (!l) throw kerfError('KERF_ERR_USAGE', `unload: no segment '${id}' on ${this.name}`);
    this.segments.delete(id);
    this.metrics.loadFactor.delete({ segment: id });
    // Versions come and go with every switch: their series would pile up without bound.
    this.metrics.requests.deleteWhere((l) => l.segment === id);
    await this.retire(l);
  }

  private async retire(l: LoadedSegment): Promise<void> {
    // Requests already on it finish first (bounded: each either completes or fails).
    for (let waited = 0; this.busyWith(l) && waited < 60_000; waited += 5) await new Promise((r) => setTimeout(r, 5));
    await l.segment.close();
  }

  private readonly using = new Map<LoadedSegment, number>();
  private busyWith(l: LoadedSegment): boolean { return (this.using.get(l) ?? 0) > 0; }

  /** Ready when every next tier is connected and, asked in turn, ready. */
  async ready(): Promise<{ ready: boolean; name: string; reason?: string }> {
    if (this.closing) return { ready: false, name: this.name, reason: 'closing' };
    const hops = new Set([...this.segments.values()].map((l) => l.next).filter((h): h is NextHop => h !== null));
    for (const h of hops) {
      if (!h.connected) {
        const e = h.lastError;
        return { ready: false, name: this.name, reason: e?.code === 'KERF_ERR_AUTH' ? `next tier ${h.where} refused ${this.name}: ${e.message}` : `next tier ${h.where} unreachable${e ? ` (${e.message})` : ''}` };
      }
      try {
        const r = JSON.parse(new TextDecoder().decode(await h.control('ready', '', { timeoutMs: 1000 }))) as { ready: boolean; reason?: string; name?: string };
        if (!r.ready) return { ready: false, name: this.name, reason: `${r.name ?? h.where}: ${r.reason ?? 'not ready'}` };
      } catch (e) {
        return { ready: false, name: this.name, reason: `next tier ${h.where}: ${(e as Error).message}` };
      }
    }
    return { ready: true, name: this.name };
  }

  private info(): unknown {
    return {
      name: this.name, model: this.modelName, default: this.defaultSegment, queue: this.queue.depth, inFlight: this.inflight, pid: process.pid,
      // the process's, for the gateway's dashboard (CPU share from two readings)
      host: this.opts.memory?.host ?? hostname(), cpuSeconds: processCpuSeconds(), rssBytes: process.memoryUsage.rss(),
      chunks: this.store ? this.store.list() : [],
      segments: [...this.segments.values()].map((l) => ({
        id: l.id, spec: l.spec, start: l.segment.bounds.start, end: l.segment.bounds.end,
        inputs: [...l.segment.accepts.keys()], outputs: [...l.segment.outputs, ...l.segment.carry].map((t) => t.name),
        next: l.next?.where ?? null, nextSegment: l.nextSegment ?? null, ...(l.next && l.next.codec !== 'none' ? { nextCodec: l.next.codec } : {}), profiledS: l.profiledS ?? null,
        computeS: Number.isFinite(l.computeEwmaS) ? l.computeEwmaS : null,
      })),
    };
  }

  private async control(op: string, body: Uint8Array): Promise<string> {
    switch (op) {
      case 'ready': return enc(await this.ready());
      case 'info': return enc({ ...(this.info() as object), memory: await memoryReport(this.opts.memory), partCache: this.partCache !== null });
      case 'part-have': return enc(this.parts().have(parseJson<{ sha256: string }>(body, op).sha256));
      case 'part-put': {
        const r = parseJson<{ sha256: string; offset: number; data: string; last?: boolean }>(body, op);
        if (typeof r.sha256 !== 'string' || !Number.isInteger(r.offset) || typeof r.data !== 'string') throw kerfError('KERF_ERR_USAGE', 'part-put: expected {sha256, offset, data (base64), last}');
        return enc(await this.parts().put(r.sha256, r.offset, Buffer.from(r.data, 'base64'), r.last === true));
      }
      case 'metrics': return this.metrics.registry.render();
      case 'load': return enc(await this.load(parseJson<LoadRequest>(body, op)));
      case 'unload': { const { id } = parseJson<{ id: string }>(body, op); await this.unload(id); return enc({ id }); }
      case 'probe': return enc(await this.probe(parseJson<ProbeRequest>(body, op)));
      // link probes (serve/linkprobe.ts): take a probe's bytes; probe the hop `hop` tiers further down
      case 'sink': return enc({ bytes: body.length, name: this.name, next: !!this.segments.get(this.defaultSegment)?.next } satisfies SinkReply);
      case 'link': {
        const r = parseLinkProbe(body);
        const next = this.segments.get(this.defaultSegment)?.next;
        if (!next) throw kerfError('KERF_ERR_USAGE', `link: ${this.name} is the last tier (no hop after it)`);
        if (r.hop > 0) return new TextDecoder().decode(await next.connection!.control('link', enc({ hop: r.hop - 1, bytes: r.bytes }), { timeoutMs: 30_000 }));
        return enc(await probeNextHop(next, this.name, r.bytes));
      }
      case 'default': {
        const { id } = parseJson<{ id: string }>(body, op);
        if (!this.segments.has(id)) throw kerfError('KERF_ERR_USAGE', `default: no segment '${id}' on ${this.name}`);
        this.defaultSegment = id;
        return enc({ id });
      }
      default: throw kerfError('KERF_ERR_USAGE', `unknown control operation '${op}' (ready, info, metrics, load, unload, default, probe, sink, link)`);
    }
  }

  /**
   * Run one of `r.ranges` that is loaded here on random inputs, in turn with requests (through
   * the queue, after shorter work), and report its run time: a tier whose own segment is too
   * small to tell its load (one tiny block) is measured this way. Loads nothing.
   */
  async probe(r: ProbeRequest): Promise<ProbeResult> {
    if (!r || typeof r !== 'object') throw kerfError('KERF_ERR_USAGE', 'probe: body must be {tier, ranges: [[start, end], …]}');
    if (r.tier !== undefined && r.tier !== this.name) {
      const l = this.segments.get(this.defaultSegment);
      if (!l?.next) throw kerfError('KERF_ERR_USAGE', `probe: no tier '${r.tier}' after ${this.name} (it is the last tier)`);
      return JSON.parse(new TextDecoder().decode(await l.next.control('probe', enc(r), { timeoutMs: 10_000 }))) as ProbeResult;
    }
    if (!Array.isArray(r.ranges)) throw kerfError('KERF_ERR_USAGE', 'probe: body needs ranges: [[start, end], …] of cut ids (null: inputs / outputs)');
    for (const range of r.ranges) {
      if (!Array.isArray(range) || range.length !== 2) throw kerfError('KERF_ERR_USAGE', `probe: range ${JSON.stringify(range)} is not [start, end]`);
      const [start, end] = range;
      const runner: SegmentRunner | null = [...this.segments.values()].find((l) => l.segment.bounds.start === start && l.segment.bounds.end === end && !l.segment.closed)?.segment
        ?? this.store?.peek(start, end) ?? null;
      if (!runner) continue;
      const rnd = prng(11);
      const feeds = new Map<string, WireTensor>();
      for (const t of runner.accepts.values()) feeds.set(t.name, toWire(t.name, randomTensor(t.dtype, t.shape, rnd)));
      try {
        const seconds = await this.queue.push(async () => {
          const t0 = performance.now();
          await runner.run(feeds);
          return (performance.now() - t0) / 1000;
        }, { costS: PROBE_COST_S });
        return { tier: this.name, start, end, seconds };
      } catch (e) {
        return { tier: this.name, start, end, none: `the run failed: ${(e as Error).message}` };
      }
    }
    return { tier: this.name, none: `none of the ${r.ranges.length} ranges is loaded on ${this.name}` };
  }

  private async handle(req: IncomingRequest): Promise<Reply> {
    const t0 = performance.now();
    const id = req.meta[SEGMENT_META] ?? this.defaultSegment;
    const l = this.segments.get(id);
    if (!l) {
      this.metrics.requests.inc({ segment: id, outcome: 'KERF_ERR_USAGE' });
      throw kerfError('KERF_ERR_USAGE', `${this.name}: no segment '${id}' loaded (have ${[...this.segments.keys()].join(', ')})`);
    }
    this.inflight++;
    this.using.set(l, (this.using.get(l) ?? 0) + 1);
    try {
      const byName = l.segment.check(req.tensors);
      let queueS = 0, computeS = 0;
      const out = await this.queue.push(async (timing) => {
        queueS = timing.waitS;
        const c0 = performance.now();
        const r = await l.segment.run(byName);
        computeS = (performance.now() - c0) / 1000;
        return r;
      }, { tag: l, signal: req.signal, costS: expectedS(l) });
      l.computeEwmaS = Number.isFinite(l.computeEwmaS) ? 0.9 * l.computeEwmaS + 0.1 * computeS : computeS;
      this.metrics.stage.observe(queueS, { stage: 'queue' });
      this.metrics.stage.observe(computeS, { stage: 'compute' });
      const stage: Meta = { [`${STAGE_META_PREFIX}${this.name}`]: `${queueS.toFixed(6)},${computeS.toFixed(6)}` };
      let reply: Reply;
      if (l.next) {
        const meta: Meta = { ...req.meta };
        if (l.nextSegment) meta[SEGMENT_META] = l.nextSegment; else delete meta[SEGMENT_META];
        const d0 = performance.now();
        this.metrics.bytesSent.inc({ to: 'next' }, tensorBytes(out));
        const r = await l.next.request(out, { meta, signal: req.signal });
        const downS = (performance.now() - d0) / 1000;
        this.metrics.stage.observe(downS, { stage: 'downstream' });
        // The time waited on the next hop lets the gateway solve each link's share of a request.
        reply = { tensors: r.tensors, meta: { ...r.meta, ...stage, [`${DOWNSTREAM_META_PREFIX}${this.name}`]: downS.toFixed(6) } };
      } else {
        reply = { tensors: out, meta: stage };
      }
      this.metrics.bytesSent.inc({ to: 'reply' }, tensorBytes(reply.tensors));
      this.metrics.requests.inc({ segment: id, outcome: 'ok' });
      this.metrics.stage.observe((performance.now() - t0) / 1000, { stage: 'total' });
      return reply;
    } catch (e) {
      this.metrics.requests.inc({ segment: id, outcome: isKerfError(e) ? e.code : 'internal' });
      throw e;
    } finally {
      this.inflight--;
      this.using.set(l, this.using.get(l)! - 1);
    }
  }

  /** Stop listening, fail what is pending, release sessions. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        this.queue.rejectWhere(() => true, kerfError('KERF_ERR_CLOSED', `worker ${this.name} is shutting down`));
        await this.server?.close();
        if (this.metricsServer) { const s = this.metricsServer; s.closeAllConnections(); await new Promise<void>((r) => s.close(() => r())); }
        await Promise.all([...this.hops.values()].map((h) => h.close()));
        await Promise.all([...this.segments.values()].map((l) => l.segment.close()));
        await this.store?.close();
      })();
    }
    return this.closing;
  }
}

/** A probe's expected cost in the queue: it runs after requests expected to be shorter, and after at most ageFactor × 1 s of waiting. */
const PROBE_COST_S = 1;

/** Expected compute seconds of a request on `l` (its recent mean, else its profiled time; 0 when unknown). */
function expectedS(l: LoadedSegment): number {
  if (Number.isFinite(l.computeEwmaS)) return l.computeEwmaS;
  return l.profiledS ?? 0;
}

/** Bytes of tensor data (strings: UTF-16 length as an estimate). */
export function tensorBytes(ts: readonly WireTensor[]): number {
  let n = 0;
  for (const t of ts) n += Array.isArray(t.data) ? (t.data as string[]).reduce((a, s) => a + s.length, 0) : (t.data as ArrayBufferView).byteLength;
  return n;
}
