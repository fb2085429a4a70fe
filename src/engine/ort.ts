/**
 * The only file that imports onnxruntime-node. Everything else in kerf speaks HostTensor
 * (dtype, dims, typed array) and Session, so swapping the runtime touches this file alone.
 */
// First: the environment onnxruntime reads when it initialises (telemetry off; see the file).
import './ort-env.js';
import * as ort from 'onnxruntime-node';
import { kerfError } from '../errors.js';
import type { DType } from '../graph/dtypes.js';

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

/** A tensor on the host, independent of any runtime. */
export interface HostTensor { dtype: DType; dims: number[]; data: TypedArray | string[] }

export type Optimization = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  /** intra-op threads (default 1: fixed and honest for profiling; serving may raise it) */
  threads?: number;
  /** graph optimisation level (default 'disabled': split parts are then bitwise equal to the whole) */
  optimization?: Optimization;
  /** onnxruntime's per-node profiler */
  profiling?: boolean;
  /** profile file prefix when profiling */
  profilePrefix?: string;
  /** where onnxruntime writes the optimised model */
  optimizedModelPath?: string;
  /** name shown in errors */
  label?: string;
}

/** What runs a model: a `Session` here, or one on the compute thread (`engine/compute.ts`). */
export interface Runner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly label: string;
  readonly closed: boolean;
  run(feeds: Record<string, HostTensor>, outputs?: readonly string[]): Promise<Record<string, HostTensor>>;
  close(): Promise<void>;
}

/** An inference session. Created only through `Session.create`; `close()` is idempotent. */
export class Session implements Runner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly label: string;
  #s: ort.InferenceSession | null;

  private constructor(s: ort.InferenceSession, label: string) {
    this.#s = s;
    this.label = label;
    this.inputNames = s.inputNames;
    this.outputNames = s.outputNames;
  }

  static async create(model: Uint8Array | string, opts: SessionOptions = {}): Promise<Session> {
    const label = opts.label ?? (typeof model === 'string' ? model : 'model');
    const o: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: opts.optimization ?? 'disabled',
      intraOpNumThreads: opts.threads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      enableProfiling: opts.profiling ?? false,
      // Several sessions share this process: spinning threads would slow each other 4x.
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    };
    if (opts.profilePrefix) o.profileFilePrefix = opts.profilePrefix;
    if (opts.optimizedModelPath) o.optimizedModelFilePath = opts.optimizedModelPath;
    // onnxruntime-node takes model bytes only in an ArrayBuffer, not in shared memory.
    if (typeof model !== 'string' && typeof SharedArrayBuffer !== 'undefined' && model.buffer instanceof SharedArrayBuffer) model = model.slice();
    try {
      const s = typeof model === 'string'
        ? await ort.InferenceSession.create(model, o)
        : await ort.InferenceSession.create(model, o);
      return new Session(s, label);
    } catch (e) {
      throw kerfError('KERF_ERR_ENGINE', `${label}: onnxruntime cannot load the model: ${firstLine(e)}`);
    }
  }

  get closed(): boolean { return this.#s === null; }

  /** Run with the given feeds; returns the requested outputs (default all) as host tensors. */
  async run(feeds: Record<string, HostTensor>, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    const s = this.#s;
    if (!s) throw kerfError('KERF_ERR_CLOSED', `${this.label}: session is closed`);
    const f: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      const t = feeds[name];
      if (!t) throw kerfError('KERF_ERR_SHAPE', `${this.label}: input tensor '${name}' is missing`);
      f[name] = toOrt(t);
    }
    let r: ort.InferenceSession.ReturnType;
    try {
      r = outputs ? await s.run(f, outputs as string[]) : await s.run(f);
    } catch (e) {
      throw kerfError('KERF_ERR_ENGINE', `${this.label}: run failed: ${firstLine(e)}`);
    }
    const out: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(r)) out[k] = fromOrt(v);
    return out;
  }

  /** Stop onnxruntime's profiler. onnxruntime-node 1.30 returns nothing: the JSON trace is the
   * newest `<profilePrefix>_*.json` file (point profilePrefix at a fresh folder to find it). */
  endProfiling(): void {
    const s = this.#s;
    if (!s) throw kerfError('KERF_ERR_CLOSED', `${this.label}: session is closed`);
    s.endProfiling();
  }

  async close(): Promise<void> {
    const s = this.#s;
    this.#s = null;
    if (s) await s.release();
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 400);
}

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
}

function fromOrt(v: ort.Tensor): HostTensor {
  return { dtype: v.type as DType, dims: [...v.dims], data: v.data as TypedArray | string[] };
}

/**
 * Compact copies of tensors that another thread can own, and the buffers to transfer with them
 * (a tensor here is often a view into a larger buffer, e.g. a received frame, which a structured
 * clone would copy whole). String tensors go as they are (cloned).
 */
export function ownedCopies(ts: Record<string, HostTensor>): { tensors: Record<string, HostTensor>; transfer: ArrayBuffer[] } {
  const tensors: Record<string, HostTensor> = {};
  const transfer: ArrayBuffer[] = [];
  for (const [name, t] of Object.entries(ts)) {
    if (Array.isArray(t.data)) { tensors[name] = t; continue; }
    const copy = t.data.slice();
    transfer.push(copy.buffer as ArrayBuffer);
    tensors[name] = { ...t, data: copy };
  }
  return { tensors, transfer };
}

/** The distinct ArrayBuffers behind tensors' data, to transfer them to another thread. */
export function tensorBuffers(ts: Record<string, HostTensor>): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const t of Object.values(ts)) {
    if (Array.isArray(t.data)) continue;
    const b = (t.data as { buffer: ArrayBuffer }).buffer;
    if (b instanceof ArrayBuffer && b.byteLength > 0) seen.add(b);
  }
  return [...seen];
}

export const ortVersion: string = (ort.env as { versions?: { node?: string } }).versions?.node ?? 'unknown';
