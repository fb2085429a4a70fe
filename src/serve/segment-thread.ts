/**
 * Entry point of a segment thread (see thread-segment.ts): serializes one part, loads it in
 * onnxruntime, runs it once on random inputs so the first real request finds a warm session,
 * then runs requests posted by the serving thread. Loading happens at nice 19 when the
 * serving thread can take this thread's priority back afterwards: a new split loads on cores
 * the running split does not need, and never on the thread that serves.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setPriority } from 'node:os';
import type { HostTensor, Session } from '../engine/ort.js';
import type { TensorSpec } from '../graph/slice.js';
import type { Part } from '../graph/slice.js';
type ModelProto = Part['proto'];

/** The serving thread's messages. */
export type ToThread =
  | { op: 'init'; proto: ModelProto; label: string; threads: number; restorePriority: number | null; inputs: TensorSpec[]; outputs: string[] }
  | { op: 'run'; id: number; feeds: Record<string, HostTensor> }
  | { op: 'close' };

/** The segment thread's answers. */
export type FromThread =
  | { op: 'ready'; bytes: number; serializeS: number; createS: number; warmS: number | null; warmError?: string; niced: boolean }
  | { op: 'result'; id: number; outputs: Record<string, HostTensor> }
  | { op: 'error'; id: number | null; message: string; code?: string }
  | { op: 'closed' };

/** What the thread is started with (before it loads any module). */
export interface ThreadData { lowPriority: boolean }

// Lower the priority first: starting a thread compiles onnxruntime's and the protobuf code,
// tens of milliseconds of CPU the serving threads should not have to share.
let niced = false;
if ((workerData as ThreadData | undefined)?.lowPriority) { try { setPriority(19); niced = true; } catch { /* stays at the process's priority */ } }
const [{ Session: SessionClass, tensorBuffers }, { warmUp }, { serializeModel }] = await Promise.all([
  import('../engine/ort.js'), import('../engine/shapes.js'), import('../graph/slice.js'),
]);

const port = parentPort!;
let session: Session | null = null;
let outputs: string[] = [];

const post = (m: FromThread, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

async function init(m: Extract<ToThread, { op: 'init' }>): Promise<void> {
  const t0 = performance.now();
  const bytes = serializeModel(m.proto);
  const t1 = performance.now();
  session = await SessionClass.create(bytes, { optimization: 'disabled', threads: m.threads, label: m.label });
  const t2 = performance.now();
  outputs = m.outputs;
  // One run on random inputs: onnxruntime allocates its buffers on the first run. A part whose
  // inputs random values do not suit (indices, say) just starts cold.
  let warmS: number | null = null, warmError: string | undefined;
  try { warmS = await warmUp(session, m.inputs, outputs); } catch (e) { warmError = String((e as Error)?.message ?? e); }
  if (niced && m.restorePriority !== null) { try { setPriority(m.restorePriority); niced = false; } catch { /* reported as niced */ } }
  post({ op: 'ready', bytes: bytes.length, serializeS: (t1 - t0) / 1000, createS: (t2 - t1) / 1000, warmS, ...(warmError ? { warmError } : {}), niced });
}

port.on('message', (m: ToThread) => {
  if (m.op === 'init') {
    init(m).catch((e: unknown) => post({ op: 'error', id: null, message: String((e as Error)?.message ?? e), code: (e as { code?: string }).code ?? 'KERF_ERR_ENGINE' }));
  } else if (m.op === 'run') {
    const s = session;
    if (!s) { post({ op: 'error', id: m.id, message: 'session not loaded', code: 'KERF_ERR_CLOSED' }); return; }
    s.run(m.feeds, outputs).then(
      (out) => post({ op: 'result', id: m.id, outputs: out }, tensorBuffers(out)),
      (e: unknown) => post({ op: 'error', id: m.id, message: String((e as Error)?.message ?? e), code: (e as { code?: string }).code ?? 'KERF_ERR_ENGINE' }),
    );
  } else if (m.op === 'close') {
    const s = session;
    session = null;
    void (s ? s.close() : Promise.resolve()).finally(() => { post({ op: 'closed' }); port.close(); });
  }
});
