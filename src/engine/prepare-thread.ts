/**
 * `prepareModel` on a thread of its own, at nice 19, for a process that serves requests while it
 * takes a new model (a rollout, on the gateway and on every worker). Preparing parses the file,
 * hashes it and runs the whole model once in onnxruntime to read every tensor's shape: 100–200 ms
 * of CPU for a small CNN, all of it synchronous, which on the serving thread is a stall every
 * request in flight waits out. The thread hands back the prepared model by structured clone;
 * the weights are views into shared memory (graph/load.ts `readShared`), so they are not copied,
 * and receiving the graph costs the serving thread a few ms.
 */
import { Worker as Thread } from 'node:worker_threads';
import { kerfError, type ErrorCode } from '../errors.js';
import { lowerNewThreads, threadIds } from '../util/threads.js';
import { reviveMessages } from '../graph/revive.js';
import type { Prepared, PrepareOptions } from './prepare.js';

/** What the thread is started with. */
export interface PrepareThreadData { file: string; opts: PrepareOptions; lowPriority: boolean }
/** Its one answer. */
export type PrepareThreadResult =
  | { ok: true; prep: Prepared; ms: number }
  | { ok: false; code: string; message: string; details?: Record<string, unknown> };

/** Prepare `file` as `prepareModel` does, off this thread (`lowPriority`, default true: at nice 19). */
export function prepareModelInThread(file: string, opts: PrepareOptions & { lowPriority?: boolean } = {}): Promise<Prepared> {
  const { lowPriority = true, ...o } = opts;
  const before = lowPriority ? threadIds() : null;
  const thread = new Thread(new URL('./prepare-thread-main.js', import.meta.url), { workerData: { file, opts: o, lowPriority } satisfies PrepareThreadData });
  if (before) lowerNewThreads(before);
  return new Promise<Prepared>((resolve, reject) => {
    let done = false;
    thread.once('message', (m: PrepareThreadResult) => {
      done = true;
      if (m.ok) { reviveMessages(m.prep); resolve(m.prep); }
      else reject(kerfError(m.code as ErrorCode, m.message, m.details));
    });
    thread.once('error', (e) => { done = true; reject(kerfError('KERF_ERR_ENGINE', `${file}: preparing the model failed on its thread: ${e.message}`)); });
    thread.once('exit', (c) => { if (!done) reject(kerfError('KERF_ERR_ENGINE', `${file}: the thread preparing the model exited (code ${c}) without an answer`)); });
  });
}
