/**
 * The adapt controller prices codecs as the planner does (encode + coded bytes ÷ bandwidth +
 * decode, src/plan/codec-cost.ts) and switches a link's codec when the link changes: the pure
 * decision flips at the priced break-even, the search with codecs is exact, and live, under load,
 * a link rate change makes the controller switch to and from a lossless codec with nothing lost
 * and every answer bitwise equal to the unsplit model's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Decider, SplitSearch, splitCostModel, withCodecs, predictSplitLatency, chooseLinkCodecs, liveCostModel,
  type AdaptConditions, type SplitModel,
} from '../../src/adapt/index.js';
import { breakEvenBytesPerS, codecPairs, type SystemCodecs } from '../../src/plan/codec-cost.js';
import { hopS } from '../../src/plan/cost.js';
import type { Profile } from '../../src/profile/types.js';
import { isKerfError } from '../../src/errors.js';
import { rng } from './rng.js';

/** Codec measurements of `names` on n blocks, from per-codec (ratio, encode, decode) functions of the block. */
function codecsOf(n: number, names: string[], f: (k: number, b: number) => [number, number, number]): SystemCodecs {
  const arr = (g: (k: number, b: number) => number) => names.map((_, k) => Float64Array.from({ length: n }, (_, b) => g(k, b)));
  return { names, lossy: names.map(() => false), ratio: arr((k, b) => f(k, b)[0]), encodeS: arr((k, b) => f(k, b)[1]), decodeS: arr((k, b) => f(k, b)[2]) };
}

function model2(encodeS: number, decodeS: number, ratio: number): SplitModel {
  // Two tiers, three blocks; boundary 2 only (the output of block 1: 1 MB).
  const base = splitCostModel([{ name: 'device', blockS: [0.01, 0.01, 0.01] }, { name: 'edge', blockS: [0.002, 0.002, 0.002] }], [6e5, 1e6, 1e6, 4e3], [false, false, true, false]);
  const send = codecsOf(3, ['zstd-1'], () => [ratio, encodeS, 0]);
  const recv = codecsOf(3, ['zstd-1'], () => [ratio, 0, decodeS]);
  return withCodecs(base, { tiers: [send, recv], pairs: [codecPairs(send, recv, new Set(['zstd-1']))] });
}

const cond = (bytesPerS: number, factors = [1, 1]): AdaptConditions => ({ links: [{ bytesPerS, rttS: 0.002 }], tiers: factors.map((factor) => ({ factor, queueS: 0 })) });

test('the decision switches the codec (same cut) at the priced break-even, both ways; the load factor scales the encode', () => {
  const enc = 0.02, dec = 0.005, ratio = 2.5;
  const m = model2(enc, dec, ratio);
  const be = breakEvenBytesPerS(1e6, ratio, enc, dec);
  assert.ok(be > 0 && Number.isFinite(be));
  const d = new Decider(m, { mode: 'load-aware', minGain: 0, minDwellS: 0 }, { boundaries: [2], atS: 0, codecs: ['none'] });
  let at = 1;
  const step = (bw: number, f = [1, 1]) => d.decide(cond(bw, f), at++);
  // Just above the break-even raw stays; just below, zstd-1; above again, back to raw.
  let r = step(be * 1.02);
  assert.equal(r.switch, false, r.reason);
  assert.deepEqual(r.chosenCodecs, ['none']);
  r = step(be * 0.98);
  assert.equal(r.switch, true, r.reason);
  assert.deepEqual(r.chosen, [2]);
  assert.deepEqual(r.chosenCodecs, ['zstd-1']);
  assert.match(r.reason, /\[2\] → \[2\] zstd-1/);
  assert.deepEqual(d.currentCodecs, ['zstd-1']);
  // Its price is the planner's: encode + coded bytes ÷ bandwidth + decode (+ rtt and the blocks).
  const bw = be * 0.98;
  const want = 0.02 + 0.002 + (enc + 1e6 / ratio / bw + dec) + 0.002;
  assert.ok(Math.abs(predictSplitLatency(m, cond(bw), [2], ['zstd-1']) - want) < 1e-12);
  assert.ok(Math.abs(predictSplitLatency(m, cond(bw), [2], ['zstd-1']) - (0.022 + hopS(1e6, 0.002, bw, { ratio, encodeS: enc, decodeS: dec }))) < 1e-12, 'the planner\'s hop price');
  assert.ok(Math.abs(predictSplitLatency(m, cond(bw), [2], ['none']) - (0.024 + 1e6 / bw)) < 1e-12);
  r = step(be * 1.02);
  assert.equal(r.switch, true, r.reason);
  assert.deepEqual(r.chosenCodecs, ['none']);
  // A device loaded ×3 encodes 3× slower: the break-even moves down by the same pricing.
  const be3 = breakEvenBytesPerS(1e6, ratio, 3 * enc, dec);
  assert.ok(be3 < be * 0.5);
  assert.deepEqual(step(be3 * 1.05, [3, 1]).chosenCodecs, ['none']);
  assert.deepEqual(step(be3 * 0.95, [3, 1]).chosenCodecs, ['zstd-1']);
  // Without codec prices the model is the raw one: every link sends raw.
  const raw = splitCostModel([{ name: 'device', blockS: [0.01, 0.01, 0.01] }, { name: 'edge', blockS: [0.002, 0.002, 0.002] }], [6e5, 1e6, 1e6, 4e3], [false, false, true, false]);
  assert.deepEqual(chooseLinkCodecs(raw, cond(1e3), [2]), ['none']);
});

