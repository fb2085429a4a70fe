/**
 * Layer helpers that write torchvision-shaped ONNX graphs: names, attributes and op order as
 * torch.onnx.export (opset 13, eval mode) leaves them, while counting parameters and multiply-accumulates.
 */
import { ModelBuilder, Rng, seedFor, tensorProto, type AttrValue } from '../graph/builder.js';
import type { Dim } from '../graph/model.js';

/** A 4-D activation [batch, c, h, w] (or 2-D [batch, c] when h = w = 0 after Flatten). */
export interface Act { readonly name: string; readonly c: number; readonly h: number; readonly w: number }

/** How BatchNorm layers appear: separate BatchNormalization nodes, or folded into the preceding Conv's bias. */
export type BatchNormMode = 'node' | 'folded';

export interface NetOptions { seed: number; batch: Dim; batchNorm: BatchNormMode; opset: number; name: string }

export interface ConvOptions { stride?: number; pad?: number; groups?: number; bias?: boolean; gain?: number }

/** torch's scope path: 'layer1.0.conv1' → ['layer1', 'layer1.0', 'conv1'] (Sequential children keep their parent's name). */
function scope(path: string): string[] {
  const out: string[] = [];
  for (const part of path.split('.').filter((p) => p !== '')) {
    if (/^\d+$/.test(part) && out.length > 0) out.push(`${out[out.length - 1]}.${part}`);
    else out.push(part);
  }
  return out;
}

export class Net {
  readonly b: ModelBuilder;
  /** Multiply-accumulates per image of Conv and Gemm nodes. */
  macs = 0;
  /** Trainable parameters as torchvision counts them (BatchNorm weight and bias, not running statistics). */
  params = 0;
  /** BatchNorm running statistics (initializers that are not parameters). */
  buffers = 0;
  private readonly used = new Set<string>();

  constructor(readonly opts: NetOptions) {
    this.b = new ModelBuilder({ opset: opts.opset, name: opts.name, producerName: 'kerf zoo' });
  }

  /** A unique torch-style node name; a reused module gets '_1', '_2' on its last scope as torch does. */
  private nodeName(path: string, op: string): string {
    const segs = scope(path);
    const base = (s: string[]) => '/' + [...s, op].join('/');
    let name = base(segs);
    for (let k = 1; this.used.has(name); k++) {
      // torch suffixes a reused module's scope (relu_1/Relu) but a repeated op within one scope (Constant_1).
      name = segs.length === 0 || op === 'Constant' ? '/' + [...segs, `${op}_${k}`].join('/')
        : base([...segs.slice(0, -1), `${segs[segs.length - 1]}_${k}`]);
    }
    this.used.add(name);
    return name;
  }

  private op(opType: string, path: string, inputs: string[], attrs: Parameters<ModelBuilder['node']>[3] = {}, outName?: string): string {
    const name = this.nodeName(path, opType);
    return this.b.node(opType, inputs, [outName ?? `${name}_output_0`], attrs, { name })[0]!;
  }

  private weight(name: string, dims: number[], make: (r: Rng) => Float32Array, param = true): string {
    const seed = seedFor(this.opts.seed, name);
    const n = dims.reduce((a, b) => a * b, 1);
    if (param) this.params += n; else this.buffers += n;
    return this.b.initializer(name, 'float32', dims, () => make(new Rng(seed)));
  }

  input(c: number, h: number, w: number): Act {
    return { name: this.b.input('input', 'float32', [this.opts.batch, c, h, w]), c, h, w };
  }

  output(x: Act, name = 'logits'): void {
    this.b.output(name, 'float32', [this.opts.batch, x.c]);
  }

  conv(x: Act, path: string, cout: number, k: number, o: ConvOptions = {}): Act {
    const stride = o.stride ?? 1, pad = o.pad ?? 0, groups = o.groups ?? 1;
    const h = Math.floor((x.h + 2 * pad - k) / stride) + 1;
    const w = Math.floor((x.w + 2 * pad - k) / stride) + 1;
    const wdims = [cout, x.c / groups, k, k];
    const inputs = [x.name, this.weight(`${path}.weight`, wdims, (r) => r.he(wdims, o.gain ?? 2))];
    if (o.bias) inputs.push(this.weight(`${path}.bias`, [cout], (r) => r.uniforms(cout, -0.01, 0.01)));
    this.macs += cout * h * w * (x.c / groups) * k * k;
    const y = this.op('Conv', path, inputs, {
      dilations: [1, 1], group: groups, kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [stride, stride],
    });
    return { name: y, c: cout, h, w };
  }

