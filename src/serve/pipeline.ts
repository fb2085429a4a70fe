/**
 * The gateway's view of one split: the part it runs itself (device tier) and the connection
 * to the first remote tier. Requests enter a Pipeline and finish on it; the gateway routes new
 * requests to whichever pipeline is active, so switching splits is one assignment while old
 * requests drain on the old pipeline.
 */
import { kerfError, type KerfError } from '../errors.js';
import type { Prepared } from '../engine/prepare.js';
import type { Meta, WireTensor } from './frames.js';
import { Segment, type SegmentRunner } from './segment.js';
import { WorkQueue } from './queue.js';
import { stallSeconds } from './stall.js';
import { NextHop, parseAddress, type HostPort } from './nexthop.js';
import { SEGMENT_META, STAGE_META_PREFIX } from './worker.js';

export interface PipelineOptions {
  prep: Prepared;
  /** cut ids of the tier boundaries: parts = cuts.length + 1 */
  cuts: readonly number[];
  /** the gateway runs part 0 itself (default true); false: it forwards the model's inputs */
  local?: boolean;
  /** the first remote tier; absent: the gateway runs every part itself */
  next?: HostPort | string | null;
  /** segment id to ask the first remote tier for (default: its default) */
  nextSegment?: string;
  /** the pipeline's shared secret (needed with `next`) */
  token?: string;
  /** codec of the hop to the first remote tier (default 'none'; docs/codec.md) */
  codec?: string;
  /** TLS to the first remote tier (NextHopOptions.tls) */
  tls?: boolean | import('node:tls').ConnectionOptions;
  /** name for logs, metrics and /v1/partition */
  id?: string;
  threads?: number;
  /** requests that may wait for the local part (default 64) */
  queueLimit?: number;
  /** how often readiness of the remote tiers is asked, ms (default 200) */
  healthIntervalMs?: number;
  /** a local segment to use instead of loading one (it stays the caller's to close) */
  localSegment?: SegmentRunner;
  /** heartbeats on the hop to the first remote tier (NextHopOptions.heartbeat): a cut link then
   * fails the requests on it after timeoutMs instead of leaving them hanging */
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
}

/** What an inference returns: the model's outputs, the tiers' meta, and where time went. */
export interface InferResult {
  tensors: WireTensor[];
  meta: Meta;
  /** seconds: local queue, local compute, remote round trip (all tiers beyond); `remoteStallS`:
   * of the round trip, the seconds this process's event loop waited for a CPU (stall.ts; NaN
   * when not measured): on a busy host that time is in remoteS but is not the link's */
  timings: { queueS: number; computeS: number; remoteS: number; remoteStallS: number };
  /** per remote stage: [queueS, computeS] from the tiers' meta */
  stages: Record<string, [number, number]>;
}

/** One split being served. Create with `Pipeline.create`; `close()` is idempotent. */
export class Pipeline {
  readonly id: string;
  readonly cuts: readonly number[];
  private readonly queue: WorkQueue;
  private timer: NodeJS.Timeout | null = null;
  private healthOk = false;
  private healthReason = 'not checked yet';
  private inflight = 0;
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | null = null;
  private checking = false;

  private constructor(
    readonly prep: Prepared, opts: PipelineOptions,
    readonly local: SegmentRunner | null, private ownsLocal: boolean,
    readonly next: NextHop | null, readonly nextSegment: string | undefined,
  ) {
    this.id = opts.id ?? `cuts ${opts.cuts.join(',') || 'none'}`;
    this.cuts = Object.freeze([...opts.cuts]);
    this.queue = new WorkQueue(opts.queueLimit ?? 64, 1, `pipeline '${this.id}' device queue`);
    if (next) {
      next.on('down', (why: KerfError) => {
        this.healthOk = false;
        this.healthReason = `next tier ${next.where}: ${why.message}`;
        this.queue.rejectWhere(() => true, kerfError('KERF_ERR_UPSTREAM', `next tier ${next.where} went away (${why.message})`));
      });
      next.on('up', () => void this.check());
      const ms = opts.healthIntervalMs ?? 200;
      this.timer = setInterval(() => void this.check(), ms);
      this.timer.unref();
    } else {
      this.healthOk = true;
      this.healthReason = '';
    }
  }

  /** Load the local part and start connecting to the first remote tier. */
  static async create(opts: PipelineOptions): Promise<Pipeline> {
    const n = opts.cuts.length + 1;
    const local = opts.local ?? true;
    if (!opts.next && !local) throw kerfError('KERF_ERR_USAGE', 'pipeline: with no next tier the gateway must run the model itself');
    if (opts.next && !opts.token) throw kerfError('KERF_ERR_USAGE', 'pipeline: a token is needed to reach the next tier');
    if (opts.next && n === 1 && local) throw kerfError('KERF_ERR_USAGE', 'pipeline: a next tier needs at least one cut (the gateway would run everything)');
    let seg: SegmentRunner | null = null;
    if (local) {
      seg = opts.localSegment ?? await Segment.create(opts.prep, { cuts: opts.cuts, blocks: [0, opts.next ? 0 : n - 1] }, { threads: opts.threads ?? 1, label: `gateway ${opts.id ?? ''}`.trim() });
    }
    const next = opts.next ? NextHop.open(parseAddress(opts.next, 'next'), { token: opts.token!, info: `gateway ${opts.id ?? ''}`.trim(), ...(opts.heartbeat ? { heartbeat: opts.heartbeat } : {}), ...(opts.codec ? { codec: opts.codec } : {}), ...(opts.tls ? { tls: opts.tls } : {}) }) : null;
    const p = new Pipeline(opts.prep, opts, seg, local && !opts.localSegment, next, opts.nextSegment);
    if (next) void p.check();
    return p;
  }

