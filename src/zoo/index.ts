/**
 * The model zoo: standard architectures (torchvision's layer structure) with seeded random weights,
 * for what-if planning without a model file. Pure: builds bytes in memory, no I/O.
 */
import type { ModelBuilder } from '../graph/builder.js';
import type { Dim } from '../graph/model.js';
import { kerfError } from '../errors.js';
import { Net, type BatchNormMode } from './net.js';
import { googlenet, mobilenetV2, resnet, vgg, VGG_CONFIGS } from './models.js';

export type { BatchNormMode } from './net.js';

/** Options of a zoo model. */
export interface ZooOptions {
  /** Batch dimension: a size (default 1) or a name such as 'N' for a dynamic batch. */
  batch?: number | string;
  /** Seed of the random weights (default 0); the same seed gives byte-identical models. */
  seed?: number;
  /** BatchNorm as separate nodes (default, as torchvision defines the net) or folded into Conv biases (as torch.onnx.export leaves them). */
  batchNorm?: BatchNormMode;
  /** Default-domain opset, 11–21 (default 13). */
  opset?: number;
}

/** What `kerf zoo list` shows about one architecture. */
export interface ZooInfo {
  readonly name: string;
  readonly description: string;
  /** Trainable parameters as torchvision counts them (BatchNorm weight and bias; not running statistics). */
  readonly params: number;
  /** BatchNorm running mean and variance elements (initializers that are not parameters). */
  readonly buffers: number;
  /** Multiply-accumulates of Conv and Gemm per 224×224 image. */
  readonly macs: number;
  /** Nodes in the graph. */
  readonly nodes: number;
  /** Op type → count. */
  readonly ops: Readonly<Record<string, number>>;
  readonly input: { readonly name: string; readonly dims: readonly Dim[] };
  readonly output: { readonly name: string; readonly dims: readonly Dim[] };
}

interface Entry { description: string; build(n: Net): void }

const ZOO: Readonly<Record<string, Entry>> = Object.freeze({
  resnet18: { description: 'ResNet-18: basic residual blocks [2,2,2,2]', build: (n) => resnet(n, 'basic', [2, 2, 2, 2]) },
  resnet34: { description: 'ResNet-34: basic residual blocks [3,4,6,3]', build: (n) => resnet(n, 'basic', [3, 4, 6, 3]) },
  resnet50: { description: 'ResNet-50: bottleneck blocks [3,4,6,3]', build: (n) => resnet(n, 'bottleneck', [3, 4, 6, 3]) },
  resnet101: { description: 'ResNet-101: bottleneck blocks [3,4,23,3]', build: (n) => resnet(n, 'bottleneck', [3, 4, 23, 3]) },
  resnet152: { description: 'ResNet-152: bottleneck blocks [3,8,36,3]', build: (n) => resnet(n, 'bottleneck', [3, 8, 36, 3]) },
  mobilenet_v2: { description: 'MobileNetV2: inverted residuals, depthwise convs, ReLU6', build: (n) => mobilenetV2(n) },
  vgg11: { description: 'VGG-11 (config A, no BatchNorm)', build: (n) => vgg(n, VGG_CONFIGS.vgg11!) },
  vgg13: { description: 'VGG-13 (config B, no BatchNorm)', build: (n) => vgg(n, VGG_CONFIGS.vgg13!) },
  vgg16: { description: 'VGG-16 (config D, no BatchNorm)', build: (n) => vgg(n, VGG_CONFIGS.vgg16!) },
  vgg19: { description: 'VGG-19 (config E, no BatchNorm)', build: (n) => vgg(n, VGG_CONFIGS.vgg19!) },
  googlenet: { description: 'GoogLeNet (Inception v1, torchvision BN variant, no aux heads): 4-branch concats', build: (n) => googlenet(n) },
});

/** Names of the zoo's architectures. */
export function zooNames(): string[] {
  return Object.keys(ZOO);
}

/** Resolves a user-typed name ('ResNet-50', 'mobilenetv2', 'inception') to a zoo name, or throws KERF_ERR_USAGE. */
export function resolveZooName(name: string): string {
  const key = name.toLowerCase().replace(/[-\s]/g, '_').replace(/^zoo:/, '');
  const aliases: Record<string, string> = { mobilenetv2: 'mobilenet_v2', mobilenet: 'mobilenet_v2', inception: 'googlenet', inception_v1: 'googlenet' };
  const compact = key.replace(/_/g, '');
  const hit = ZOO[key] ? key : aliases[compact] ?? zooNames().find((z) => z.replace(/_/g, '') === compact);
  if (!hit) throw kerfError('KERF_ERR_USAGE', `unknown zoo model '${name}' (one of: ${zooNames().join(', ')})`);
  return hit;
}

function net(name: string, opts: ZooOptions): Net {
  const key = resolveZooName(name);
  const opset = opts.opset ?? 13;
  if (!Number.isInteger(opset) || opset < 11 || opset > 21) throw kerfError('KERF_ERR_USAGE', `zoo model '${key}': opset ${opset} is outside 11–21`);
  const batch = opts.batch ?? 1;
  if (typeof batch === 'number' && !(Number.isInteger(batch) && batch >= 1)) throw kerfError('KERF_ERR_USAGE', `zoo model '${key}': batch ${batch} is not a positive integer`);
  if (typeof batch === 'string' && !/^[A-Za-z_][\w]*$/.test(batch)) throw kerfError('KERF_ERR_USAGE', `zoo model '${key}': batch '${batch}' is not a dimension name`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw kerfError('KERF_ERR_USAGE', `zoo model '${key}': seed ${seed} is not an integer`);
  const bn = opts.batchNorm ?? 'node';
  if (bn !== 'node' && bn !== 'folded') throw kerfError('KERF_ERR_USAGE', `zoo model '${key}': batchNorm '${String(bn)}' is not 'node' or 'folded'`);
  const n = new Net({ seed, batch, batchNorm: bn, opset, name: key });
  n.b.meta('kerf.zoo', key).meta('kerf.zoo.seed', String(seed));
  ZOO[key]!.build(n);
  return n;
}

/** A zoo model's builder with weights not yet generated (they are made when it is serialised). */
export function zooBuilder(name: string, opts: ZooOptions = {}): ModelBuilder {
  return net(name, opts).b;
}

/** Facts about one zoo model, without generating its weights. */
export function zooInfo(name: string, opts: ZooOptions = {}): ZooInfo {
  const n = net(name, opts);
  const batch = opts.batch ?? 1;
  return Object.freeze({
    name: resolveZooName(name), description: ZOO[resolveZooName(name)]!.description,
    params: n.params, buffers: n.buffers, macs: n.macs, nodes: n.b.nodeCount, ops: Object.freeze(n.b.opCounts()),
    input: { name: 'input', dims: [batch, 3, 224, 224] }, output: { name: 'logits', dims: [batch, 1000] },
  });
}

/** Facts about every zoo model. */
export function zooList(opts: ZooOptions = {}): ZooInfo[] {
  return zooNames().map((z) => zooInfo(z, opts));
}

/** The serialised ONNX model (input `input` [batch,3,224,224] float32, output `logits` [batch,1000]). */
export function zooModel(name: string, opts: ZooOptions = {}): Uint8Array {
  return zooBuilder(name, opts).toBytes();
}
