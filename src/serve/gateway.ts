/**
 * The gateway on the device tier: the Open Inference Protocol v2 over HTTP in front of the
 * active Pipeline. Every request enters the pipeline active when it arrives and finishes on
 * it; `switchTo` makes another pipeline active in one assignment, so live repartitioning
 * never stops admitting requests.
 */
import * as http from 'node:http';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { isKerfError, kerfError, type ErrorCode } from '../errors.js';
import { prepareModel, type Prepared } from '../engine/prepare.js';
import type { WireDType } from './frames.js';
import { Pipeline, type InferResult, type PipelineOptions } from './pipeline.js';
import { OIP_DATATYPE, HEADER_LENGTH, encodeInferResponse, parseInferRequest, type TensorMeta } from './oip.js';
import { Registry, PROMETHEUS_CONTENT_TYPE, mergeExpositions, processCpuSeconds, type Counter, type Histogram } from './metrics.js';
import type { HostPort } from './nexthop.js';
import { Switcher, type SwitchStrategy } from './switch.js';
import { bodyPending, closeAfterAnswer, errorStatus, readBody, sendJson } from '../util/http.js';
import { attachDashboard } from '../ui/server.js';

/** A request being served: its pipeline, and the abort of its downstream calls. */
interface Running { pipeline: Pipeline; hop: AbortController; rerouted: boolean }

export interface GatewayOptions {
  host?: string;
  /** its host's name and declared memory (a rollout decides from them whether a new version fits beside the old) */
  memory?: import('./rollout-memory.js').HostMemoryDecl;
  /** HTTP port; 0 or absent: any free port */
  port?: number;
  model: string | Prepared;
  inputShapes?: Record<string, number[]>;
  /** model name in URLs (default: the file name without .onnx) */
  name?: string;
  /** the first pipeline (prep is filled in) */
  pipeline: Omit<PipelineOptions, 'prep'>;
  /** largest request body, bytes (default 256 MiB) */
  maxBodyBytes?: number;
  /** ms without a byte of a request body before it is answered 408 (default 10 s; env KERF_BODY_TIMEOUT_MS) */
  bodyTimeoutMs?: number;
  /** requests in flight beyond which new ones get 503 (default 256) */
  maxInFlight?: number;
  /** how `POST /v1/partition` switches splits (default on-demand; changeable at run time) */
  switchStrategy?: SwitchStrategy;
  /** keep every accepted request's input until its answer, and run it again on the next active
   * pipeline when its pipeline fails under it (failover: src/cluster/failover.ts) */
  replay?: ReplayOptions;
  /** bearer token every changing control endpoint (`POST /v1/partition`, `/strategy`, `/warm`, `/failover`, `/v1/rollout`) demands; undefined: they are open */
  controlToken?: string;
  /** serve the live dashboard at /ui and its event stream at /v1/events (default true) */
  dashboard?: boolean;
}

/** How the gateway holds requests whose pipeline failed until another one is active. */
export interface ReplayOptions {
  /** longest a request waits for a working pipeline before it fails, ms (default 30000) */
  holdMs?: number;
  /** bytes of request inputs kept in flight at most; beyond, new requests get 503 (default 256 MiB) */
  maxBytes?: number;
}

/** Codes of a pipeline fault (a tier died, a hop broke or timed out): the request did not fail, its pipeline did. */
const PIPELINE_FAULTS: ReadonlySet<string> = new Set(['KERF_ERR_UPSTREAM', 'KERF_ERR_CLOSED', 'KERF_ERR_TIMEOUT']);

/** HTTP status for a kerf error code crossing to a client. */
export function httpStatus(code: ErrorCode | string): number {
  switch (code) {
    case 'KERF_ERR_SHAPE': case 'KERF_ERR_USAGE': case 'KERF_ERR_PROTOCOL': return 400;
    case 'KERF_ERR_OVERLOADED': case 'KERF_ERR_UPSTREAM': case 'KERF_ERR_CLOSED': case 'KERF_ERR_AUTH': return 503;
    case 'KERF_ERR_TIMEOUT': return 504;
    default: return 500;
  }
}

/** One pipeline switch, for the record. */
export interface SwitchRecord {
  from: string; to: string; at: string; drainS: number;
  /** seconds during which no pipeline admitted new requests (the flip, or the whole pause) */
  downtimeS: number;
}

