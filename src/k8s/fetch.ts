/**
 * What a pod's init container runs (`kerf k8s fetch`): copy the model from an http(s) URL or a
 * path (a PVC mounted read-only) to the pod's model volume, checking its sha256 on the way.
 * Written to a temporary name and renamed only once the hash matches, so a pod never starts
 * on a wrong or partial file.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { kerfError } from '../errors.js';

export async function fetchModel(source: string, sha256: string, out: string, opts: { timeoutMs?: number } = {}): Promise<{ bytes: number; sha256: string }> {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw kerfError('KERF_ERR_USAGE', `--sha256 '${sha256}': expected 64 lower-case hex digits`);
  let input: Readable;
  if (/^https?:\/\//.test(source)) {
    let res: Response;
    try {
      res = await fetch(source, { signal: AbortSignal.timeout(opts.timeoutMs ?? 600_000) });
    } catch (e) {
      throw kerfError('KERF_ERR_FILE', `${source}: cannot fetch (${(e as Error).cause ? String(((e as Error).cause as Error).message) : (e as Error).message})`);
    }
    if (!res.ok || !res.body) throw kerfError('KERF_ERR_FILE', `${source}: HTTP ${res.status} ${res.statusText}`);
    input = Readable.fromWeb(res.body as never);
  } else {
    input = createReadStream(source);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({ transform(chunk: Buffer, _e, cb) { hash.update(chunk); bytes += chunk.length; cb(null, chunk); } });
  const tmp = `${out}.part`;
  try {
    await pipeline(input, tap, createWriteStream(tmp));
  } catch (e) {
    rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    throw kerfError('KERF_ERR_FILE', `${source}: cannot copy to ${out} (${code ?? (e as Error).message})`);
  }
  const got = hash.digest('hex');
  if (got !== sha256) {
    rmSync(tmp, { force: true });
    throw kerfError('KERF_ERR_INTEGRITY', `${source}: sha256 is ${got}, expected ${sha256} (${bytes} bytes); the model was not written`);
  }
  renameSync(tmp, out);
  return { bytes, sha256: got };
}
