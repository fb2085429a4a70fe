/**
 * A segment: a contiguous range of a model's parts or blocks, loaded in one onnxruntime
 * session. It reads the tensors crossing its input cut and hands on outputs ∪ carry, the
 * tensors crossing its output cut. Workers and the gateway run segments; hot-swapping later
 * means loading another segment beside this one.
 */
import { Worker as Thread } from 'node:worker_threads';
import { kerfError } from '../errors.js';
import { blockCuts, type Granularity } from '../graph/cuts.js';
import { splitModel, serializeModel, type Part, type TensorSpec } from '../graph/slice.js';
import { Session, type HostTensor, type Runner, type SessionOptions, type TypedArray } from '../engine/ort.js';
import { OffLoopSession } from '../engine/compute.js';
import type { Prepared } from '../engine/prepare.js';
import { warmUp } from '../engine/shapes.js';
import type { WireTensor, WireDType } from './frames.js';

/**
 * Which part of the model a segment runs. With `cuts` (the pipeline's tier boundaries),
 * `blocks` index the parts those cuts make; without, they index blocks at `granularity`
 * (default 'single', as profiles and plans count them). No `blocks`: the whole model.
 */
export interface SegmentSpec {
  cuts?: readonly number[];
  /** first and last block (inclusive) */
  blocks?: readonly [number, number];
  granularity?: Granularity;
}

/** The cut ids bounding a segment: null start = the model's inputs, null end = its outputs. */
export interface SegmentBounds { start: number | null; end: number | null; label: string }

/** Resolve a SegmentSpec against a prepared model; throws KERF_ERR_CUT naming the bad range. */
export function segmentBounds(prep: Prepared, spec: SegmentSpec): SegmentBounds {
  const boundaries = spec.cuts ? [...spec.cuts] : blockCuts(prep.analysis, spec.granularity ?? 'single').map((c) => c.id);
  const unit = spec.cuts ? 'part' : 'block';
  const n = boundaries.length + 1;
  const [a, b] = spec.blocks ?? [0, n - 1];
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < a || b >= n) {
    throw kerfError('KERF_ERR_CUT', `${prep.model.source}: ${unit}s ${a}..${b} do not exist (valid ${unit}s are 0..${n - 1}${spec.cuts ? ` for cuts ${spec.cuts.join(',')}` : ''})`);
  }
  return {
    start: a > 0 ? boundaries[a - 1]! : null,
    end: b < n - 1 ? boundaries[b]! : null,
    label: `${unit}s ${a}..${b}`,
  };
}

/** The sub-model between two cuts (either may be null) as a Part. */
export function segmentPart(prep: Prepared, bounds: SegmentBounds): Part {
  const ids = [bounds.start, bounds.end].filter((x): x is number => x !== null);
  const split = splitModel(prep.model, prep.analysis, ids);
  return split.parts[bounds.start === null ? 0 : 1]!;
}

/**
 * What workers and pipelines run: one session (`Segment`) or several composed in order
 * (`ComposedSegment` in switch-chunks.ts, for hot-swap).
 */
export interface SegmentRunner {
  readonly bounds: SegmentBounds;
  readonly label: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly carry: readonly TensorSpec[];
  readonly accepts: ReadonlyMap<string, TensorSpec>;
  readonly loadS: number;
  readonly closed: boolean;
  check(tensors: readonly WireTensor[]): Map<string, WireTensor>;
  run(byName: Map<string, WireTensor>): Promise<WireTensor[]>;
  close(): Promise<void>;
}

/** Check that `tensors` are exactly `accepts`; throws KERF_ERR_SHAPE naming the tensor. */
export function checkTensors(label: string, accepts: ReadonlyMap<string, TensorSpec>, tensors: readonly WireTensor[]): Map<string, WireTensor> {
  const byName = new Map<string, WireTensor>();
  for (const t of tensors) {
    const want = accepts.get(t.name);
    if (!want) throw kerfError('KERF_ERR_SHAPE', `${label}: unexpected tensor '${t.name}' (expects ${[...accepts.keys()].join(', ')})`);
    if (byName.has(t.name)) throw kerfError('KERF_ERR_SHAPE', `${label}: tensor '${t.name}' sent twice`);
    if (t.dtype !== want.dtype) throw kerfError('KERF_ERR_SHAPE', `${label}: tensor '${t.name}' is ${t.dtype}, expected ${want.dtype}`);
    if (t.dims.length !== want.shape.length || t.dims.some((d, i) => d !== want.shape[i])) {
      throw kerfError('KERF_ERR_SHAPE', `${label}: tensor '${t.name}' has shape [${t.dims.join(',')}], expected [${want.shape.join(',')}]`);
    }
    byName.set(t.name, t);
  }
  for (const name of accepts.keys()) {
    if (!byName.has(name)) throw kerfError('KERF_ERR_SHAPE', `${label}: tensor '${name}' is missing`);
  }
  return byName;
}