/** A handler for extra HTTP routes under a prefix (the control API mounts /v1/partition). */
export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => void;

const hrNow = (): bigint => process.hrtime.bigint();
const hrS = (a: bigint, b: bigint): number => Number(b - a) / 1e9;

/** A running gateway. Create with `Gateway.start`; `close()` is idempotent. */
export class Gateway {
  private active: Pipeline;
  private server!: http.Server;
  private closing: Promise<void> | null = null;
  private inflight = 0;
  /** requests being served, with the pipeline they are on (for `switchTo(…, { reroute })`) */
  private readonly running = new Set<Running>();
  readonly name: string;
  readonly inputs: readonly TensorMeta[];
  readonly outputs: readonly TensorMeta[];
  readonly registry = new Registry();
  readonly switches: SwitchRecord[] = [];
  /** called after every answered request with the pipeline it ran on (the adapt monitors) */
  readonly observers: ((p: Pipeline, r: InferResult) => void)[] = [];
  /** called after every inference request with its seconds and HTTP status (the dashboard's latency window) */
  readonly answered: ((seconds: number, status: number) => void)[] = [];
  /** named live state for the dashboard's event stream, e.g. 'conditions' from adapt; shown when present */
  readonly panels = new Map<string, () => unknown>();
  private readonly m: { requests: Counter; seconds: Histogram; bytesSent: Counter; switches: Counter; rerouted: Counter; replayed: Counter };
  private readonly mounts: [string, RouteHandler][] = [];
  private readonly closers: (() => Promise<void>)[] = [];
  private pausedAt: bigint | null = null;
  /** live repartitioning: serves /v1/partition */
  switcher!: Switcher;
  private pauseReason = '';
  address!: HostPort;
  /** requests waiting for another pipeline to become active (their own failed) */
  private readonly activeWaiters = new Set<() => void>();
  /** bytes of request inputs held for replay */
  private heldBytes = 0;
  private served: Prepared;

  private constructor(prep: Prepared, first: Pipeline, private readonly opts: GatewayOptions) {
    this.served = prep;
    this.active = first;
    this.name = opts.name ?? prep.model.name ?? basename(String(opts.model)).replace(/\.onnx$/i, '');
    const meta = (name: string): TensorMeta => {
      const t = prep.analysis.tensors.get(name);
      if (!t) throw kerfError('KERF_ERR_SHAPE', `${prep.model.source}: the shape of '${name}' is unknown`);
      return { name, dtype: t.dtype as WireDType, shape: [...t.dims] };
    };
    this.inputs = Object.freeze(prep.model.inputs.map((i) => ({ name: i.name, dtype: (prep.analysis.tensors.get(i.name)?.dtype ?? i.type?.dtype) as WireDType, shape: [...prep.inputShapes[i.name]!] })));
    this.outputs = Object.freeze(prep.model.outputs.map((o) => meta(o.name)));
    const r = this.registry;
    this.m = {
      requests: r.counter('kerf_gateway_requests_total', 'Inference requests answered, by HTTP status.'),
      seconds: r.histogram('kerf_gateway_stage_seconds', 'Seconds per stage: total, decode, queue, compute (device part), remote (tiers beyond), encode.'),
      bytesSent: r.counter('kerf_gateway_bytes_sent_total', 'Response bytes written to HTTP clients.'),
      switches: r.counter('kerf_gateway_switches_total', 'Pipeline switches.'),
      rerouted: r.counter('kerf_gateway_rerouted_total', 'Requests moved from the old pipeline to the new one by a switch (reroute).'),
      replayed: r.counter('kerf_gateway_replayed_total', 'Requests run again on a new pipeline after theirs failed under them (failover).'),
    };
    r.gauge('kerf_gateway_replay_held', 'Requests whose pipeline failed, waiting for a working one.').set(() => this.activeWaiters.size);
    r.gauge('kerf_gateway_replay_buffer_bytes', 'Bytes of request inputs kept until their answers (for replay).').set(() => this.heldBytes);
    r.gauge('kerf_gateway_in_flight', 'Inference requests being served.').set(() => this.inflight);
    r.gauge('kerf_gateway_ready', '1 when every tier of the active pipeline is ready.').set(() => (this.ready ? 1 : 0));
    r.gauge('kerf_gateway_queue_depth', 'Requests waiting for the device part.').set(() => this.active.queueDepth);
    r.gauge('kerf_gateway_next_bytes_total', 'Bytes sent to the next tier by the active pipeline.').set(() => this.active.next?.bytesSent ?? 0);
    r.counter('kerf_gateway_cpu_seconds_total', 'CPU seconds (user + system) the gateway process has used.').track(processCpuSeconds);
    r.gauge('kerf_gateway_resident_bytes', 'Resident memory of the gateway process, bytes.').set(() => process.memoryUsage.rss());
  }

