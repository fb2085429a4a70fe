/**
 * A segment whose session lives on its own thread (issue 6, on-demand switching).
 *
 * onnxruntime-node creates and runs a session synchronously on the JavaScript thread that owns
 * it. A worker that loads a new split's session on its serving thread therefore stalls every
 * request it is serving for the length of the load; NEUKONFIG's on-demand scenario builds the
 * new pipeline in new containers instead. A ThreadSegment is the in-process equivalent: a
 * worker thread serializes the part, creates the session, runs it once on random inputs (the
 * first run allocates onnxruntime's buffers), all at nice 19 when the process may raise the
 * thread's priority back afterwards, and then serves requests the serving thread posts to it.
 * The serving thread only copies input tensors out and back (transferred, not cloned).
 */
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { lowerNewThreads, threadIds } from '../util/threads.js';
import { Worker as Thread } from 'node:worker_threads';
import { kerfError, type ErrorCode } from '../errors.js';
import type { Prepared } from '../engine/prepare.js';
import { ownedCopies, type HostTensor } from '../engine/ort.js';
import type { TensorSpec } from '../graph/slice.js';
import type { WireTensor } from './frames.js';
import { checkTensors, handOn, partIO, pooledPart, segmentBounds, segmentPart, toHost, type SegmentBounds, type SegmentRunner, type SegmentSpec } from './segment.js';
import type { FromThread, ThreadData, ToThread } from './segment-thread.js';

export interface ThreadSegmentOptions {
  /** onnxruntime intra-op threads (default 1) */
  threads?: number;
  /** name in errors */
  label?: string;
  /** load at nice 19 when the priority can be restored afterwards (default true) */
  lowPriority?: boolean;
}

/** How the thread loaded its session. */
export interface ThreadLoadStats {
  serializeS: number;
  createS: number;
  /** the warm-up run; null when it failed (the session then starts cold) */
  warmS: number | null;
  warmError?: string;
  /** loaded at nice 19 */
  lowPriority: boolean;
  /** still at nice 19 (its priority could not be restored) */
  niced: boolean;
}

let restoreCache: number | null | undefined;
/**
 * The nice value a thread lowered to 19 can return to, or null when it cannot (raising a
 * priority needs CAP_SYS_NICE or RLIMIT_NICE). Then loading runs at normal priority: a serving
 * thread stuck at nice 19 would be worse than a load competing for a core.
 */
export function restorablePriority(): number | null {
  if (restoreCache !== undefined) return restoreCache;
  restoreCache = null;
  if (process.platform !== 'linux') return restoreCache;
  let base: number;
  try { base = getPriority(); } catch { return restoreCache; }
  try {
    const cap = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (cap && (BigInt(`0x${cap}`) & (1n << 23n)) !== 0n) return (restoreCache = base);
  } catch { /* not readable: try the limit */ }
  try {
    const m = /^Max nice priority\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    if (m === 'unlimited' || (m !== undefined && 20 - Number(m) <= base)) return (restoreCache = base);
  } catch { /* unknown: do not lower */ }
  return restoreCache;
}

interface Pending { resolve(out: Record<string, HostTensor>): void; reject(e: Error): void }

/** A segment served from its own thread. Create with `ThreadSegment.create`; `close()` is idempotent. */
export class ThreadSegment implements SegmentRunner {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly carry: readonly TensorSpec[];
  readonly accepts: ReadonlyMap<string, TensorSpec>;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private closing: Promise<void> | null = null;
  private dead: Error | null = null;
  /** seconds from the call to a session ready to serve (slicing, serializing, loading, warm-up) */
  loadS = 0;
  /** bytes of the serialized sub-model */
  bytes = 0;
  stats!: ThreadLoadStats;

  private constructor(readonly bounds: SegmentBounds, part: ReturnType<typeof segmentPart>, private readonly thread: Thread, readonly label: string) {
    ({ inputs: this.inputs, outputs: this.outputs, carry: this.carry, accepts: this.accepts } = partIO(part));
  }