/** A loaded segment. Create with `Segment.create`; `close()` is idempotent. */
export class Segment implements SegmentRunner {
  /** tensors the segment reads (by their names in the whole model) */
  readonly inputs: readonly TensorSpec[];
  /** tensors it computes and hands on */
  readonly outputs: readonly TensorSpec[];
  /** tensors it receives and hands on untouched */
  readonly carry: readonly TensorSpec[];
  /** every tensor a request must bring: inputs ∪ carry */
  readonly accepts: ReadonlyMap<string, TensorSpec>;
  /** seconds onnxruntime took to load the session */
  readonly loadS: number;
  /** bytes of the serialized sub-model (about what its weights occupy) */
  readonly bytes: number;

  private constructor(readonly bounds: SegmentBounds, part: Part, readonly session: Runner, loadS: number, readonly label: string, bytes: number) {
    ({ inputs: this.inputs, outputs: this.outputs, carry: this.carry, accepts: this.accepts } = partIO(part));
    this.loadS = loadS;
    this.bytes = bytes;
  }

  /**
   * Load the segment. `offLoop` (default true): its session lives on the process's compute
   * thread (engine/compute.ts), so runs never block the thread that serves; false: on this thread.
   */
  static async create(prep: Prepared, spec: SegmentSpec, opts: SessionOptions & { offLoop?: boolean } = {}): Promise<Segment> {
    const bounds = segmentBounds(prep, spec);
    const part = segmentPart(prep, bounds);
    const label = `${prep.model.name} ${bounds.label}`;
    const t0 = performance.now();
    const bytes = await serializePart(part);
    const size = bytes.length; // before the bytes are handed (transferred) to the compute thread
    const { offLoop = true, ...so } = opts;
    const o = { optimization: 'disabled' as const, ...so, label };
    const session = offLoop ? await OffLoopSession.create(bytes, o) : await Session.create(bytes, o);
    return new Segment(bounds, part, session, (performance.now() - t0) / 1000, label, size);
  }

  get closed(): boolean { return this.session.closed; }

  /**
   * Run once on random inputs (seconds taken, or null when such inputs do not suit the part,
   * e.g. indices): onnxruntime allocates its buffers on a session's first run, so warmed
   * sessions do not grow the process, or slow a request, when they first serve.
   */
  async warm(): Promise<number | null> {
    try { return await warmUp(this.session, this.inputs, this.outputs.map((t) => t.name)); } catch { return null; }
  }

  /** Check that `tensors` are exactly what the segment accepts; throws KERF_ERR_SHAPE naming the tensor. */
  check(tensors: readonly WireTensor[]): Map<string, WireTensor> { return checkTensors(this.label, this.accepts, tensors); }

  /** Run on checked tensors; returns outputs ∪ carry, ready to send on. */
  async run(byName: Map<string, WireTensor>): Promise<WireTensor[]> {
    const feeds: Record<string, HostTensor> = {};
    for (const t of this.inputs) feeds[t.name] = toHost(byName.get(t.name)!);
    return handOn(this, await this.session.run(feeds, this.outputs.map((t) => t.name)), byName);
  }

  close(): Promise<void> { return this.session.close(); }
}

/** What a single-session segment of `part` reads, computes and carries; accepts = inputs ∪ carry. */
export function partIO(part: Part): Pick<SegmentRunner, 'inputs' | 'outputs' | 'carry' | 'accepts'> {
  return {
    inputs: Object.freeze([...part.inputs]),
    outputs: Object.freeze([...part.outputs]),
    carry: Object.freeze([...part.carry]),
    accepts: new Map([...part.inputs, ...part.carry].map((t) => [t.name, t])),
  };
}

/** What a segment hands on: its computed outputs (from `out`), then the carried tensors untouched. */
export function handOn(seg: Pick<SegmentRunner, 'outputs' | 'carry'>, out: Record<string, HostTensor>, byName: Map<string, WireTensor>): WireTensor[] {
  const result: WireTensor[] = seg.outputs.map((t) => toWire(t.name, out[t.name]!));
  for (const t of seg.carry) result.push(byName.get(t.name)!);
  return result;
}

/** A wire tensor as onnxruntime input (same memory, no copy). */
export function toHost(t: WireTensor): HostTensor {
  return { dtype: t.dtype as HostTensor['dtype'], dims: t.dims, data: t.data as TypedArray | string[] };
}

/** An onnxruntime output as a wire tensor (same memory, no copy). */
export function toWire(name: string, t: HostTensor): WireTensor {
  return { name, dtype: t.dtype as WireDType, dims: t.dims, data: t.data } as WireTensor;
}

