/**
 * Parts a host is sent: the ONNX file of the segment it runs, named by its SHA-256, so a
 * host caches each once and a controller sends only what a host lacks. A stage's part is a
 * standalone model whose inputs are the tensors crossing its input cut (carried ones too) and
 * whose outputs are those crossing its output cut — carried tensors pass straight through
 * (an output that is an input) — so a worker runs the whole part and the pipeline chains
 * by tensor name exactly as with the whole model.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeValueInfo, serializeModel, rebuildModel } from '../graph/slice.js';
import type { Prepared } from '../engine/prepare.js';
import { segmentBounds, segmentPart } from '../serve/segment.js';
import type { PartRef } from './substrate.js';

/** SHA-256 and size of a file, streamed. */
export async function fileSha256(file: string): Promise<PartRef> {
  const h = createHash('sha256');
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    createReadStream(file).on('data', (c) => { h.update(c as Buffer); bytes += (c as Buffer).length; }).on('end', () => resolve()).on('error', reject);
  });
  return { sha256: h.digest('hex'), bytes };
}

/** The SHA-256 of bytes. */
export function sha256(b: Uint8Array): string { return createHash('sha256').update(b).digest('hex'); }

/**
 * The ONNX bytes of parts `a..b` (inclusive) of the split `cuts` make, standalone: carried
 * tensors are inputs and outputs both. Parts of a whole model: `a = 0, b = cuts.length`.
 */
export function partBytes(prep: Prepared, cuts: readonly number[], a: number, b: number): Uint8Array {
  const bounds = segmentBounds(prep, { cuts, blocks: [a, b] });
  const part = segmentPart(prep, bounds);
  const vi = (t: { name: string; dtype: import('../graph/dtypes.js').DType; shape: number[] }) => makeValueInfo(t.name, t.dtype, t.shape);
  const g = part.proto.graph!;
  const proto = rebuildModel(prep.model, {
    graphName: g.name, nodes: g.node, initializers: g.initializer,
    // the analysed (concrete) shapes: a host's worker runs the part with no --input-shape
    inputs: [...part.inputs, ...part.carry].map(vi),
    outputs: [...part.outputs, ...part.carry].map(vi),
    docString: `${bounds.label} of ${prep.model.name} at cuts [${cuts.join(', ')}], made by kerf for a host`,
  });
  return serializeModel(proto);
}

/** Write a stage's part into `dir` as `<sha256>.onnx`; returns its path and ref. */
export async function writePart(dir: string, bytes: Uint8Array): Promise<{ file: string; ref: PartRef }> {
  await mkdir(dir, { recursive: true });
  const ref = { sha256: sha256(bytes), bytes: bytes.byteLength };
  const file = join(dir, `${ref.sha256}.onnx`);
  await writeFile(file, bytes);
  return { file, ref };
}
