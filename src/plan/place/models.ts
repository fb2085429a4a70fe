/**
 * Per-layer costs of ResNet-50, MobileNetV2 and GoogLeNet (Inception v1) at 224×224, computed
 * from the architectures (shapes, FLOPs, parameters, crossing activations), for the placement
 * benchmark and `kerf place <name>` without a profile. Stands in until the zoo (ONNX models)
 * and the graph analysis (per-cut crossing bytes, per-block FLOPs) can feed placement directly.
 *
 * Conventions: float32; FLOPs = 2 × multiply-accumulates of Conv and Gemm (as in profiles);
 * BatchNorm folded into the preceding Conv (as ONNX export does), so each Conv has a bias.
 * Blocks are the runs between cut points: a cut inside a residual unit also carries the
 * skip tensor. Compute seconds = ops / (GFLOP/s), where ops also count pooling and adds so
 * that no block is free.
 */
import type { PlaceBlock, PlaceModel } from './types.js';

interface Shape { c: number; h: number; w: number }
interface Layer { flops: number; ops: number; params: number; out: Shape }

const F32 = 4;
const elems = (s: Shape): number => s.c * s.h * s.w;
const bytes = (s: Shape): number => elems(s) * F32;

function conv(x: Shape, cout: number, k: number, stride = 1, pad = Math.floor(k / 2), groups = 1): Layer {
  const h = Math.floor((x.h + 2 * pad - k) / stride) + 1;
  const w = Math.floor((x.w + 2 * pad - k) / stride) + 1;
  const out = { c: cout, h, w };
  const macs = cout * h * w * (x.c / groups) * k * k;
  return { flops: 2 * macs, ops: 2 * macs, params: cout * (x.c / groups) * k * k + cout, out };
}

function pool(x: Shape, k: number, stride: number, pad: number, ceil: boolean): Layer {
  const f = ceil ? Math.ceil : Math.floor;
  let h = f((x.h + 2 * pad - k) / stride) + 1;
  let w = f((x.w + 2 * pad - k) / stride) + 1;
  // a ceil-mode window must start inside the input (PyTorch's rule)
  if (ceil && (h - 1) * stride >= x.h + pad) h--;
  if (ceil && (w - 1) * stride >= x.w + pad) w--;
  const out = { c: x.c, h, w };
  return { flops: 0, ops: elems(out) * k * k, params: 0, out };
}

function gap(x: Shape): Layer {
  return { flops: 0, ops: elems(x), params: 0, out: { c: x.c, h: 1, w: 1 } };
}

function fc(x: Shape, n: number): Layer {
  const macs = elems(x) * n;
  return { flops: 2 * macs, ops: 2 * macs, params: macs + n, out: { c: n, h: 1, w: 1 } };
}

/** Accumulates blocks: each block sums its layers and records what crosses its end cut. */
class Builder {
  readonly blocks: (PlaceBlock & { name: string; ops: number })[] = [];
  private inBytes: number;
  constructor(input: Shape) { this.inBytes = bytes(input); }
  /** `layers` run inside the block; `crossing` are the tensors live at its end cut;
   * `inner` the largest tensor produced inside that is not among them */
  block(name: string, layers: Layer[], crossing: Shape[], inner = 0): void {
    const out = crossing.reduce((a, s) => a + bytes(s), 0);
    let flops = 0, ops = 0, params = 0;
    for (const l of layers) { flops += l.flops; ops += l.ops; params += l.params; }
    this.blocks.push({
      name, seconds: 0, ops, flops, paramBytes: params * F32, outputBytes: out,
      activationBytes: this.inBytes + out + inner,
    });
    this.inBytes = out;
  }
}

const INPUT: Shape = { c: 3, h: 224, w: 224 };

function resnet50(): Builder {
  const b = new Builder(INPUT);
  const c1 = conv(INPUT, 64, 7, 2, 3);
  b.block('conv1', [c1], [c1.out]);
  const mp = pool(c1.out, 3, 2, 1, false);
  b.block('maxpool', [mp], [mp.out]);
  let x = mp.out;
  const stages: [number, number, number, number][] = [[3, 64, 256, 1], [4, 128, 512, 2], [6, 256, 1024, 2], [3, 512, 2048, 2]];
  stages.forEach(([count, width, outC, stride], si) => {
    for (let u = 0; u < count; u++) {
      const s = u === 0 ? stride : 1;
      const name = `layer${si + 1}.${u}`;
      const a = conv(x, width, 1, 1, 0);
      b.block(`${name}.conv1`, [a], [a.out, x]);
      const m = conv(a.out, width, 3, s, 1);
      b.block(`${name}.conv2`, [m], [m.out, x]);
      const c = conv(m.out, outC, 1, 1, 0);
      const layers = [c];
      let inner = bytes(c.out);
      if (u === 0) { const d = conv(x, outC, 1, s, 0); layers.push(d); inner += bytes(d.out); }
      layers.push({ flops: 0, ops: elems(c.out), params: 0, out: c.out }); // add + relu
      b.block(`${name}.conv3`, layers, [c.out], inner);
      x = c.out;
    }
  });
  const g = gap(x);
  const f = fc(g.out, 1000);
  b.block('avgpool+fc', [g, f], [f.out]);
  return b;
}

