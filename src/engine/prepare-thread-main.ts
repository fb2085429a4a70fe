/** Entry point of the thread `prepareModelInThread` starts (see prepare-thread.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { setPriority } from 'node:os';
import type { PrepareThreadData, PrepareThreadResult } from './prepare-thread.js';

const d = workerData as PrepareThreadData;
// Lower first: loading onnxruntime and the protobuf code is CPU the serving threads need.
if (d.lowPriority) { try { setPriority(19); } catch { /* stays at the process's priority */ } }
const port = parentPort!;
const t0 = performance.now();
try {
  const { prepareModel } = await import('./prepare.js');
  const prep = await prepareModel(d.file, d.opts);
  port.postMessage({ ok: true, prep, ms: performance.now() - t0 } satisfies PrepareThreadResult);
} catch (e) {
  const x = e as { code?: unknown; message?: unknown; details?: unknown };
  port.postMessage({
    ok: false, code: typeof x.code === 'string' && x.code.startsWith('KERF_ERR_') ? x.code : 'KERF_ERR_ENGINE', message: String(x.message ?? e),
    ...(x.details && typeof x.details === 'object' ? { details: x.details as Record<string, unknown> } : {}),
  } satisfies PrepareThreadResult);
}
port.close();