  /** Load the model and the first pipeline, and listen. Does not wait for the tiers: see `waitReady`. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    const prep = typeof opts.model === 'string'
      ? await prepareModel(opts.model, { ...(opts.inputShapes ? { inputShapes: opts.inputShapes } : {}), ...(opts.name ? { name: opts.name } : {}) })
      : opts.model;
    const first = await Pipeline.create({ ...opts.pipeline, prep });
    const g = new Gateway(prep, first, opts);
    try {
      g.server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => g.route(req, res));
      await new Promise<void>((resolve, reject) => {
        g.server.once('error', (e: NodeJS.ErrnoException) => reject(kerfError('KERF_ERR_USAGE', `gateway: cannot listen on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 0}: ${e.code ?? e.message}`)));
        g.server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
      });
      const a = g.server.address() as { address: string; port: number };
      g.address = { host: a.address, port: a.port };
      g.switcher = Switcher.attach(g, opts.switchStrategy ? { strategy: opts.switchStrategy } : {});
      if (opts.dashboard !== false) attachDashboard(g);
    } catch (e) {
      await first.close();
      throw e;
    }
    return g;
  }

  /** The model served now (a rollout replaces it: `setModel`). */
  get prep(): Prepared { return this.served; }

  /**
   * Serve another version of the model from now on (a rollout, before it switches to the new
   * version's pipeline). Its inputs and outputs must be the same names, types and shapes.
   */
  setModel(prep: Prepared): void {
    this.checkModel(prep);
    this.served = prep;
  }

  /** Throw KERF_ERR_SHAPE unless `prep` has the served model's inputs and outputs. */
  checkModel(prep: Prepared): void {
    const same = (a: readonly TensorMeta[], b: readonly TensorMeta[]): boolean =>
      a.length === b.length && a.every((t, i) => t.name === b[i]!.name && t.dtype === b[i]!.dtype && t.shape.join('x') === b[i]!.shape.join('x'));
    const ins = prep.model.inputs.map((i) => ({ name: i.name, dtype: (prep.analysis.tensors.get(i.name)?.dtype ?? i.type?.dtype) as WireDType, shape: [...prep.inputShapes[i.name]!] }));
    const outs = prep.model.outputs.map((o) => { const t = prep.analysis.tensors.get(o.name); return { name: o.name, dtype: t?.dtype as WireDType, shape: [...(t?.dims ?? [])] }; });
    const fmt = (ts: readonly TensorMeta[]): string => ts.map((t) => `${t.name} ${t.dtype}[${t.shape.join('x')}]`).join(', ');
    if (!same(ins, this.inputs)) throw kerfError('KERF_ERR_SHAPE', `${prep.model.source}: inputs ${fmt(ins)} differ from the served model's ${fmt(this.inputs)}`);
    if (!same(outs, this.outputs)) throw kerfError('KERF_ERR_SHAPE', `${prep.model.source}: outputs ${fmt(outs)} differ from the served model's ${fmt(this.outputs)}`);
  }

  /** Its host's name and declared memory, as started. */
  get memoryDecl(): GatewayOptions['memory'] { return this.opts.memory; }

  /** The bearer token of the deploying control endpoints (undefined: they are open). */
  get controlToken(): string | undefined { return this.opts.controlToken; }
  /** The host's name its dashboard shows. */
  get hostName(): string { return this.opts.memory?.host ?? hostname(); }

  /** Requests waiting for a working pipeline (theirs failed). */
  get held(): number { return this.activeWaiters.size; }

  /** The options the first pipeline was made with (new pipelines of a switch reuse them). */
  get pipelineOptions(): Readonly<Omit<PipelineOptions, 'prep'>> { return this.opts.pipeline; }

  /** The pipeline new requests go to. */
  get pipeline(): Pipeline { return this.active; }
  get ready(): boolean { return !this.closing && this.pausedAt === null && this.active.ready; }
  /** True while `pause` holds new requests off. */
  get paused(): boolean { return this.pausedAt !== null; }
  get url(): string { return `http://${this.address.host}:${this.address.port}`; }

