import { analyzeCuts, type Analysis } from '../graph/cuts.js';
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
}

/** Load (if given a path), resolve every tensor's shape, and analyse the cuts. */
export async function prepareModel(model: string | Model, opts: PrepareOptions = {}): Promise<Prepared> {
  const m = typeof model === 'string' ? loadModel(model, opts.name ? { name: opts.name } : {}) : model;
  const inputShapes = resolveInputShapes(m, opts.inputShapes);
  const info = await resolveTensorInfo(m, inputShapes);
  const analysis = analyzeCuts(m, info, { order: opts.order ?? 'auto' });
  return { model: m, inputShapes, analysis };
}
