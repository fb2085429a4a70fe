/** A worker's side of its host's part cache: chunks in order, the hash checked before a part is kept. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PartCache } from '../../src/serve/part-cache.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('part cache: chunks in order make the part, kept as <sha256>.onnx; a wrong hash or offset is refused and leaves nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-part-cache-'));
  try {
    const c = new PartCache(dir);
    const part = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
    const h = sha(part);
    assert.deepEqual(c.have(h), { have: false, file: join(dir, `${h}.onnx`) });
    assert.equal((await c.put(h, 0, part.subarray(0, 4000), false)).done, false);
    await assert.rejects(c.put(h, 5000, part.subarray(5000), true), (e: { code: string }) => e.code === 'KERF_ERR_USAGE');
    const r = await c.put(h, 4000, part.subarray(4000), true);
    assert.deepEqual(r, { file: join(dir, `${h}.onnx`), bytes: part.length, done: true });
    assert.ok(readFileSync(r.file).equals(part));
    assert.equal(c.have(h).have, true);
    // already there: nothing written again
    assert.equal((await c.put(h, 0, Buffer.from('x'), true)).bytes, part.length);
    const other = sha(Buffer.from('other'));
    await assert.rejects(c.put(other, 0, Buffer.from('not other'), true), (e: { code: string; message: string }) => e.code === 'KERF_ERR_FILE' && /hash to/.test(e.message));
    assert.equal(existsSync(join(dir, `${other}.onnx`)), false);
    assert.deepEqual(readdirSync(dir), [`${h}.onnx`]);
    assert.throws(() => c.have('../../etc/passwd'), (e: { code: string }) => e.code === 'KERF_ERR_USAGE');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