  static async create(prep: Prepared, spec: SegmentSpec, opts: ThreadSegmentOptions = {}): Promise<ThreadSegment> {
    const t0 = performance.now();
    const bounds = segmentBounds(prep, spec);
    const part = segmentPart(prep, bounds);
    const label = opts.label ?? `${prep.model.name} ${bounds.label}`;
    const { proto, pool } = await pooledPart(part);
    const restore = restorablePriority();
    const lowPriority = (opts.lowPriority ?? true) && restore !== null;
    const before = lowPriority ? threadIds() : null;
    const thread = new Thread(new URL('./segment-thread.js', import.meta.url), { workerData: { lowPriority } satisfies ThreadData });
    // Node starts a thread by building a whole JavaScript environment on it (tens of ms of CPU)
    // before any of our code runs there: lower the new thread from here, at once.
    if (before) lowerNewThreads(before);
    const seg = new ThreadSegment(bounds, part, thread, label);
    const ready = new Promise<Extract<FromThread, { op: 'ready' }>>((resolve, reject) => {
      thread.on('message', (m: FromThread) => {
        if (m.op === 'ready') resolve(m);
        else if (m.op === 'error' && m.id === null) reject(kerfError((m.code ?? 'KERF_ERR_ENGINE') as ErrorCode, m.message));
        else seg.onMessage(m);
      });
      thread.on('error', (e) => { const err = kerfError('KERF_ERR_ENGINE', `${label}: segment thread failed: ${e.message}`); reject(err); seg.fail(err); });
      thread.on('exit', () => { const err = kerfError('KERF_ERR_CLOSED', `${label}: segment thread exited`); reject(err); seg.fail(err); });
    });
    const init: ToThread = {
      op: 'init', proto, label, threads: opts.threads ?? 1, restorePriority: restore,
      inputs: [...part.inputs], outputs: part.outputs.map((t) => t.name),
    };
    thread.postMessage(init, [pool.buffer as ArrayBuffer]);
    try {
      const r = await ready;
      seg.bytes = r.bytes;
      seg.stats = { serializeS: r.serializeS, createS: r.createS, warmS: r.warmS, ...(r.warmError ? { warmError: r.warmError } : {}), lowPriority, niced: r.niced };
    } catch (e) {
      await thread.terminate();
      throw e;
    }
    seg.loadS = (performance.now() - t0) / 1000;
    thread.unref();
    return seg;
  }

  get closed(): boolean { return this.closing !== null || this.dead !== null; }

  check(tensors: readonly WireTensor[]): Map<string, WireTensor> { return checkTensors(this.label, this.accepts, tensors); }

  async run(byName: Map<string, WireTensor>): Promise<WireTensor[]> {
    if (this.dead) throw this.dead;
    if (this.closing) throw kerfError('KERF_ERR_CLOSED', `${this.label} is closed`);
    const inputs: Record<string, HostTensor> = {};
    for (const t of this.inputs) inputs[t.name] = toHost(byName.get(t.name)!);
    // Compact copies the thread can own (a wire tensor is a view into a frame's buffer).
    const { tensors: feeds, transfer } = ownedCopies(inputs);
    const id = ++this.seq;
    const out = await new Promise<Record<string, HostTensor>>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.thread.ref();
      this.thread.postMessage({ op: 'run', id, feeds } satisfies ToThread, transfer);
    });
    return handOn(this, out, byName);
  }

  private onMessage(m: FromThread): void {
    if (m.op !== 'result' && m.op !== 'error') return;
    const p = m.id === null ? undefined : this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id!);
    if (this.pending.size === 0) this.thread.unref();
    if (m.op === 'result') p.resolve(m.outputs);
    else p.reject(kerfError((m.code ?? 'KERF_ERR_ENGINE') as ErrorCode, m.message));
  }

  private fail(e: Error): void {
    if (!this.closing) this.dead ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Release the session and end the thread (requests still running on it fail). */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        if (this.dead) return;
        const exited = new Promise<void>((r) => this.thread.once('exit', () => r()));
        this.thread.ref();
        this.thread.postMessage({ op: 'close' } satisfies ToThread);
        const timer = setTimeout(() => { void this.thread.terminate(); }, 10_000);
        await exited;
        clearTimeout(timer);
      })();
    }
    return this.closing;
  }
}
