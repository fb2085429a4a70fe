/**
 * What a pod's init container runs (`kerf k8s fetch`): copy a file from an http(s) URL or a
 * path (a PVC mounted read-only) to the pod's model volume, checking its sha256 on the way.
 * Written to a temporary name and renamed only once the hash matches, so a pod never starts
 * on a wrong or partial file.
 *
 * Two ways a stage gets exactly the segment it runs:
 *   - served: the operator built the stage's part and serves it (`GET /v1/parts/SHA`, the
 *     pipeline's token as bearer); the init container fetches it and checks the part's sha256;
 *   - built: the init container fetches the whole model (its sha256 checked), cuts the stage's
 *     part out of it with src/cluster/parts.ts, checks the part's sha256 when one is given, and
 *     writes only the part (`buildPart`). Used where the operator cannot read the model (a PVC).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { kerfError } from '../errors.js';

export interface FetchOptions {
  timeoutMs?: number;
  /** sent as `authorization: Bearer …` (http(s) only) */
  bearer?: string;
  /** attempts for an http(s) source that cannot be reached or answers 404/429/5xx (default 1) */
  attempts?: number;
  /** ms before the second attempt (doubling, at most 10 s; default 1000) */
  backoffMs?: number;
}

const SHA = /^[0-9a-f]{64}$/;

async function open(source: string, o: FetchOptions): Promise<Readable> {
  if (!/^https?:\/\//.test(source)) return createReadStream(source);
  const attempts = Math.max(1, o.attempts ?? 1);
  let wait = o.backoffMs ?? 1000;
  for (let i = 1; ; i++) {
    let why: string;
    let retry = true;
    try {
      const res = await fetch(source, { signal: AbortSignal.timeout(o.timeoutMs ?? 600_000), ...(o.bearer ? { headers: { authorization: `Bearer ${o.bearer}` } } : {}) });
      if (res.ok && res.body) return Readable.fromWeb(res.body as never);
      why = `HTTP ${res.status} ${res.statusText}`;
      retry = res.status === 404 || res.status === 429 || res.status >= 500;
      await res.body?.cancel();
    } catch (e) {
      why = `cannot fetch (${(e as Error).cause ? String(((e as Error).cause as Error).message) : (e as Error).message})`;
    }
    if (!retry || i >= attempts) throw kerfError('KERF_ERR_FILE', `${source}: ${why}${i > 1 ? ` (after ${i} attempts)` : ''}`);
    await sleep(wait);
    wait = Math.min(wait * 2, 10_000);
  }
}

export async function fetchModel(source: string, sha256: string, out: string, opts: FetchOptions = {}): Promise<{ bytes: number; sha256: string }> {
  if (!SHA.test(sha256)) throw kerfError('KERF_ERR_USAGE', `--sha256 '${sha256}': expected 64 lower-case hex digits`);
  const input = await open(source, opts);
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
    throw kerfError('KERF_ERR_INTEGRITY', `${source}: sha256 is ${got}, expected ${sha256} (${bytes} bytes); the file was not written`);
  }
  renameSync(tmp, out);
  return { bytes, sha256: got };
}

export interface BuildPartOptions extends FetchOptions {
  /** the pipeline's cut ids */
  cuts: number[];
  /** the stage (part) index, 0..cuts.length */
  index: number;
  inputShapes?: Record<string, number[]>;
  /** the part's expected sha256 (checked when given) */
  partSha256?: string;
}

/** Fetch the whole model (sha256 checked), cut the stage's part out, write only the part. */
export async function buildPart(source: string, sha256: string, out: string, o: BuildPartOptions): Promise<{ bytes: number; sha256: string; modelBytes: number }> {
  if (o.partSha256 !== undefined && !SHA.test(o.partSha256)) throw kerfError('KERF_ERR_USAGE', `--part-sha256 '${o.partSha256}': expected 64 lower-case hex digits`);
  if (!Number.isInteger(o.index) || o.index < 0 || o.index > o.cuts.length) throw kerfError('KERF_ERR_USAGE', `--part ${o.index}: expected 0..${o.cuts.length} (the cuts make ${o.cuts.length + 1} parts)`);
  const whole = `${out}.model`;
  try {
    const m = await fetchModel(source, sha256, whole, o);
    const { prepareModel } = await import('../engine/prepare.js');
    const { partBytes, sha256: hashOf } = await import('../cluster/parts.js');
    const { partModelName } = await import('./parts.js');
    const prep = await prepareModel(whole, { name: partModelName(source), ...(o.inputShapes ? { inputShapes: o.inputShapes } : {}) });
    const bytes = partBytes(prep, o.cuts, o.index, o.index);
    const got = hashOf(bytes);
    if (o.partSha256 !== undefined && got !== o.partSha256) {
      throw kerfError('KERF_ERR_INTEGRITY', `${source}: part ${o.index} at cuts [${o.cuts.join(',')}] has sha256 ${got}, expected ${o.partSha256}; the part was not written`);
    }
    writeFileSync(`${out}.part`, bytes);
    renameSync(`${out}.part`, out);
    return { bytes: bytes.byteLength, sha256: got, modelBytes: m.bytes };
  } finally {
    rmSync(whole, { force: true });
    rmSync(`${out}.part`, { force: true });
  }
}