  /** Ready: every tier reachable and ready (asked every healthIntervalMs). */
  get ready(): boolean { return !this.closing && this.healthOk && (this.next === null || this.next.connected); }
  /** Why it is not ready ('' when ready). */
  get reason(): string {
    if (this.closing) return 'pipeline closed';
    if (this.next && !this.next.connected) {
      const e = this.next.lastError;
      return e?.code === 'KERF_ERR_AUTH' ? `next tier ${this.next.where} refused this gateway: ${e.message}` : `next tier ${this.next.where} unreachable${e ? ` (${e.message})` : ''}`;
    }
    return this.healthOk ? '' : this.healthReason;
  }
  /** Requests that entered and have not finished. */
  get inFlight(): number { return this.inflight; }
  /** Requests waiting for the local part. */
  get queueDepth(): number { return this.queue.depth; }

  /** Resolve once ready, or reject after `timeoutMs` naming why not. */
  async waitReady(timeoutMs: number): Promise<void> {
    const until = performance.now() + timeoutMs;
    while (!this.ready) {
      if (this.closing) throw kerfError('KERF_ERR_CLOSED', `pipeline '${this.id}' is closed`);
      if (performance.now() > until) throw kerfError('KERF_ERR_TIMEOUT', `pipeline '${this.id}' not ready within ${timeoutMs} ms: ${this.reason}`);
      await new Promise((r) => setTimeout(r, 25));
      if (this.next?.connected && !this.healthOk) await this.check();
    }
  }

  private async check(): Promise<void> {
    if (!this.next || this.checking || this.closing) return;
    this.checking = true;
    try {
      const body = await this.next.control('ready', '', { timeoutMs: 1000 });
      const r = JSON.parse(new TextDecoder().decode(body)) as { ready: boolean; reason?: string; name?: string };
      this.healthOk = r.ready;
      this.healthReason = r.ready ? '' : `${r.name ?? this.next.where}: ${r.reason ?? 'not ready'}`;
    } catch (e) {
      this.healthOk = false;
      this.healthReason = `next tier ${this.next.where}: ${(e as Error).message}`;
    } finally {
      this.checking = false;
    }
  }

  /**
   * Run one request through every tier. `inputs` must already match the model's inputs
   * (the gateway validates them). Call through `enter`/`leave` (the gateway does).
   */
  async infer(inputs: WireTensor[], opts: { signal?: AbortSignal; meta?: Meta } = {}): Promise<InferResult> {
    if (this.closing) throw kerfError('KERF_ERR_CLOSED', `pipeline '${this.id}' is closed`);
    let tensors = inputs;
    let queueS = 0, computeS = 0, remoteS = 0, remoteStallS = NaN;
    if (this.local) {
      const byName = this.local.check(inputs);
      const seg = this.local;
      tensors = await this.queue.push(async (t) => {
        queueS = t.waitS;
        const c0 = performance.now();
        const r = await seg.run(byName);
        computeS = (performance.now() - c0) / 1000;
        return r;
      }, opts.signal ? { signal: opts.signal } : {});
    }
    let meta: Meta = {};
    if (this.next) {
      const m: Meta = { ...(opts.meta ?? {}) };
      if (this.nextSegment) m[SEGMENT_META] = this.nextSegment;
      const r0 = performance.now(), w0 = stallSeconds();
      const r = await this.next.request(tensors, { meta: m, ...(opts.signal ? { signal: opts.signal } : {}) });
      remoteS = (performance.now() - r0) / 1000;
      remoteStallS = stallSeconds() - w0;
      tensors = r.tensors;
      meta = r.meta;
    }
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const outputs = this.prep.model.outputs.map((o) => {
      const t = byName.get(o.name);
      if (!t) throw kerfError('KERF_ERR_UPSTREAM', `pipeline '${this.id}': the last tier did not return output '${o.name}'`);
      return t;
    });
    const stages: Record<string, [number, number]> = {};
    for (const [k, v] of Object.entries(meta)) {
      if (!k.startsWith(STAGE_META_PREFIX)) continue;
      const [q, c] = v.split(',').map(Number);
      stages[k.slice(STAGE_META_PREFIX.length)] = [q ?? NaN, c ?? NaN];
    }
    return { tensors: outputs, meta, timings: { queueS, computeS, remoteS, remoteStallS }, stages };
  }

  /** Count a request in (call synchronously right after choosing this pipeline). */
  enter(): void { this.inflight++; }
  /** Count a request out. */
  leave(): void {
    this.inflight--;
    if (this.inflight === 0) for (const w of this.drainWaiters.splice(0)) w();
  }
  /** Resolve when no request is in flight on this pipeline. */
  drain(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  /**
   * Hand the local segment to the caller (a failover's new pipeline with the same cuts runs it
   * on): this pipeline then no longer closes it. Null when it has none.
   */
  adoptLocal(): SegmentRunner | null {
    if (!this.local || this.closing) return null;
    this.ownsLocal = false;
    return this.local;
  }

    /** Stop health checks, close the connection and the local session (if owned). Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      if (this.timer) clearInterval(this.timer);
      this.closing = (async () => {
        await this.next?.close();
        if (this.local && this.ownsLocal) await this.local.close();
      })();
    }
    return this.closing;
  }
}
