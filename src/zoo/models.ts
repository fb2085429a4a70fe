/** The architectures, written after torchvision's model definitions (torchvision/models/*.py). */
import { Net, type Act } from './net.js';

// ---- ResNet (torchvision resnet.py: v1.5, the stride sits on the 3×3 conv of a Bottleneck) ----

// The last BN of each residual branch starts small (≈ 1/√blocks) so the sum of branches stays O(1) with depth.
const RESIDUAL_GAMMA = 0.3;

function basicBlock(n: Net, x: Act, p: string, planes: number, stride: number, gamma: number): Act {
  let y = n.relu(n.convBn(x, `${p}.conv1`, `${p}.bn1`, planes, 3, { stride, pad: 1 }), `${p}.relu`);
  y = n.convBn(y, `${p}.conv2`, `${p}.bn2`, planes, 3, { pad: 1, gamma });
  const id = stride !== 1 || x.c !== planes
    ? n.convBn(x, `${p}.downsample.0`, `${p}.downsample.1`, planes, 1, { stride, gain: 1 }) : x;
  return n.relu(n.add(y, id, p), `${p}.relu`);
}

function bottleneck(n: Net, x: Act, p: string, planes: number, stride: number, gamma: number): Act {
  const out = planes * 4;
  let y = n.relu(n.convBn(x, `${p}.conv1`, `${p}.bn1`, planes, 1), `${p}.relu`);
  y = n.relu(n.convBn(y, `${p}.conv2`, `${p}.bn2`, planes, 3, { stride, pad: 1 }), `${p}.relu`);
  y = n.convBn(y, `${p}.conv3`, `${p}.bn3`, out, 1, { gamma });
  const id = stride !== 1 || x.c !== out
    ? n.convBn(x, `${p}.downsample.0`, `${p}.downsample.1`, out, 1, { stride, gain: 1 }) : x;
  return n.relu(n.add(y, id, p), `${p}.relu`);
}

export function resnet(n: Net, block: 'basic' | 'bottleneck', layers: readonly number[]): void {
  let x = n.input(3, 224, 224);
  x = n.relu(n.convBn(x, 'conv1', 'bn1', 64, 7, { stride: 2, pad: 3 }), 'relu');
  x = n.maxPool(x, 'maxpool', 3, 2, 1);
  const f = block === 'basic' ? basicBlock : bottleneck;
  const gamma = 1 / Math.sqrt(layers.reduce((a, b) => a + b, 0));
  layers.forEach((count, li) => {
    const planes = 64 << li;
    for (let k = 0; k < count; k++) x = f(n, x, `layer${li + 1}.${k}`, planes, k === 0 && li > 0 ? 2 : 1, gamma);
  });
  x = n.flatten(n.globalAvgPool(x, 'avgpool'));
  n.output(n.linear(x, 'fc', 1000, 1, 'logits'));
}

// ---- VGG (torchvision vgg.py, no BatchNorm) ----

export const VGG_CONFIGS: Readonly<Record<string, readonly (number | 'M')[]>> = {
  vgg11: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  vgg13: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  vgg16: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
  vgg19: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
};

export function vgg(n: Net, cfg: readonly (number | 'M')[]): void {
  let x = n.input(3, 224, 224);
  let i = 0; // torchvision's Sequential index: a conv takes two slots (Conv2d, ReLU), a pool one
  for (const v of cfg) {
    if (v === 'M') x = n.maxPool(x, `features.${i++}`, 2, 2);
    else { x = n.relu(n.conv(x, `features.${i}`, v, 3, { pad: 1, bias: true }), `features.${i + 1}`); i += 2; }
  }
  x = n.flatten(n.identityAvgPool(x, 'avgpool'));
  x = n.relu(n.linear(x, 'classifier.0', 4096), 'classifier.1');
  x = n.relu(n.linear(x, 'classifier.3', 4096), 'classifier.4');
  n.output(n.linear(x, 'classifier.6', 1000, 1, 'logits'));
}

// ---- MobileNetV2 (torchvision mobilenetv2.py, width 1.0) ----

function convBnRelu6(n: Net, x: Act, p: string, cout: number, k: number, stride = 1, groups = 1): Act {
  const y = n.convBn(x, `${p}.0`, `${p}.1`, cout, k, { stride, pad: (k - 1) / 2, groups });
  return n.relu6(y, `${p}.2`);
}

