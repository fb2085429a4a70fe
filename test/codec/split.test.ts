/** A split pipeline whose hops are compressed: lossless codecs answer bitwise what the unsplit model does. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { Gateway, Worker } from '../../src/serve/index.js';
import { ocrModel } from '../support/shared.js';
import { TOKEN, bytesOf, inferBinary, inputsFor, reference, thirds } from '../serve/serve-helpers.js';

test('PaddleOCR det over 3 tiers with zstd and lz4 hops: bitwise equal to the unsplit model, fewer bytes sent; int8 close', async () => {
  const prep = await prepareModel(ocrModel('det'), { inputShapes: { x: [1, 3, 320, 320] } });
  const cuts = thirds(prep);
  const [feeds] = inputsFor(prep, 1);
  const ref = await reference(prep, feeds!);
  const sent: Record<string, number> = {};
  for (const codecs of [['none', 'none'], ['zstd-1', 'shuffle+lz4'], ['int8+zstd-1', 'fp16']]) {
    const last = await Worker.start({ token: TOKEN, model: prep, segment: { cuts, blocks: [2, 2] }, name: 't2' });
    const mid = await Worker.start({ token: TOKEN, model: prep, segment: { cuts, blocks: [1, 1] }, name: 't1', next: last.address, nextCodec: codecs[1]! });
    const g = await Gateway.start({ model: prep, pipeline: { cuts, next: mid.address, token: TOKEN, codec: codecs[0]! } });
    try {
      await g.waitReady(10_000);
      const r = await inferBinary(g.url, g.name, feeds!);
      assert.equal(r.status, 200, r.error);
      sent[codecs.join()] = (g.pipeline.next?.bytesSent ?? 0) + [...mid.segments.values()][0]!.next!.bytesSent;
      for (const o of prep.model.outputs) {
        const want = bytesOf(ref[o.name]!);
        const got = r.outputs[o.name]!;
        if (!codecs[0]!.startsWith('int8')) { assert.ok(want.equals(got), `${codecs}: output '${o.name}' differs from the unsplit model`); continue; }
        const a = new Float32Array(new Uint8Array(want).buffer);
        const b = new Float32Array(new Uint8Array(got).buffer);
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
        assert.ok(worst < 0.5, `${codecs}: max abs error ${worst} of a probability map`);
      }
    } finally {
      await g.close(); await mid.close(); await last.close();
    }
  }
  assert.ok(sent['zstd-1,shuffle+lz4']! < sent['none,none']!, JSON.stringify(sent));
  assert.ok(sent['int8+zstd-1,fp16']! < sent['zstd-1,shuffle+lz4']!, JSON.stringify(sent));
});
