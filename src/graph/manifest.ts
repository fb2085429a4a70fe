import { tensorSpec, type Split, type TensorSpec } from './slice.js';
import type { Model } from './model.js';
import type { Analysis } from './cuts.js';

/** manifest.json written beside the parts of a split (docs/schema/manifest.schema.json). */
export interface Manifest {
  schema: 'kerf.manifest/v1';
  model: { name: string; file?: string; sha256?: string };
  /** input shapes the split was analysed for */
  inputShapes: Record<string, number[]>;
  /** cut ids (positions in kerf's topological order, as `kerf inspect` lists them) */
  cuts: number[];
  /** the order strategy the cut ids refer to */
  order: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  parts: ManifestPart[];
}

export interface ManifestPart {
  file: string;
  /** positions in the order this part runs */
  first: number;
  last: number;
  nodes: number;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** tensors received and forwarded untouched */
  carry: TensorSpec[];
}

export const MANIFEST_SCHEMA = 'kerf.manifest/v1' as const;

export function partFileName(i: number): string { return `part-${i}.onnx`; }

export function makeManifest(
  model: Model & { file?: string; sha256?: string }, analysis: Analysis, split: Split, inputShapes: Record<string, number[]>,
): Manifest {
  const spec = (name: string): TensorSpec => tensorSpec(model, analysis, name);
  return {
    schema: MANIFEST_SCHEMA,
    model: { name: model.name, ...(model.file ? { file: model.file } : {}), ...(model.sha256 ? { sha256: model.sha256 } : {}) },
    inputShapes,
    cuts: split.cuts,
    order: analysis.orderStrategy,
    inputs: model.inputs.map((v) => spec(v.name)),
    outputs: model.outputs.filter((v) => analysis.tensors.has(v.name)).map((v) => spec(v.name)),
    parts: split.parts.map((p) => ({
      file: partFileName(p.index), first: p.first, last: p.last, nodes: p.last - p.first + 1,
      inputs: p.inputs, outputs: p.outputs, carry: p.carry,
    })),
  };
}