  waitReady(timeoutMs: number): Promise<void> { return this.active.waitReady(timeoutMs); }

  /**
   * Route new requests to `next` at once; requests in flight finish on the old pipeline,
   * which is then closed (unless `keepOld`). Resolves with the old pipeline once drained.
   */
  async switchTo(next: Pipeline, opts: { keepOld?: boolean; reroute?: boolean } = {}): Promise<{ old: Pipeline; drainS: number; downtimeS: number; rerouted: number }> {
    if (this.closing) throw kerfError('KERF_ERR_CLOSED', 'gateway is closed');
    const old = this.active;
    // Downtime: from the last instant the old pipeline could admit a request to the first
    // instant the new one can. The switch is one assignment, no await in between.
    const a = hrNow();
    this.active = next;
    const b = hrNow();
    this.wakeHeld();
    const downtimeS = hrS(a, b);
    this.m.switches.inc();
    // Requests still on the old pipeline start over on the new one: their downstream calls are
    // cancelled (a tier drops them from its queue; one already computing finishes unheard) and
    // their handlers run them again on the active pipeline.
    let rerouted = 0;
    if (opts.reroute) {
      for (const e of this.running) {
        if (e.pipeline !== old || e.rerouted) continue;
        e.rerouted = true;
        e.hop.abort(kerfError('KERF_ERR_CLOSED', `rerouted from ${old.id} to ${next.id}`));
        rerouted++;
      }
      this.m.rerouted.inc(undefined, rerouted);
    }
    const t0 = performance.now();
    await old.drain();
    const drainS = (performance.now() - t0) / 1000;
    this.switches.push({ from: old.id, to: next.id, at: new Date().toISOString(), drainS, downtimeS });
    if (!opts.keepOld) await old.close();
    return { old, drainS, downtimeS, rerouted };
  }

  /**
   * Stop admitting requests (they get 503 naming `reason`) until `resume`. Requests already
   * admitted finish; `gateway.pipeline.drain()` waits for them.
   */
  pause(reason: string): void {
    if (this.closing) throw kerfError('KERF_ERR_CLOSED', 'gateway is closed');
    if (this.pausedAt !== null) throw kerfError('KERF_ERR_USAGE', 'gateway is already paused');
    this.pausedAt = hrNow();
    this.pauseReason = reason;
  }

  /** Admit requests again, on `next` if given; returns the seconds the pause lasted. */
  resume(next?: Pipeline): number {
    if (this.pausedAt === null) throw kerfError('KERF_ERR_USAGE', 'gateway is not paused');
    const old = this.active;
    if (next) this.active = next;
    this.wakeHeld();
    const downtimeS = hrS(this.pausedAt, hrNow());
    this.pausedAt = null;
    this.m.switches.inc();
    this.switches.push({ from: old.id, to: this.active.id, at: new Date().toISOString(), drainS: 0, downtimeS });
    return downtimeS;
  }

  /** Requests held for a working pipeline look again (the active one changed). */
  private wakeHeld(): void {
    for (const w of [...this.activeWaiters]) w();
  }

