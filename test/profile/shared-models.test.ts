import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockCuts } from '../../src/graph/cuts.js';
import { prepareModel } from '../../src/engine/prepare.js';
import { profileModel } from '../../src/profile/profile.js';
import { PROFILE_JSON_SCHEMA, validateJson } from '../../src/profile/schema.js';
import { sharedPath } from '../support/shared.js';
import { trueCrossingBytes } from './support.js';

// Real torchvision exports at both granularities (and the sessions method once): every block
// timed and sized, output bytes equal the tensors really handed on, and the blocks add up to the
// whole — the profile itself measures again and then refuses one whose (blocks + one run's
// overhead) / whole is more than 10% off, so a profile written is one that adds up.
for (const [name, method] of [['resnet18', 'trace'], ['googlenet', 'trace'], ['resnet18', 'sessions']] as const) {
  for (const granularity of method === 'sessions' ? ['single'] as const : ['single', 'all'] as const) {
    test(`${name} at ${granularity} granularity (${method})`, async (t) => {
      const file = sharedPath(`models/${name}.onnx`);
      if (!file) return t.skip('../shared/models absent');
      let p;
      try {
        p = await profileModel(file, { system: 'ci', repeats: 5, warmup: 1, granularity, method });
      } catch (e) {
        // The sessions method (one session per block, not the default) does not add up on every
        // model and machine: on resnet18 here it measured 1.26 under load. What the issue asks of
        // it is that such a profile is refused loudly, naming the model and the ratio, never written.
        if (method !== 'sessions') throw e;
        const err = e as { code?: string; message?: string };
        assert.equal(err.code, 'KERF_ERR_PROFILE');
        assert.match(err.message ?? '', new RegExp(`${name}: the blocks do not add up .* = \\d\\.\\d+`));
        process.stdout.write(`# ${name} ${granularity} ${method}: refused (${err.message})\n`);
        return;
      }
      assert.equal(validateJson(PROFILE_JSON_SCHEMA as unknown as Record<string, unknown>, p), null);
      const prep = await prepareModel(file);
      const cuts = blockCuts(prep.analysis, granularity).map((c) => c.id);
      assert.equal(p.blocks.length, cuts.length + 1);
      assert.equal(p.settings?.method, method);
      for (const b of p.blocks) {
        assert.equal(b.latency.runs, 5);
        // sessions: a block shorter than one run's fixed cost (taken off every block) times as 0
        assert.ok(method === 'sessions' ? b.latency.median >= 0 : b.latency.median > 0, `${name} block ${b.index} has a time`);
        assert.ok(b.outputBytes > 0);
        assert.equal(b.cutId, cuts[b.index]);
      }
      assert.deepEqual(p.blocks.map((b) => b.outputBytes), await trueCrossingBytes(prep, cuts));
      assert.equal(p.blocks.at(-1)!.outputBytes, 4000, 'logits [1,1000] float32');
      // small constants (shapes, shared scalars) count in every block that needs them
      const params = p.blocks.reduce((s, b) => s + b.paramBytes, 0);
      assert.ok(params >= prep.analysis.totals.paramBytes && params < prep.analysis.totals.paramBytes * 1.001, `${params} vs ${prep.analysis.totals.paramBytes}`);
      const r = p.blockSumOverWhole!;
      process.stdout.write(`# ${name} ${granularity} ${method}: ${p.blocks.length} blocks, whole ${(p.whole!.latency.median * 1e3).toFixed(1)} ms, block-sum/whole ${r.toFixed(3)}\n`);
      // Blocks alone: within 10%, less one run's fixed cost (well under 1% of these models).
      assert.ok(r >= 0.88 && r <= 1.1, `block-sum/whole ${r}`);
    });
  }
}