/**
 * Parts whose weights exceed this are serialized on a helper thread at the lowest CPU
 * priority: serializing a part is ~2 ms per MB of weights of pure JS (70–90 ms for a third of
 * resnet18), which on the main thread stalls every request the process is serving while a new
 * split loads (issue 6). What stays on the main thread: cloning the part to the helper and
 * onnxruntime's synchronous model load.
 */
export const OFF_THREAD_BYTES = 4 * 2 ** 20;
const YIELD_BYTES = 2 * 2 ** 20;

interface Helper { thread: Thread; seq: number; pending: Map<number, { resolve(b: Uint8Array): void; reject(e: Error): void }> }
let helper: Helper | null = null;

function serializer(): Helper {
  if (helper) return helper;
  const slice = new URL('../graph/slice.js', import.meta.url).href;
  // nice 19 applies to this thread only (Linux priorities are per thread)
  const code = `
    const { parentPort } = require('node:worker_threads');
    try { require('node:os').setPriority(19); } catch {}
    const mod = import(${JSON.stringify(slice)});
    parentPort.on('message', async ({ id, proto }) => {
      try {
        const bytes = (await mod).serializeModel(proto);
        parentPort.postMessage({ id, bytes }, [bytes.buffer]);
      } catch (e) { parentPort.postMessage({ id, error: String(e && e.message || e) }); }
    });`;
  const thread = new Thread(code, { eval: true });
  const h: Helper = { thread, seq: 0, pending: new Map() };
  const failAll = (e: Error): void => {
    if (helper === h) helper = null;
    for (const p of h.pending.values()) p.reject(e);
    h.pending.clear();
  };
  thread.on('message', (m: { id: number; bytes?: Uint8Array; error?: string }) => {
    const p = h.pending.get(m.id);
    if (!p) return;
    h.pending.delete(m.id);
    if (m.bytes) p.resolve(m.bytes); else p.reject(kerfError('KERF_ERR_ENGINE', `serializing a part: ${m.error}`));
    // An idle thread never collects its garbage (the part's weights it was handed): end it,
    // and with it that memory; the next burst of loads starts a new one (~30 ms, off this thread).
    if (h.pending.size === 0) {
      if (helper === h) helper = null;
      void thread.terminate();
    }
  });
  thread.on('error', (e) => failAll(kerfError('KERF_ERR_ENGINE', `serializer thread: ${e.message}`)));
  thread.on('exit', () => failAll(kerfError('KERF_ERR_ENGINE', 'serializer thread exited')));
  thread.unref();
  helper = h;
  return h;
}

/**
 * A part's proto whose weights are gathered into one buffer (a memcpy), so it can be handed to
 * another thread without copying the whole model's buffers the weights are views into (a
 * structured clone would copy each whole). Copies yield to the event loop every few MB, so
 * requests being served wait at most ~1 ms.
 */
export async function pooledPart(part: Part): Promise<{ proto: Part['proto']; pool: Uint8Array; weights: number }> {
  const graph = part.proto.graph;
  let weights = 0;
  for (const t of graph?.initializer ?? []) if (!isShared(t.rawData)) weights += t.rawData?.byteLength ?? 0;
  const pool = new Uint8Array(weights);
  if (!graph) return { proto: part.proto, pool, weights };
  let o = 0, sinceYield = 0;
  const initializer: typeof graph.initializer = [];
  for (const t of graph.initializer) {
    // Weights in shared memory (models loaded by loadModel) go as they are: the thread shares them.
    if (!t.rawData || t.rawData.byteLength === 0 || isShared(t.rawData)) { initializer.push(t); continue; }
    pool.set(t.rawData, o);
    initializer.push({ ...t, rawData: pool.subarray(o, o + t.rawData.byteLength) });
    o += t.rawData.byteLength;
    sinceYield += t.rawData.byteLength;
    if (sinceYield >= YIELD_BYTES) { sinceYield = 0; await new Promise((r) => setImmediate(r)); }
  }
  return { proto: { ...part.proto, graph: { ...graph, initializer } }, pool, weights };
}

const isShared = (u: Uint8Array | undefined): boolean => u !== undefined && typeof SharedArrayBuffer !== 'undefined' && u.buffer instanceof SharedArrayBuffer;

/** ONNX bytes of a part: on the helper thread when its weights are large, else right here. */
export async function serializePart(part: Part): Promise<Uint8Array> {
  const graph = part.proto.graph;
  let weights = 0;
  for (const t of graph?.initializer ?? []) weights += t.rawData?.byteLength ?? 0;
  if (!graph || weights < OFF_THREAD_BYTES) return serializeModel(part.proto);
  const { proto, pool } = await pooledPart(part);
  const h = serializer();
  const id = ++h.seq;
  return new Promise<Uint8Array>((resolve, reject) => {
    h.pending.set(id, { resolve, reject });
    h.thread.ref();
    h.thread.postMessage({ id, proto }, [pool.buffer as ArrayBuffer]);
  });
}
