/**
 * A worker's side of its host's part cache (the agent's `--cache`, `<sha256>.onnx` files): a
 * rollout across hosts sends each worker the part of the new version it runs, by content hash,
 * over the tier connection it already has — only when the host lacks it — and the worker loads
 * it from the cache (control ops `part-have`, `part-put`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { kerfError } from '../errors.js';

const SHA = /^[0-9a-f]{64}$/;
/** Largest chunk one `part-put` carries (base64 in the control frame's JSON). */
export const PART_CHUNK_BYTES = 4 << 20;

export class PartCache {
  readonly #uploads = new Map<string, { tmp: string; bytes: number }>();
  constructor(readonly dir: string) {}

  file(sha: string): string {
    if (!SHA.test(sha)) throw kerfError('KERF_ERR_USAGE', `part: "${sha.slice(0, 80)}" is not a sha256`);
    return join(this.dir, `${sha}.onnx`);
  }

  have(sha: string): { have: boolean; file: string } {
    const file = this.file(sha);
    return { have: existsSync(file), file };
  }

  /** Append `data` at `offset` of part `sha`; with `last`, check its hash and move it into the cache. */
  async put(sha: string, offset: number, data: Buffer, last: boolean): Promise<{ file: string; bytes: number; done: boolean }> {
    const file = this.file(sha);
    if (existsSync(file)) { this.#uploads.delete(sha); return { file, bytes: (await stat(file)).size, done: true }; }
    let u = this.#uploads.get(sha);
    if (offset === 0 && u) { await rm(u.tmp, { force: true }); u = undefined; }
    if (!u) {
      if (offset !== 0) throw kerfError('KERF_ERR_USAGE', `part-put ${sha.slice(0, 12)}: no upload at offset ${offset} (start at 0)`);
      u = { tmp: `${file}.${randomBytes(4).toString('hex')}.tmp`, bytes: 0 };
      this.#uploads.set(sha, u);
    }
    if (offset !== u.bytes) throw kerfError('KERF_ERR_USAGE', `part-put ${sha.slice(0, 12)}: offset ${offset}, expected ${u.bytes}`);
    await appendFile(u.tmp, data);
    u.bytes += data.length;
    if (!last) return { file, bytes: u.bytes, done: false };
    this.#uploads.delete(sha);
    const got = createHash('sha256').update(await readFile(u.tmp)).digest('hex');
    if (got !== sha) {
      await rm(u.tmp, { force: true });
      throw kerfError('KERF_ERR_FILE', `part-put: the ${u.bytes} bytes received hash to ${got.slice(0, 12)}…, not ${sha.slice(0, 12)}…`);
    }
    await rename(u.tmp, file);
    return { file, bytes: u.bytes, done: true };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#uploads.values()].map((u) => rm(u.tmp, { force: true })));
    this.#uploads.clear();
  }
}
