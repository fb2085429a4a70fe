import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, relative } from 'node:path';
import { kerfError } from '../errors.js';
import { parseModel, type Model } from './model.js';

export interface LoadedModel extends Model {
  /** path the model was read from */
  file: string;
  /** sha256 of the .onnx file's bytes, hex */
  sha256: string;
  /** the .onnx file's bytes as read (external data not included) */
  bytes: Uint8Array;
}

/** Read an .onnx file (and any external data files beside it) into the normalised IR. */
export function loadModel(file: string, opts: { name?: string } = {}): LoadedModel {
  let bytes: Uint8Array;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw kerfError('KERF_ERR_FILE', `${file}: is a directory, not an ONNX file`);
    bytes = readShared(file);
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('KERF_')) throw e;
    throw kerfError('KERF_ERR_FILE', `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const dir = dirname(file);
  const cache = new Map<string, Uint8Array>();
  const externalData = (location: string): Uint8Array => {
    const rel = normalize(location);
    if (isAbsolute(rel) || relative(dir, join(dir, rel)).startsWith('..')) {
      throw kerfError('KERF_ERR_ONNX_PARSE', `${file}: external data location '${location}' points outside the model's folder`);
    }
    let b = cache.get(rel);
    if (!b) {
      try { b = readShared(join(dir, rel)); } catch (e) {
        throw kerfError('KERF_ERR_FILE', `${file}: external data file '${join(dir, rel)}' cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      cache.set(rel, b);
    }
    return b;
  };
  const name = opts.name ?? basename(file).replace(/\.onnx$/i, '');
  const model = parseModel(bytes, { name, source: file, externalData });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return Object.assign(model, { file, sha256, bytes });
}

/**
 * A file's bytes in shared memory. The parsed model's weights are views into these bytes, so
 * a part handed to another thread (a segment thread, the serializer) shares its weights instead
 * of copying them on the thread that serves requests.
 */
export function readShared(file: string): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const out = new Uint8Array(new SharedArrayBuffer(size));
    for (let o = 0; o < size;) {
      const n = readSync(fd, out, o, size - o, o);
      if (n === 0) throw kerfError('KERF_ERR_FILE', `${file}: ended after ${o} of ${size} bytes while reading`);
      o += n;
    }
    return out;
  } finally { closeSync(fd); }
}