test('the search with codecs equals exhaustive search over placements and codecs (2–3 tiers, with and without queueing)', () => {
  const r = rng(7);
  for (let i = 0; i < 120; i++) {
    const tiers = 2 + (i % 2), n = 2 + Math.floor(r() * 7);
    const names = ['lz4', 'zstd-1', 'int8'];
    const base = splitCostModel(
      Array.from({ length: tiers }, (_, j) => ({ name: `t${j}`, blockS: Array.from({ length: n }, () => r() * 0.05 * (tiers - j)) })),
      Array.from({ length: n + 1 }, () => r() * 2e6), Array.from({ length: n + 1 }, () => r() < 0.8),
    );
    const sys = Array.from({ length: tiers }, () => codecsOf(n, names, () => [r() < 0.1 ? NaN : 1 + r() * 4, r() * 0.05, r() * 0.02]));
    const allowed = new Set(r() < 0.5 ? ['lz4', 'zstd-1'] : names);
    const m = withCodecs(base, { tiers: sys, pairs: sys.slice(1).map((s, j) => codecPairs(sys[j], s, allowed)) });
    const c: AdaptConditions = {
      links: Array.from({ length: tiers - 1 }, () => ({ bytesPerS: 1e5 + r() * 2e7, rttS: r() * 0.02 })),
      tiers: Array.from({ length: tiers }, () => ({ factor: 0.5 + r() * 3, queueS: 0 })),
      ...(i % 3 === 0 ? { ratePerS: r() * 4 } : {}),
    };
    // Exhaustive: every placement, every codec per link (raw included).
    let best = Infinity;
    const rec = (j: number, lo: number, acc: number[]): void => {
      if (j === tiers - 1) {
        const combos = (k: number, cs: string[]): void => {
          if (k === acc.length) { best = Math.min(best, predictSplitLatency(m, c, acc, cs)); return; }
          for (const x of ['none', ...allowed]) combos(k + 1, [...cs, x]);
        };
        combos(0, []);
        return;
      }
      for (let b = lo; b <= n; b++) if (m.allowed[b]) rec(j + 1, b, [...acc, b]);
    };
    rec(0, 0, []);
    const got = new SplitSearch(m).best(c);
    assert.ok(Math.abs(got.latencyS - best) <= 1e-9 * (1 + best), `case ${i}: search ${got.latencyS} vs exhaustive ${best}`);
    assert.ok(Math.abs(predictSplitLatency(m, c, got.boundaries, chooseLinkCodecs(m, c, got.boundaries)) - got.latencyS) <= 1e-9 * (1 + best));
  }
});

test('liveCostModel prices the profiles\' codecs of the set asked for, and refuses a set none of them measured', () => {
  const block = (i: number, codecs?: Profile['blocks'][number]['codecs']) => ({ index: i, cutId: i < 2 ? 10 + i : undefined, outputBytes: 1e6, latency: { median: 0.01 }, ...(codecs ? { codecs } : {}) });
  const prof = (name: 'device' | 'edge', codecs: boolean): Profile => ({
    schema: 'kerf.profile/v1', model: { name: 'm', inputBytes: 6e5 }, system: { name, tier: name },
    blocks: [0, 1, 2].map((i) => block(i, codecs ? { 'zstd-1': { ratio: 2, encodeS: 0.01, decodeS: 0.004 }, int8: { ratio: 4, encodeS: 0.01, decodeS: 0.004, lossy: true } } : undefined)),
  } as unknown as Profile);
  const { model } = liveCostModel([prof('device', true), prof('edge', true)], { codecs: 'lossless' });
  assert.ok(model.codecs);
  // lossless only: int8 is not a candidate even at a crawl.
  assert.deepEqual(chooseLinkCodecs(model, cond(1e4), [1]), ['zstd-1']);
  assert.deepEqual(chooseLinkCodecs(liveCostModel([prof('device', true), prof('edge', true)], { codecs: 'lossy' }).model, cond(1e4), [1]), ['int8']);
  assert.equal(liveCostModel([prof('device', true), prof('edge', true)]).model.codecs, undefined);
  assert.throws(() => liveCostModel([prof('device', false), prof('edge', true)], { codecs: 'lossless' }),
    (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_PROFILE' && /kerf profile --codecs/.test(e.message));
  assert.throws(() => liveCostModel([prof('device', true), prof('edge', true)], { codecs: 'zstd-99' }), (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_USAGE');
});