  /**
   * Conv without bias then BatchNorm, as torchvision writes them; in 'folded' mode one Conv with a bias,
   * as torch.onnx.export's constant folding leaves it. `gamma` scales the BatchNorm weight (a smaller one
   * on a residual branch's last BN keeps activations from growing with depth).
   */
  convBn(x: Act, convPath: string, bnPath: string, cout: number, k: number, o: ConvOptions & { eps?: number; gamma?: number } = {}): Act {
    if (this.opts.batchNorm === 'folded') return this.conv(x, convPath, cout, k, { ...o, bias: true });
    const y = this.conv(x, convPath, cout, k, { ...o, bias: false });
    return this.bn(y, bnPath, o.eps ?? 1e-5, o.gamma ?? 1);
  }

  bn(x: Act, path: string, eps = 1e-5, gamma = 1): Act {
    const c = x.c;
    const inputs = [
      x.name,
      this.weight(`${path}.weight`, [c], (r) => r.uniforms(c, 0.9 * gamma, 1.1 * gamma)),
      this.weight(`${path}.bias`, [c], (r) => r.uniforms(c, -0.01, 0.01)),
      this.weight(`${path}.running_mean`, [c], (r) => r.uniforms(c, -0.01, 0.01), false),
      this.weight(`${path}.running_var`, [c], (r) => r.uniforms(c, 0.9, 1.1), false),
    ];
    const y = this.op('BatchNormalization', path, inputs, { epsilon: eps, momentum: 0.9 });
    return { ...x, name: y };
  }

  relu(x: Act, path: string): Act {
    return { ...x, name: this.op('Relu', path, [x.name]) };
  }

  /** ReLU6 as torch exports it at opset 13: Clip with two Constant inputs. */
  relu6(x: Act, path: string): Act {
    const lo = this.op('Constant', path, [], { value: this.scalar(0) });
    const hi = this.op('Constant', path, [], { value: this.scalar(6) });
    return { ...x, name: this.op('Clip', path, [x.name, lo, hi]) };
  }

  /** A 0-d float tensor for a Constant's value attribute. */
  private scalar(v: number) {
    return tensorProto('', 'float32', [], [v]);
  }

  maxPool(x: Act, path: string, k: number, stride: number, pad = 0, ceil = false): Act {
    const h = poolOut(x.h, k, stride, pad, ceil), w = poolOut(x.w, k, stride, pad, ceil);
    const attrs: Record<string, AttrValue> = { ceil_mode: ceil ? 1 : 0, kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [stride, stride] };
    return { name: this.op('MaxPool', path, [x.name], attrs), c: x.c, h, w };
  }

  /** AdaptiveAvgPool2d to the input's own size, as torch exports it: a 1×1 AveragePool. */
  identityAvgPool(x: Act, path: string): Act {
    return { ...x, name: this.op('AveragePool', path, [x.name], { ceil_mode: 0, kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1] }) };
  }

  globalAvgPool(x: Act, path: string): Act {
    return { name: this.op('GlobalAveragePool', path, [x.name]), c: x.c, h: 1, w: 1 };
  }

  flatten(x: Act, path = ''): Act {
    return { name: this.op('Flatten', path, [x.name], { axis: 1 }), c: x.c * x.h * x.w, h: 1, w: 1 };
  }

  add(a: Act, b: Act, path: string): Act {
    return { ...a, name: this.op('Add', path, [a.name, b.name]) };
  }

  concat(xs: Act[], path: string): Act {
    const c = xs.reduce((s, x) => s + x.c, 0);
    return { name: this.op('Concat', path, xs.map((x) => x.name), { axis: 1 }), c, h: xs[0]!.h, w: xs[0]!.w };
  }

  /** torch Linear → Gemm(transB=1); gain 2 before a ReLU, 1 for the final classifier. */
  linear(x: Act, path: string, out: number, gain = 2, outName?: string): Act {
    const wdims = [out, x.c];
    const inputs = [x.name, this.weight(`${path}.weight`, wdims, (r) => r.he(wdims, gain)),
      this.weight(`${path}.bias`, [out], (r) => r.uniforms(out, -0.01, 0.01))];
    this.macs += x.c * out;
    return { name: this.op('Gemm', path, inputs, { alpha: 1, beta: 1, transB: 1 }, outName), c: out, h: 1, w: 1 };
  }
}

/** torch's pooling output size, including its ceil_mode rule that the last window must start inside the input. */
export function poolOut(n: number, k: number, s: number, p: number, ceil: boolean): number {
  let o = (ceil ? Math.ceil((n + 2 * p - k) / s) : Math.floor((n + 2 * p - k) / s)) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}
