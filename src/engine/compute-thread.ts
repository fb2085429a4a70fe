/**
 * Entry point of the compute thread (see compute.ts): it owns onnxruntime sessions and runs
 * them, one message at a time, so the thread that serves requests never blocks on a run.
 */
import { parentPort } from 'node:worker_threads';
import { Session, tensorBuffers, type HostTensor, type SessionOptions } from './ort.js';

/** One session run of a chain: it reads `inputs` from the tensors so far, and hands on its
 * `outputs` and the `carry` tensors it received untouched. */
export interface ChainStep { sid: number; inputs: string[]; outputs: string[]; carry: string[] }

export type ToCompute =
  | { op: 'create'; id: number; model: Uint8Array; opts: SessionOptions }
  | { op: 'run'; id: number; steps: ChainStep[]; feeds: Record<string, HostTensor> }
  | { op: 'close'; id: number; sid: number };

export type FromCompute =
  | { id: number; ok: true; inputNames?: string[]; outputNames?: string[]; outputs?: Record<string, HostTensor> }
  | { id: number; ok: false; code: string; message: string };

const port = parentPort!;
const sessions = new Map<number, Session>();

const fail = (id: number, e: unknown): void => {
  const code = (e as { code?: string })?.code ?? 'KERF_ERR_ENGINE';
  port.postMessage({ id, ok: false, code, message: String((e as Error)?.message ?? e) } satisfies FromCompute);
};

async function runChain(steps: ChainStep[], feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  let cur = new Map(Object.entries(feeds));
  for (const st of steps) {
    const s = sessions.get(st.sid);
    if (!s) throw Object.assign(new Error(`session ${st.sid} is closed`), { code: 'KERF_ERR_CLOSED' });
    const f: Record<string, HostTensor> = {};
    for (const n of st.inputs) {
      const t = cur.get(n);
      if (!t) throw Object.assign(new Error(`${s.label}: input tensor '${n}' is missing`), { code: 'KERF_ERR_SHAPE' });
      f[n] = t;
    }
    const out = await s.run(f, st.outputs);
    const next = new Map<string, HostTensor>();
    for (const n of st.outputs) next.set(n, out[n]!);
    for (const n of st.carry) {
      const t = cur.get(n);
      if (!t) throw Object.assign(new Error(`${s.label}: carried tensor '${n}' is missing`), { code: 'KERF_ERR_SHAPE' });
      next.set(n, t);
    }
    cur = next;
  }
  return Object.fromEntries(cur);
}

// One message at a time: onnxruntime runs synchronously on this thread anyway, and a queue
// keeps a create from interleaving with a run's awaits.
let chain: Promise<void> = Promise.resolve();
port.on('message', (m: ToCompute) => {
  chain = chain.then(async () => {
    try {
      if (m.op === 'create') {
        const s = await Session.create(m.model, m.opts);
        sessions.set(m.id, s);
        port.postMessage({ id: m.id, ok: true, inputNames: [...s.inputNames], outputNames: [...s.outputNames] } satisfies FromCompute);
      } else if (m.op === 'run') {
        const outputs = await runChain(m.steps, m.feeds);
        port.postMessage({ id: m.id, ok: true, outputs } satisfies FromCompute, tensorBuffers(outputs));
      } else if (m.op === 'close') {
        const s = sessions.get(m.sid);
        sessions.delete(m.sid);
        if (s) await s.close();
        port.postMessage({ id: m.id, ok: true } satisfies FromCompute);
      }
    } catch (e) { fail(m.id, e); }
  });
});
