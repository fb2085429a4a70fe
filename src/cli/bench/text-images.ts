/**
 * Text images the benchmarks render themselves (no data set download): SVG text in a few
 * fonts, sizes, colours and rotations, rasterised with @resvg/resvg-js, plus seeded pixel noise,
 * as PaddleOCR-style input tensors (RGB, (x/255 − mean)/std, NCHW float32).
 */
import { createRequire } from 'node:module';
import { kerfError } from '../../errors.js';
import { mulberry32 } from '../../util/prng.js';

export interface TextImageSpec {
  text: string;
  width: number;
  height: number;
  font: string;
  /** font size in pixels */
  size: number;
  /** Gaussian-ish pixel noise, in 0..255 units (0: none) */
  noise: number;
  seed: number;
  /** degrees; 180 renders the text upside down (what PaddleOCR's cls tells apart) */
  rotate?: number;
  /** more SVG elements drawn after the text (e.g. further lines) */
  extraSvg?: string;
  /** left x and baseline y of the text (default: centred vertically, 8 px from the left) */
  x?: number;
  y?: number;
}

/** Fonts the machines here have (Debian fonts-dejavu-core, fonts-liberation). */
export const FONTS = ['DejaVu Sans', 'DejaVu Serif', 'Liberation Mono', 'Liberation Sans'];

const WORDS = ['kerf', 'split', 'edge', 'cloud', 'device', 'tensor', 'codec', 'latency', 'zstd', 'model', 'network', 'Paddle', 'ORANGE', 'river', 'Index', 'value', 'frame', 'token'];

/** A short line of words and digits, seeded. */
export function sampleText(seed: number, words = 3): string {
  const r = mulberry32(seed * 7919 + 1);
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(r() * WORDS.length)]!);
  out.push(String(Math.floor(r() * 9000) + 1000));
  return out.join(' ');
}

let resvg: { Resvg: new (svg: string, opts: object) => { render(): { width: number; height: number; pixels: Buffer } } } | null = null;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** RGBA pixels of a rendered text image. */
export function renderText(spec: TextImageSpec): { width: number; height: number; rgba: Uint8Array } {
  if (!resvg) {
    try { resvg = createRequire(import.meta.url)('@resvg/resvg-js'); } catch {
      throw kerfError('KERF_ERR_USAGE', 'rendering text images needs the npm package @resvg/resvg-js: run npm ci');
    }
  }
  const y = spec.y ?? Math.round(spec.height / 2 + spec.size * 0.35);
  const x = spec.x ?? 8;
  const rot = spec.rotate ? ` transform="rotate(${spec.rotate} ${spec.width / 2} ${spec.height / 2})"` : '';
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${spec.width}" height="${spec.height}">` +
    `<rect width="100%" height="100%" fill="rgb(245,243,236)"/>` +
    (spec.text ? `<text x="${x}" y="${y}" font-family="${esc(spec.font)}" font-size="${spec.size}" fill="rgb(20,24,32)"${rot}>${esc(spec.text)}</text>` : '') +
    (spec.extraSvg ?? '') + '</svg>';
  const img = new resvg!.Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: spec.font } }).render();
  const rgba = new Uint8Array(img.pixels);
  if (spec.noise > 0) {
    const r = mulberry32(spec.seed);
    for (let i = 0; i < rgba.length; i++) {
      if ((i & 3) === 3) continue;
      const n = (r() + r() + r() - 1.5) * 2 * spec.noise;
      rgba[i] = Math.max(0, Math.min(255, Math.round(rgba[i]! + n)));
    }
  }
  return { width: img.width, height: img.height, rgba };
}

/** RGBA → NCHW float32, (x/255 − mean)/std per channel (ImageNet statistics by default). */
export function toTensor(img: { width: number; height: number; rgba: Uint8Array }, mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225]): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[c * n + i] = (img.rgba[4 * i + c]! / 255 - mean[c]!) / std[c]!;
  }
  return out;
}

/** A few varied text images of one size (fonts, sizes, noise cycle with the index). */
export function textImages(count: number, width: number, height: number, seed = 1): TextImageSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    text: sampleText(seed + i), width, height, font: FONTS[i % FONTS.length]!,
    size: Math.max(10, Math.round(Math.min(height * 0.7, [22, 30, 16, 40][i % 4]!))), noise: [0, 8, 20][i % 3]!, seed: seed * 100 + i,
  }));
}