  /**
   * Wait until a pipeline other than `p` is active (a failover switched), the client goes, or
   * `deadline` passes (then fail naming `why`).
   */
  private awaitOther(p: Pipeline, deadline: number, signal: AbortSignal, why: string): Promise<void> {
    if (this.active !== p) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: unknown): void => {
        this.activeWaiters.delete(wake);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err); else resolve();
      };
      const wake = (): void => { if (this.active !== p || this.closing) done(this.closing ? kerfError('KERF_ERR_CLOSED', 'gateway is closing') : undefined); };
      const onAbort = (): void => done(signal.reason);
      const timer = setTimeout(() => done(kerfError('KERF_ERR_UPSTREAM', `${why}; no working pipeline within ${this.opts.replay?.holdMs ?? 30_000} ms`)), Math.max(0, deadline - performance.now()));
      this.activeWaiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Serve `prefix` (e.g. '/v1/partition') and everything below it with `handler`. */
  mount(prefix: string, handler: RouteHandler): void { this.mounts.push([prefix, handler]); }

  /** Run `fn` when the gateway closes, before its pipeline closes. */
  onClose(fn: () => Promise<void>): void { this.closers.push(fn); }

  /** Model metadata as OIP's `GET /v2/models/{name}` returns it. */
  metadata(): unknown {
    const t = (m: TensorMeta) => ({ name: m.name, datatype: OIP_DATATYPE[m.dtype] ?? m.dtype, shape: m.shape });
    return { name: this.name, versions: ['1'], platform: 'onnxruntime_onnx', inputs: this.inputs.map(t), outputs: this.outputs.map(t) };
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && path === '/v2/health/live') return json(req, res, 200, { live: true });
    if (get && path === '/v2/health/ready') return json(req, res, this.ready ? 200 : 503, { ready: this.ready, ...(this.ready ? {} : { reason: this.active.reason }) });
    if (get && path === '/v2') return json(req, res, 200, { name: 'kerf', version: '1', extensions: ['binary_tensor_data'] });
    if (get && path === '/metrics') {
      if (bodyPending(req)) closeAfterAnswer(req, res);
      // The gateway's own series, then every worker's with a tier label (one scrape for the pipeline).
      void this.switcher.tierMetrics().then((t) => mergeExpositions(t), (e: Error) => `# kerf: the workers' series are missing: ${e.message.replace(/\n/g, ' ')}\n`)
        .then((tiers) => {
          const body = this.registry.render() + tiers;
          res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
      return;
    }
    for (const [prefix, h] of this.mounts) {
      if (path === prefix || path.startsWith(prefix + '/')) { h(req, res, path); return; }
    }
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/.exec(path);
    if (!m) return fail(req, res, 404, 'KERF_ERR_USAGE', `no such endpoint ${req.method} ${path}`);
    const name = decodeURIComponent(m[1]!);
    if (name !== this.name) return fail(req, res, 404, 'KERF_ERR_USAGE', `unknown model '${name}' (this gateway serves '${this.name}')`);
    if (m[2] !== undefined && m[2] !== '1') return fail(req, res, 404, 'KERF_ERR_USAGE', `model '${name}' has no version '${m[2]}' (only 1)`);
    if (get && m[3] === undefined) return json(req, res, 200, this.metadata());
    if (get && m[3] === '/ready') return json(req, res, this.ready ? 200 : 503, { name: this.name, ready: this.ready });
    if (req.method === 'POST' && m[3] === '/infer') { void this.infer(req, res); return; }
    return fail(req, res, 405, 'KERF_ERR_USAGE', `${req.method} not allowed on ${path}`);
  }

  private async infer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const t0 = performance.now();
    let status = 200;
    this.inflight++;
    // Abort downstream work when the client goes away before the answer.
    const ac = new AbortController();
    let held = 0;
    let failed: { message: string } | null = null;
    res.on('close', () => { if (!res.writableFinished) ac.abort(kerfError('KERF_ERR_CLOSED', 'client closed the request')); });
    try {
      const body = await readBody(req, { maxBytes: this.opts.maxBodyBytes ?? 256 * 1024 * 1024, what: 'gateway', ...(this.opts.bodyTimeoutMs !== undefined ? { idleMs: this.opts.bodyTimeoutMs } : {}) });
      const hl = req.headers[HEADER_LENGTH];
      const jsonLength = hl === undefined ? null : Array.isArray(hl) ? hl.join(',') : hl;
      const parsed = parseInferRequest(body, jsonLength, this.inputs, this.outputs.map((o) => o.name));
      const t1 = performance.now();
      if (this.inflight > (this.opts.maxInFlight ?? 256)) throw kerfError('KERF_ERR_OVERLOADED', `gateway: over ${this.opts.maxInFlight ?? 256} requests in flight; retry later`);
      if (this.pausedAt !== null) throw kerfError('KERF_ERR_OVERLOADED', `gateway paused: ${this.pauseReason}; retry shortly`);
      const replay = this.opts.replay;
      if (replay) {
        // The input stays (in `parsed`) until the answer: bound what that holds.
        const max = replay.maxBytes ?? 256 * 1024 * 1024;
        if (this.heldBytes + body.length > max) throw kerfError('KERF_ERR_OVERLOADED', `gateway: ${this.heldBytes} bytes of requests in flight, over the ${max}-byte replay buffer; retry later`);
        this.heldBytes += body.length;
        held = body.length;
      }
      const deadline = performance.now() + (replay?.holdMs ?? 30_000);
      let p = this.active;
      let r: InferResult;
      for (;;) {
        // A health check that timed out while the next hop is connected (behind requests on a slow
        // link) says the link is busy, not down: serve; a real fault fails the request downstream.
        if (!p.ready && !p.next?.connected) {
          if (!replay) throw kerfError('KERF_ERR_UPSTREAM', `pipeline not ready: ${p.reason}`);
          // Accepted: it waits for the failover's pipeline rather than fail.
          await this.awaitOther(p, deadline, ac.signal, `pipeline ${p.id} not ready: ${p.reason}`);
          p = this.active;
          continue;
        }
        // Its own abort signal, so that a switch can move it (`reroute`) without the client going.
        if (ac.signal.aborted) throw ac.signal.reason as Error;
        const hop = new AbortController();
        const onClose = (): void => hop.abort(ac.signal.reason);
        ac.signal.addEventListener('abort', onClose, { once: true });
        const e: Running = { pipeline: p, hop, rerouted: false };
        this.running.add(e);
        p.enter();
        try {
          r = await p.infer(parsed.inputs, { signal: hop.signal });
          break;
        } catch (err) {
          if (ac.signal.aborted) throw err;
          if (e.rerouted && this.active !== p) {
            // Moved by a switch: start over on the pipeline active now.
          } else if (replay && isKerfError(err) && PIPELINE_FAULTS.has(err.code)) {
            // Its pipeline failed under it: run it again on the one a failover makes active.
            failed = err;
          } else throw err;
        } finally {
          p.leave();
          this.running.delete(e);
          ac.signal.removeEventListener('abort', onClose);
        }
        if (failed) {
          await this.awaitOther(p, deadline, ac.signal, `pipeline ${p.id} failed (${failed.message})`);
          failed = null;
          this.m.replayed.inc();
        } else if (e.rerouted && replay) this.m.replayed.inc();
        p = this.active;
      }
      for (const f of this.observers) f(p, r);
      const t2 = performance.now();
      const enc = encodeInferResponse(this.name, parsed, r.tensors, { parameters: { pipeline: p.id } });
      const headers: http.OutgoingHttpHeaders = { 'content-length': enc.length };
      if (enc.binary) {
        headers['content-type'] = 'application/octet-stream';
        headers['Inference-Header-Content-Length'] = enc.jsonLength;
      } else headers['content-type'] = 'application/json';
      res.writeHead(200, headers);
      for (const c of enc.chunks) res.write(c);
      res.end();
      this.m.bytesSent.inc(undefined, enc.length);
      const s = this.m.seconds;
      s.observe((t1 - t0) / 1000, { stage: 'decode' });
      s.observe(r.timings.queueS, { stage: 'queue' });
      s.observe(r.timings.computeS, { stage: 'compute' });
      s.observe(r.timings.remoteS, { stage: 'remote' });
      s.observe((performance.now() - t2) / 1000, { stage: 'encode' });
    } catch (e) {
      const code = isKerfError(e) ? e.code : 'KERF_ERR_REMOTE';
      status = errorStatus(e) ?? httpStatus(code);
      if (!res.headersSent && !res.destroyed) fail(req, res, status, code, isKerfError(e) ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`);
    } finally {
      this.inflight--;
      this.heldBytes -= held;
      this.m.requests.inc({ status: String(status) });
      const totalS = (performance.now() - t0) / 1000;
      this.m.seconds.observe(totalS, { stage: 'total' });
      for (const f of this.answered) f(totalS, status);
    }
  }

  /** Stop listening, close the pipeline. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        for (const fn of this.closers) await fn().catch(() => {});
        if (this.server) {
          this.server.closeIdleConnections();
          const closed = new Promise<void>((r) => this.server.close(() => r()));
          // Connections still busy after 2 s (an upload that stalls, a long answer) are cut. The
          // timer holds the process until then and is cleared once closed, so close() always
          // resolves and leaves nothing behind.
          const force = setTimeout(() => this.server.closeAllConnections(), 2000);
          try {
            await this.active.close();
            await closed;
          } finally { clearTimeout(force); }
        } else await this.active.close();
      })();
      this.wakeHeld();
    }
    return this.closing;
  }
}

function json(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown): void {
  sendJson(req, res, status, body);
}

function fail(req: http.IncomingMessage, res: http.ServerResponse, status: number, code: string, message: string): void {
  json(req, res, status, { error: message, code });
}