function mobilenetV2(): Builder {
  const b = new Builder(INPUT);
  const c0 = conv(INPUT, 32, 3, 2, 1);
  b.block('features.0', [c0], [c0.out]);
  let x = c0.out;
  const settings: [number, number, number, number][] = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
  let idx = 1;
  for (const [t, c, count, stride] of settings) {
    for (let u = 0; u < count; u++) {
      const s = u === 0 ? stride : 1;
      const residual = s === 1 && x.c === c;
      const keep = residual ? [x] : [];
      const name = `features.${idx++}`;
      let h = x;
      if (t !== 1) {
        const e = conv(x, x.c * t, 1, 1, 0);
        b.block(`${name}.expand`, [e], [e.out, ...keep]);
        h = e.out;
      }
      const d = conv(h, h.c, 3, s, 1, h.c);
      b.block(`${name}.dw`, [d], [d.out, ...keep]);
      const p = conv(d.out, c, 1, 1, 0);
      const layers = [p];
      if (residual) layers.push({ flops: 0, ops: elems(p.out), params: 0, out: p.out });
      b.block(`${name}.project`, layers, [p.out]);
      x = p.out;
    }
  }
  const last = conv(x, 1280, 1, 1, 0);
  b.block('features.18', [last], [last.out]);
  const g = gap(last.out);
  const f = fc(g.out, 1000);
  b.block('avgpool+classifier', [g, f], [f.out]);
  return b;
}

function googlenet(): Builder {
  const b = new Builder(INPUT);
  const c1 = conv(INPUT, 64, 7, 2, 3);
  b.block('conv1', [c1], [c1.out]);
  const p1 = pool(c1.out, 3, 2, 0, true);
  b.block('maxpool1', [p1], [p1.out]);
  const c2 = conv(p1.out, 64, 1, 1, 0);
  b.block('conv2', [c2], [c2.out]);
  const c3 = conv(c2.out, 192, 3, 1, 1);
  b.block('conv3', [c3], [c3.out]);
  const p2 = pool(c3.out, 3, 2, 0, true);
  b.block('maxpool2', [p2], [p2.out]);
  let x = p2.out;
  const inception = (name: string, c1x1: number, c3r: number, c3x3: number, c5r: number, c5x5: number, pp: number): void => {
    const a = conv(x, c1x1, 1, 1, 0);
    const b3r = conv(x, c3r, 1, 1, 0);
    const b3 = conv(b3r.out, c3x3, 3, 1, 1);
    const b5r = conv(x, c5r, 1, 1, 0);
    const b5 = conv(b5r.out, c5x5, 5, 1, 2);
    const bp = pool(x, 3, 1, 1, true);
    const bpc = conv(bp.out, pp, 1, 1, 0);
    const out = { c: c1x1 + c3x3 + c5x5 + pp, h: x.h, w: x.w };
    // while the last branch runs, the reduced maps of the others are still held by the concat
    const inner = bytes(b3r.out) + bytes(b5r.out) + bytes(bp.out);
    b.block(`inception${name}`, [a, b3r, b3, b5r, b5, bp, bpc], [out], inner);
    x = out;
  };
  inception('3a', 64, 96, 128, 16, 32, 32);
  inception('3b', 128, 128, 192, 32, 96, 64);
  const p3 = pool(x, 3, 2, 0, true);
  b.block('maxpool3', [p3], [p3.out]);
  x = p3.out;
  inception('4a', 192, 96, 208, 16, 48, 64);
  inception('4b', 160, 112, 224, 24, 64, 64);
  inception('4c', 128, 128, 256, 24, 64, 64);
  inception('4d', 112, 144, 288, 32, 64, 64);
  inception('4e', 256, 160, 320, 32, 128, 128);
  const p4 = pool(x, 3, 2, 0, true);
  b.block('maxpool4', [p4], [p4.out]);
  x = p4.out;
  inception('5a', 256, 160, 320, 32, 128, 128);
  inception('5b', 384, 192, 384, 48, 128, 128);
  const g = gap(x);
  const f = fc(g.out, 1000);
  b.block('avgpool+fc', [g, f], [f.out]);
  return b;
}

export const PLACE_MODELS = { resnet50, mobilenetv2: mobilenetV2, inception: googlenet } as const;
export type PlaceModelName = keyof typeof PLACE_MODELS;

/**
 * A built-in model as placement input: per-block seconds at `gflops` GFLOP/s (default 8, a
 * Raspberry-Pi-4-class node running fp32 convolutions; an assumption, not a measurement).
 */
export function zooPlaceModel(name: PlaceModelName, gflops = 8): PlaceModel & { blockNames: string[] } {
  const b = PLACE_MODELS[name]();
  const blocks: PlaceBlock[] = b.blocks.map((x, i) => ({
    seconds: x.ops / (gflops * 1e9),
    outputBytes: x.outputBytes,
    paramBytes: x.paramBytes,
    activationBytes: x.activationBytes!,
    flops: x.flops!,
    cutId: i,
  }));
  delete blocks[blocks.length - 1]!.cutId;
  return { name, inputBytes: bytes(INPUT), blocks, blockNames: b.blocks.map((x) => x.name) };
}
