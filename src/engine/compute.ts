/**
 * Sessions that run off the event loop.
 *
 * onnxruntime-node runs a session synchronously on the JavaScript thread that calls it: while
 * a gateway runs its part of a request, it cannot read another client's request, hand a
 * finished answer back, or take the next tier's reply off the socket. On a slow device that is
 * a whole part's run (hundreds of ms at a quarter of a core) added to other requests' latency,
 * and every transfer measured across it looks that much slower. A serving process therefore
 * keeps its sessions on one compute thread: the serving thread posts compact copies of the
 * inputs and gets the outputs back transferred (no copy). Runs still happen one at a time, as
 * they did on the serving thread; a chain of sessions (a hot-swap composition) runs as one
 * message, its intermediate tensors never leaving the compute thread.
 */
import { Worker as Thread } from 'node:worker_threads';
import { kerfError, type ErrorCode } from '../errors.js';
import { ownedCopies, type HostTensor, type Runner, type SessionOptions } from './ort.js';
import type { ChainStep, FromCompute, ToCompute } from './compute-thread.js';

type Answer = Extract<FromCompute, { ok: true }>;
type Request = ToCompute extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;

/** The process's compute thread. */
class ComputeThread {
  private readonly thread: Thread;
  private readonly pending = new Map<number, { resolve(a: Answer): void; reject(e: Error): void }>();
  private seq = 0;
  dead: Error | null = null;

  constructor() {
    this.thread = new Thread(new URL('./compute-thread.js', import.meta.url));
    this.thread.unref();
    this.thread.on('message', (m: FromCompute) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.thread.unref();
      if (m.ok) p.resolve(m); else p.reject(kerfError(m.code as ErrorCode, m.message));
    });
    const die = (e: Error): void => {
      this.dead ??= e;
      if (shared === this) shared = null;
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    this.thread.on('error', (e) => die(kerfError('KERF_ERR_ENGINE', `compute thread failed: ${e.message}`)));
    this.thread.on('exit', () => die(kerfError('KERF_ERR_ENGINE', 'compute thread exited')));
  }

  /** Post a request; the id it went under (a create's id is the session's id) and its answer. */
  call(req: Request, transfer: ArrayBuffer[] = []): { id: number; answer: Promise<Answer> } {
    const id = ++this.seq;
    if (this.dead) return { id, answer: Promise.reject(this.dead) };
    const answer = new Promise<Answer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.thread.ref();
      this.thread.postMessage({ ...req, id } as ToCompute, transfer);
    });
    return { id, answer };
  }

  terminate(): Promise<number> { return this.thread.terminate(); }
}

let shared: ComputeThread | null = null;
const computeThread = (): ComputeThread => (shared ??= new ComputeThread());

/** End the compute thread (sessions on it fail afterwards; the next session starts a new one). */
export async function stopComputeThread(): Promise<void> {
  const t = shared;
  shared = null;
  if (t) await t.terminate();
}

/** An onnxruntime session on the compute thread. Create with `OffLoopSession.create`; `close()` is idempotent. */
export class OffLoopSession implements Runner {
  private closing: Promise<void> | null = null;

  private constructor(private readonly thread: ComputeThread, readonly sid: number, readonly label: string,
    readonly inputNames: readonly string[], readonly outputNames: readonly string[]) {}

  /** Load `model` (ONNX bytes) on the compute thread; the bytes are handed over (transferred)
   * when they span a whole ArrayBuffer, shared when in shared memory, else copied. */
  static async create(model: Uint8Array, opts: SessionOptions = {}): Promise<OffLoopSession> {
    const label = opts.label ?? 'model';
    const t = computeThread();
    const shared = typeof SharedArrayBuffer !== 'undefined' && model.buffer instanceof SharedArrayBuffer;
    const whole = !shared && model.byteOffset === 0 && model.byteLength === model.buffer.byteLength;
    const bytes = shared || whole ? model : model.slice();
    const { id, answer } = t.call({ op: 'create', model: bytes, opts: { ...opts, label } }, shared ? [] : [bytes.buffer as ArrayBuffer]);
    const a = await answer;
    return new OffLoopSession(t, id, label, a.inputNames ?? [], a.outputNames ?? []);
  }

  get closed(): boolean { return this.closing !== null || this.thread.dead !== null; }

  async run(feeds: Record<string, HostTensor>, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    return runChain([{ session: this, inputs: this.inputNames, outputs: outputs ?? this.outputNames, carry: [] }], feeds);
  }

  /** @internal for runChain */
  check(): ComputeThread {
    if (this.closing) throw kerfError('KERF_ERR_CLOSED', `${this.label}: session is closed`);
    if (this.thread.dead) throw kerfError('KERF_ERR_ENGINE', `${this.label}: ${this.thread.dead.message}`);
    return this.thread;
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = this.thread.dead ? Promise.resolve() : this.thread.call({ op: 'close', sid: this.sid }).answer.then(() => {}, () => {});
    }
    return this.closing;
  }
}

/** One session of a chain: what it reads, what it computes, what it hands on untouched. */
export interface ChainLink { session: OffLoopSession; inputs: readonly string[]; outputs: readonly string[]; carry: readonly string[] }

/**
 * Run sessions in order as one message to the compute thread: each reads its inputs from the
 * tensors handed on so far and hands on its outputs and its carried tensors; returns what the
 * last one hands on. All sessions must live on the same compute thread.
 */
export async function runChain(links: readonly ChainLink[], feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  if (!links.length) throw kerfError('KERF_ERR_USAGE', 'runChain: no sessions');
  const thread = links[0]!.session.check();
  const steps: ChainStep[] = links.map((l) => {
    if (l.session.check() !== thread) throw kerfError('KERF_ERR_USAGE', `runChain: ${l.session.label} is on another compute thread`);
    return { sid: l.session.sid, inputs: [...l.inputs], outputs: [...l.outputs], carry: [...l.carry] };
  });
  const first = links[0]!;
  const need = new Set([...first.inputs, ...first.carry]);
  const given: Record<string, HostTensor> = {};
  for (const n of need) {
    const t = feeds[n];
    if (!t) throw kerfError('KERF_ERR_SHAPE', `${first.session.label}: input tensor '${n}' is missing`);
    given[n] = t;
  }
  const o = ownedCopies(given);
  const a = await thread.call({ op: 'run', steps, feeds: o.tensors }, o.transfer).answer;
  return a.outputs ?? {};
}
