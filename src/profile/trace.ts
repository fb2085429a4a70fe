/**
 * onnxruntime's per-node profiler output (Chrome trace JSON): one `model_run` event per run and
 * one `<node>_kernel_time` event per node executed, durations in microseconds.
 */
import { kerfError } from '../errors.js';

/** One model run as the trace records it. */
export interface TraceRun {
  /** wall time of the run inside onnxruntime, seconds */
  seconds: number;
  /** node name → kernel seconds in this run */
  nodes: Map<string, number>;
  /** node name → op type */
  ops: Map<string, string>;
}

interface TraceEvent { cat?: string; name?: string; ts?: number; dur?: number; args?: { op_name?: string } }

/** Split a trace into runs, in order. Node events are assigned to the run whose window holds them. */
export function parseOrtTrace(json: unknown, source = 'trace'): TraceRun[] {
  if (!Array.isArray(json)) throw kerfError('KERF_ERR_PROFILE', `${source}: not an onnxruntime profile (expected a JSON array)`);
  const events = json as TraceEvent[];
  const runs = events
    .filter((e) => e.cat === 'Session' && e.name === 'model_run' && typeof e.ts === 'number' && typeof e.dur === 'number')
    .sort((a, b) => a.ts! - b.ts!)
    .map((e) => ({ start: e.ts!, end: e.ts! + e.dur!, run: { seconds: e.dur! * 1e-6, nodes: new Map<string, number>(), ops: new Map<string, string>() } }));
  const nodes = events
    .filter((e) => e.cat === 'Node' && typeof e.name === 'string' && e.name.endsWith('_kernel_time') && typeof e.ts === 'number')
    .sort((a, b) => a.ts! - b.ts!);
  let r = 0;
  for (const e of nodes) {
    while (r < runs.length && e.ts! > runs[r]!.end) r++;
    const run = runs[r];
    if (!run || e.ts! < run.start) continue;
    const name = e.name!.slice(0, -'_kernel_time'.length);
    run.run.nodes.set(name, (run.run.nodes.get(name) ?? 0) + (e.dur ?? 0) * 1e-6);
    if (e.args?.op_name) run.run.ops.set(name, e.args.op_name);
  }
  return runs.map((x) => x.run);
}
