import { kerfError } from '../errors.js';
import { isPickledObject, readPickle } from './pickle.js';
import { PROFILE_SCHEMA, type BlockProfile, type Profile } from './types.js';

/** One Scission `LayerBenchmark`: a block of Keras layers timed on one system. */
export interface ScissionLayerBenchmark {
  model: string;
  /** first Keras layer index of the block */
  inputLayer: number;
  /** last Keras layer index of the block */
  outputLayer: number;
  /** seconds */
  secondPrediction: number;
  /** bytes of the block's output saved as .npy */
  outputSize: number;
}

/** The content of one Scission `TYPE-NAME.dat` file. */
export interface ScissionSystem {
  /** system name (NAME of the file name) */
  name: string;
  tier: 'device' | 'edge' | 'cloud';
  /** model name → its blocks in order, as stored */
  models: Map<string, ScissionLayerBenchmark[]>;
}

/**
 * Split a Scission benchmark file name `TYPE-NAME.dat` the way scission_predict.py does
 * (text before the first '.', then exactly one '-'). Returns null for files Scission skips.
 */
export function scissionFileSystem(fileName: string): { tier: 'device' | 'edge' | 'cloud'; name: string } | null {
  const base = fileName.replace(/^.*[\\/]/, '');
  if (!/^.*-.*\.dat$/.test(base)) return null;
  const full = base.split('.')[0]!;
  const parts = full.split('-');
  if (parts.length !== 2) {
    throw kerfError('KERF_ERR_IMPORT', `${base}: a Scission benchmark file is named TYPE-NAME.dat with one '-' and no '.' in NAME`);
  }
  const tier = parts[0]!.toLowerCase();
  if (tier !== 'device' && tier !== 'edge' && tier !== 'cloud') {
    throw kerfError('KERF_ERR_IMPORT', `${base}: TYPE '${parts[0]}' is not device, edge or cloud`);
  }
  return { tier, name: parts[1]! };
}

function num(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  throw kerfError('KERF_ERR_IMPORT', `${what} is not a number`);
}

/**
 * Decode the bytes of a Scission `.dat` pickle. `fileName` gives tier and system name. With
 * `onlyModel`, the other models are checked to be lists but not converted (their lists are empty).
 */
export function parseScissionBenchmark(bytes: Uint8Array, fileName: string, onlyModel?: string): ScissionSystem {
  const sys = scissionFileSystem(fileName);
  if (!sys) throw kerfError('KERF_ERR_IMPORT', `${fileName}: not a Scission benchmark file name (TYPE-NAME.dat)`);
  const root = readPickle(bytes, fileName);
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    throw kerfError('KERF_ERR_IMPORT', `${fileName}: expected a dict of model name → list of LayerBenchmark`);
  }
  const models = new Map<string, ScissionLayerBenchmark[]>();
  for (const [model, list] of Object.entries(root as Record<string, unknown>)) {
    if (!Array.isArray(list)) throw kerfError('KERF_ERR_IMPORT', `${fileName}: model '${model}' is not a list`);
    if (onlyModel !== undefined && model !== onlyModel) { models.set(model, []); continue; }
    models.set(model, list.map((o, i) => {
      const where = `${fileName}: ${model}[${i}]`;
      if (!isPickledObject(o) || o.name !== 'LayerBenchmark' || typeof o.state !== 'object' || o.state === null) {
        throw kerfError('KERF_ERR_IMPORT', `${where} is not a LayerBenchmark object`);
      }
      const s = o.state as Record<string, unknown>;
      return {
        model: typeof s.model === 'string' ? s.model : model,
        inputLayer: num(s.input_layer, `${where}.input_layer`),
        outputLayer: num(s.output_layer, `${where}.output_layer`),
        secondPrediction: num(s.second_prediction, `${where}.second_prediction`),
        outputSize: num(s.output_size, `${where}.output_size`),
      };
    }));
  }
  return { name: sys.name, tier: sys.tier, models };
}

/** One kerf Profile per model of a Scission system; blocks keep Keras layer indices. */
export function scissionToProfiles(sys: ScissionSystem): Profile[] {
  const out: Profile[] = [];
  for (const [model, list] of sys.models) {
    const blocks: BlockProfile[] = list.map((b, index) => ({
      index,
      firstLayer: b.inputLayer,
      lastLayer: b.outputLayer,
      latency: { median: b.secondPrediction, p90: b.secondPrediction, min: b.secondPrediction, spread: 0, runs: 1 },
      outputBytes: b.outputSize,
      paramBytes: 0,
    }));
    out.push({
      schema: PROFILE_SCHEMA,
      model: { name: model },
      system: { name: sys.name, tier: sys.tier },
      granularity: 'imported',
      source: 'scission',
      blocks,
    });
  }
  return out;
}
