import { analyzeCuts, type Analysis, type TensorInfos } from '../graph/cuts.js';
import { loadModel, type LoadedModel } from '../graph/load.js';
import type { Model } from '../graph/model.js';
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

/** Load (if given a path), resolve every tensor's shape, and analyse the cuts. */
export async function prepareModel(model: string | Model, opts: PrepareOptions = {}): Promise<Prepared> {
  const m = typeof model === 'string' ? loadModel(model, opts.name ? { name: opts.name } : {}) : model;
  const inputShapes = resolveInputShapes(m, opts.inputShapes);
  const given = opts.tensors;
  const covered = given !== undefined && m.inputs.every((i) => given.has(i.name)) &&
    m.nodes.every((n) => n.constant || n.outputs.every((o) => !o || given.has(o)));
  const info = covered ? given : await resolveTensorInfo(m, inputShapes);
  const analysis = analyzeCuts(m, info, { order: opts.order ?? 'auto' });
  return { model: m, inputShapes, analysis };
}