export function mobilenetV2(n: Net): void {
  const settings: [number, number, number, number][] = [
    [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
  ];
  let x = n.input(3, 224, 224);
  x = convBnRelu6(n, x, 'features.0', 32, 3, 2);
  let i = 1;
  for (const [t, c, count, s] of settings) {
    for (let k = 0; k < count; k++, i++) {
      const p = `features.${i}.conv`;
      const stride = k === 0 ? s : 1;
      const hidden = Math.round(x.c * t);
      let y = x, j = 0;
      if (t !== 1) y = convBnRelu6(n, y, `${p}.${j++}`, hidden, 1);
      y = convBnRelu6(n, y, `${p}.${j++}`, hidden, 3, stride, hidden);
      // The projection is linear (no activation), so its weights keep gain 1.
      y = n.convBn(y, `${p}.${j}`, `${p}.${j + 1}`, c, 1, { gain: 1, gamma: stride === 1 && x.c === c ? RESIDUAL_GAMMA : 1 });
      x = stride === 1 && x.c === c ? n.add(x, y, `features.${i}`) : y;
    }
  }
  x = convBnRelu6(n, x, `features.${i}`, 1280, 1);
  x = n.flatten(n.globalAvgPool(x, ''));
  n.output(n.linear(x, 'classifier.1', 1000, 1, 'logits'));
}

// ---- GoogLeNet (torchvision googlenet.py: BasicConv2d = Conv(no bias) → BN(eps 0.001) → ReLU; no aux heads) ----

function basicConv(n: Net, x: Act, p: string, cout: number, k: number, stride = 1, pad = 0): Act {
  return n.relu(n.convBn(x, `${p}.conv`, `${p}.bn`, cout, k, { stride, pad, eps: 0.001 }), p);
}

function inception(n: Net, x: Act, p: string, c1: number, c3r: number, c3: number, c5r: number, c5: number, pool: number): Act {
  const b1 = basicConv(n, x, `${p}.branch1`, c1, 1);
  const b2 = basicConv(n, basicConv(n, x, `${p}.branch2.0`, c3r, 1), `${p}.branch2.1`, c3, 3, 1, 1);
  // torchvision's "5×5" branch really is a 3×3 conv (a known quirk kept for its pretrained weights).
  const b3 = basicConv(n, basicConv(n, x, `${p}.branch3.0`, c5r, 1), `${p}.branch3.1`, c5, 3, 1, 1);
  const b4 = basicConv(n, n.maxPool(x, `${p}.branch4.0`, 3, 1, 1, true), `${p}.branch4.1`, pool, 1);
  return n.concat([b1, b2, b3, b4], p);
}

export function googlenet(n: Net): void {
  let x = n.input(3, 224, 224);
  x = basicConv(n, x, 'conv1', 64, 7, 2, 3);
  x = n.maxPool(x, 'maxpool1', 3, 2, 0, true);
  x = basicConv(n, x, 'conv2', 64, 1);
  x = basicConv(n, x, 'conv3', 192, 3, 1, 1);
  x = n.maxPool(x, 'maxpool2', 3, 2, 0, true);
  x = inception(n, x, 'inception3a', 64, 96, 128, 16, 32, 32);
  x = inception(n, x, 'inception3b', 128, 128, 192, 32, 96, 64);
  x = n.maxPool(x, 'maxpool3', 3, 2, 0, true);
  x = inception(n, x, 'inception4a', 192, 96, 208, 16, 48, 64);
  x = inception(n, x, 'inception4b', 160, 112, 224, 24, 64, 64);
  x = inception(n, x, 'inception4c', 128, 128, 256, 24, 64, 64);
  x = inception(n, x, 'inception4d', 112, 144, 288, 32, 64, 64);
  x = inception(n, x, 'inception4e', 256, 160, 320, 32, 128, 128);
  x = n.maxPool(x, 'maxpool4', 2, 2, 0, true);
  x = inception(n, x, 'inception5a', 256, 160, 320, 32, 128, 128);
  x = inception(n, x, 'inception5b', 384, 192, 384, 48, 128, 128);
  x = n.flatten(n.globalAvgPool(x, 'avgpool'));
  n.output(n.linear(x, 'fc', 1000, 1, 'logits'));
}
