import { create } from '@bufbuild/protobuf';
import {
  GraphProtoSchema, ModelProtoSchema, TensorShapeProtoSchema, TensorShapeProto_DimensionSchema, TypeProtoSchema,
  TypeProto_TensorSchema, ValueInfoProtoSchema, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from 'onnx-buf';
import { kerfError } from '../errors.js';
import { serializeModel } from './builder.js';
import { dtypeToOnnx, tensorBytes, type DType } from './dtypes.js';
import { checkCutIds, constInitializers, type Analysis } from './cuts.js';
import type { Dim, Model } from './model.js';

/** ONNX bytes of a model proto, each large raw_data copied once (see builder.ts). */
export { serializeModel };

/** A tensor as the manifest describes it. */
export interface TensorSpec { name: string; dtype: DType; shape: number[]; bytes: number }

/** One sub-model of a split. */
export interface Part {
  index: number;
  /** positions in the analysis order this part runs */
  first: number;
  last: number;
  /** tensors the part reads from earlier parts or the graph inputs */
  inputs: TensorSpec[];
  /** tensors the part makes that later parts or the caller need */
  outputs: TensorSpec[];
  /** tensors the part receives and passes on untouched (skip connections, early outputs) */
  carry: TensorSpec[];
  proto: ModelProto;
}

export interface Split {
  /** cut ids the model was split at */
  cuts: number[];
  parts: Part[];
}

/**
 * Split the model at the given cut ids into standalone sub-models. Each part keeps the model's
 * opset imports, functions and metadata, only the initializers it uses, and the constant
 * subgraphs it needs (recomputed, never shipped). Tensors keep their original names, so parts
 * chain by name.
 */
export function splitModel(model: Model, analysis: Analysis, cutIds: readonly number[]): Split {
  const ids = checkCutIds(model, analysis, cutIds);
  const n = analysis.order.length;
  const bounds = [-1, ...ids, n - 1];
  const needs = constInitializers(model);
  const graphOutputs = model.outputs.map((o) => o.name);
  const staticShapes = model.inputs.every((v) => v.type?.dims?.every((d) => typeof d === 'number'));
  const declared = new Map<string, ValueInfoProto>();
  for (const v of [...model.proto.graph!.input, ...model.proto.graph!.output]) declared.set(v.name, v);
  const spec = (name: string): TensorSpec => tensorSpec(model, analysis, name);
  const crossingAt = (c: number): string[] => (c < 0 ? [] : c >= n - 1 ? graphOutputs : analysis.cuts[c]!.tensors);

  const parts: Part[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const first = bounds[k]! + 1, last = bounds[k + 1]!;
    const mainNodes = analysis.order.slice(first, last + 1);
    const produced = new Set<string>();
    const inits = new Set<string>();
    const constNodes = new Set<number>();
    const addConst = (t: string) => {
      const p = model.producer.get(t);
      if (p === undefined || !model.nodes[p]!.constant || constNodes.has(p)) return;
      constNodes.add(p);
      for (const x of model.nodes[p]!.inputs) if (x) addConst(x);
    };
    for (const k2 of mainNodes) {
      const node = model.nodes[k2]!;
      for (const o of node.outputs) if (o) produced.add(o);
      for (const i of needs(k2)) inits.add(i);
      for (const t of [...node.inputs, ...node.implicitInputs]) if (t) addConst(t);
    }
    const before = new Set(k === 0 ? model.inputs.map((v) => v.name) : crossingAt(bounds[k]!));
    const isLastPart = k + 2 === bounds.length;
    const after = crossingAt(isLastPart ? n - 1 : bounds[k + 1]!);
    // Graph outputs that are constants are made by the last part.
    if (isLastPart) {
      for (const o of graphOutputs) {
        if (model.initializers.has(o)) inits.add(o);
        else if (model.producer.has(o) && model.nodes[model.producer.get(o)!]!.constant) { addConst(o); for (const x of needs(model.producer.get(o)!)) inits.add(x); }
      }
      for (const c of constNodes) for (const o of model.nodes[c]!.outputs) if (o) produced.add(o);
    }
    const inputs: string[] = [];
    const seen = new Set<string>();
    for (const k2 of mainNodes) {
      const node = model.nodes[k2]!;
      for (const t of [...node.inputs, ...node.implicitInputs]) {
        if (!t || seen.has(t) || produced.has(t) || inits.has(t)) continue;
        const p = model.producer.get(t);
        if (p !== undefined && model.nodes[p]!.constant) continue;
        seen.add(t);
        if (!before.has(t)) throw kerfError('KERF_ERR_CUT', `${model.source}: part ${k} needs '${t}', which does not cross its input cut`);
        inputs.push(t);
      }
    }
    const outputs = after.filter((t) => produced.has(t));
    const carry = after.filter((t) => !produced.has(t) && before.has(t));
    const nodes = [...constNodes, ...mainNodes].sort((a, b) => a - b).map((i) => model.nodes[i]!.proto);
    const valueInfo = (name: string): ValueInfoProto => {
      const d = declared.get(name);
      if (d && d.type) return d;
      const s = spec(name);
      const dims: Dim[] = staticShapes ? s.shape : s.shape.map(() => null);
      return makeValueInfo(name, s.dtype, dims);
    };
    const proto = rebuildModel(model, {
      graphName: `${model.proto.graph!.name || model.name}_part${k}`,
      nodes,
      initializers: [...inits].map((i) => model.initializers.get(i)!),
      inputs: inputs.map(valueInfo),
      outputs: outputs.map(valueInfo),
      docString: `part ${k} of ${model.name} split by kerf at cuts [${ids.join(', ')}]`,
    });
    parts.push({ index: k, first, last, inputs: inputs.map(spec), outputs: outputs.map(spec), carry: carry.map(spec), proto });
  }
  return { cuts: ids, parts };
}

/** A tensor as the manifest describes it, for the analysed input shapes; throws naming it when unknown. */
export function tensorSpec(model: Model, analysis: Analysis, name: string): TensorSpec {
  const i = analysis.tensors.get(name);
  if (!i) throw kerfError('KERF_ERR_SHAPE', `${model.source}: the shape of tensor '${name}' is unknown`);
  return { name, dtype: i.dtype, shape: [...i.dims], bytes: tensorBytes(i.dtype, i.dims) };
}

/** A new ModelProto with the model's header (IR version, opsets, functions, metadata) and the given graph. */
export function rebuildModel(model: Model, g: {
  graphName?: string; nodes: NodeProto[]; initializers: TensorProto[]; inputs: ValueInfoProto[]; outputs: ValueInfoProto[];
  valueInfo?: ValueInfoProto[]; docString?: string;
}): ModelProto {
  const src = model.proto;
  const graph = create(GraphProtoSchema, {
    name: g.graphName ?? src.graph!.name,
    node: g.nodes,
    initializer: g.initializers,
    input: g.inputs,
    output: g.outputs,
    valueInfo: g.valueInfo ?? [],
  });
  return create(ModelProtoSchema, {
    irVersion: src.irVersion,
    opsetImport: src.opsetImport,
    producerName: src.producerName || 'kerf',
    producerVersion: src.producerVersion,
    domain: src.domain,
    modelVersion: src.modelVersion,
    docString: g.docString ?? src.docString,
    graph,
    metadataProps: src.metadataProps,
    functions: src.functions,
  });
}

/** The whole normalised model (Constant nodes folded, sorted, external data inlined). */
export function normalisedModel(model: Model, extraOutputs: string[] = []): ModelProto {
  const g = model.proto.graph!;
  const outs = [...g.output, ...extraOutputs.map((name) => create(ValueInfoProtoSchema, { name }))];
  return rebuildModel(model, {
    nodes: model.nodes.map((n) => n.proto),
    initializers: [...model.initializers.values()],
    inputs: g.input.filter((v) => !model.initializers.has(v.name)),
    outputs: outs,
  });
}

export function makeValueInfo(name: string, dtype: DType, dims: Dim[] | null): ValueInfoProto {
  const shape = dims === null ? undefined : create(TensorShapeProtoSchema, {
    dim: dims.map((d) => create(TensorShapeProto_DimensionSchema,
      d === null ? {} : typeof d === 'number' ? { value: { case: 'dimValue', value: BigInt(d) } } : { value: { case: 'dimParam', value: d } })),
  });
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType: dtypeToOnnx(dtype), ...(shape ? { shape } : {}) }) },
    }),
  });
}

