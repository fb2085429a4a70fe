import { analyzeCuts, type Analysis, type TensorInfos } from '../graph/cuts.js';
import { loadModel, type LoadedModel } from '../graph/load.js';
import { parseModel, type Model } from '../graph/model.js';
import { kerfError } from '../errors.js';
import { resolveInputShapes, resolveTensorInfo } from './shapes.js';

/** A model with its input shapes resolved and its cuts analysed: what inspect, split, profile and serve start from. */
export interface Prepared {
  model: Model & Partial<Pick<LoadedModel, 'file' | 'sha256'>>;
  inputShapes: Record<string, number[]>;
  analysis: Analysis;
}

export interface PrepareOptions {
  inputShapes?: Record<string, number[]>;
  order?: 'auto' | 'file' | 'depth' | 'greedy';
  name?: string;
  /**
   * Every tensor's dtype and dims for these input shapes, as an earlier preparation of the same
   * file found them (a rollout's gateway tells its workers): skips running the model to read them.
   * Ignored (the model is run) when it misses a tensor the graph computes.
   */
  tensors?: TensorInfos;
}

/**
 * Load (a path) or parse (the bytes of an ONNX file, without external data), resolve every
 * tensor's shape, and analyse the cuts.
 */
export async function prepareModel(model: string | Uint8Array | Model, opts: PrepareOptions = {}): Promise<Prepared> {
  const m = typeof model === 'string' ? loadModel(model, opts.name ? { name: opts.name } : {})
    : model instanceof Uint8Array ? parseModel(model, { source: opts.name ?? 'model bytes', ...(opts.name ? { name: opts.name } : {}) })
    : isModel(model) ? model
    : (() => { throw kerfError('KERF_ERR_USAGE', `prepareModel: expected a file path, the bytes of an ONNX file (Uint8Array) or a parsed Model, got ${describe(model)}`); })();
  const inputShapes = resolveInputShapes(m, opts.inputShapes);
  const given = opts.tensors;
  const covered = given !== undefined && m.inputs.every((i) => given.has(i.name)) &&
    m.nodes.every((n) => n.constant || n.outputs.every((o) => !o || given.has(o)));
  const info = covered ? given : await resolveTensorInfo(m, inputShapes);
  const analysis = analyzeCuts(m, info, { order: opts.order ?? 'auto' });
  return { model: m, inputShapes, analysis };
}

function isModel(x: unknown): x is Model {
  const m = x as Partial<Model> | null;
  return typeof m === 'object' && m !== null && typeof m.proto === 'object' && Array.isArray(m.nodes) && Array.isArray(m.inputs) && m.initializers instanceof Map;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x !== 'object') return typeof x;
  const name = (x as object).constructor?.name;
  return name ? `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}` : 'an object';
}
