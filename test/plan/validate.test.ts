import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validatePlan, checkPlanModel } from '../../src/plan/validate.js';
import type { PlanDocument } from '../../src/plan/types.js';

const SHA = 'a'.repeat(64);

/** A valid plan: device blocks 0-1, edge unused, cloud 2-5; one cut. */
function plan(): Record<string, unknown> {
  return {
    schema: 'kerf.plan/v1', model: 'tiny', modelPath: '../models/tiny.onnx', modelSha256: SHA, objective: 'latency', returnResult: false, inputBytes: 100,
    totalS: 0.01, bottleneckS: 0.01, objectiveS: 0.01, bytesSent: 10, cuts: [2], boundaries: [1],
    tiers: [
      { tier: 'device', system: 'pi', blocks: [0, 1], layers: [0, 3], computeS: 0.001, sendsBytes: 10 },
      { tier: 'edge', system: null, blocks: null, layers: null, computeS: 0, sendsBytes: 0 },
      { tier: 'cloud', system: 'dc', blocks: [2, 5], layers: [4, 9], computeS: 0.002, sendsBytes: 0 },
    ],
    transfers: [{ from: 'pi', to: 'dc', bytes: 10, seconds: 0.001, kind: 'forward' }],
    network: { links: [{ from: 'pi', to: 'dc', rttMs: 20, bandwidthMbps: 50 }] },
    criteria: {}, ranked: [],
  };
}

type Edit = (p: Record<string, any>) => void;
const CASES: [string, Edit, string, RegExp][] = [
  ['schema version', (p) => { p.schema = 'kerf.plan/v9'; }, 'schema', /'kerf\.plan\/v9'; this kerf reads "kerf\.plan\/v1"/],
  ['a placement', (p) => { p.schema = 'kerf.placement/v1'; }, 'schema', /a placement \(kerf place\), not a plan/],
  ['model missing', (p) => { delete p.model; }, 'model', /model's name/],
  ['modelSha256 not hex', (p) => { p.modelSha256 = 'xyz'; }, 'modelSha256', /64 lowercase hex/],
  ['modelPath empty', (p) => { p.modelPath = ''; }, 'modelPath', /relative to the plan file/],
  ['tiers a string', (p) => { p.tiers = 'x'; }, 'tiers', /list of the 3 tiers.*got 'x'/],
  ['two tiers', (p) => { p.tiers.pop(); }, 'tiers', /must list 3 tiers .* got 2/],
  ['tiers out of order', (p) => { p.tiers[0].tier = 'cloud'; }, 'tiers[0].tier', /must be 'device'/],
  ['blocks not a range', (p) => { p.tiers[2].blocks = [5, 2]; }, 'tiers[2].blocks', /first ≤ last/],
  ['blocks with a gap', (p) => { p.tiers[2].blocks = [3, 5]; }, 'tiers[2].blocks', /starts at block 3, expected 2/],
  ['first block not 0', (p) => { p.tiers[0].blocks = [1, 1]; }, 'tiers[0].blocks', /expected 0/],
  ['system null on a used tier', (p) => { p.tiers[2].system = null; }, 'tiers[2].system', /null but the tier runs blocks/],
  ['computeS negative', (p) => { p.tiers[0].computeS = -1; }, 'tiers[0].computeS', /seconds ≥ 0/],
  ['no tier used', (p) => { p.tiers[0].blocks = null; p.tiers[2].blocks = null; }, 'tiers', /leave every tier unused/],
  ['cuts disagree with tiers', (p) => { p.cuts = [2, 4]; }, 'cuts', /has 2 cut ids \(2,4\) but the tiers use 2 tiers \(device, cloud\).* so 1/],
  ['cuts not a list', (p) => { p.cuts = '2'; }, 'cuts', /list of cut ids/],
  ['cut not an integer', (p) => { p.cuts = [2.5]; }, 'cuts[0]', /integer ≥ 0/],
  ['cuts out of order', (p) => { p.tiers[1] = { tier: 'edge', system: 'e', blocks: [2, 3], layers: [4, 5], computeS: 0, sendsBytes: 1 }; p.tiers[2].blocks = [4, 5]; p.cuts = [5, 3]; p.boundaries = [1, 3]; }, 'cuts[1]', /not after the previous cut 5/],
  ['boundaries disagree', (p) => { p.boundaries = [3]; }, 'boundaries', /blocks end at \[1\]/],
  ['bandwidth zero', (p) => { p.network.links[0].bandwidthMbps = 0; }, 'network.links[0].bandwidthMbps', /megabits per second > 0, got 0/],
  ['rtt a word', (p) => { p.network.links[0].rttMs = 'slow'; }, 'network.links[0].rttMs', /milliseconds ≥ 0, got 'slow'/],
  ['no network', (p) => { delete p.network; }, 'network.links', /list of links/],
  ['transfer without a link', (p) => { p.network.links[0].to = 'elsewhere'; }, 'transfers[0]', /pi → dc but 'network.links' has no link/],
];

test('validatePlan refuses each malformed field with KERF_ERR_PLAN, naming the file and the field', () => {
  assert.equal(validatePlan(plan(), 'p.json').model, 'tiny');
  for (const [what, edit, field, msg] of CASES) {
    const p = plan();
    edit(p);
    assert.throws(() => validatePlan(p, 'p.json'), (e: Error & { code?: string; details?: { field?: string } }) => {
      assert.equal(e.code, 'KERF_ERR_PLAN', what);
      assert.ok(e.message.startsWith(`p.json: field '${field}'`), `${what}: ${e.message}`);
      assert.match(e.message, msg, what);
      return true;
    }, what);
  }
  assert.throws(() => validatePlan([], 'p.json'), /p\.json: not a kerf plan/);
  // the device running nothing still sends its input: one forward hop for one used tier
  const cloudOnly = plan();
  cloudOnly.tiers = [{ tier: 'device', system: 'pi', blocks: null, layers: null, computeS: 0, sendsBytes: 100 }, (plan().tiers as unknown[])[1], { ...(plan().tiers as Record<string, unknown>[])[2], blocks: [0, 5] }];
  cloudOnly.cuts = [];
  cloudOnly.boundaries = [];
  assert.equal(validatePlan(cloudOnly, 'p.json').cuts.length, 0);
  cloudOnly.transfers = [...(cloudOnly.transfers as unknown[]), { from: 'pi', to: 'dc', bytes: 1, seconds: 0, kind: 'forward' }];
  assert.throws(() => validatePlan(cloudOnly, 'p.json'), /field 'transfers' has 2 forward hops, but the tiers make 1 \(1 used tier, the device sending its input\)/);
});

test('checkPlanModel: sha256 decides when both are known, else the name', () => {
  const p = validatePlan(plan(), 'p.json') as PlanDocument;
  checkPlanModel(p, { sha256: SHA, names: ['other'], label: 'x.onnx' }, 'p.json');
  assert.throws(() => checkPlanModel(p, { sha256: 'b'.repeat(64), label: 'x.onnx' }, 'p.json'),
    (e: Error & { code?: string }) => e.code === 'KERF_ERR_PLAN' && /p\.json: made for another file than x\.onnx: the plan's 'modelSha256' is aaaaaaaaaaaa…, x\.onnx has sha256 bbbbbbbbbbbb… \(the plan was made from \.\.\/models\/tiny\.onnx\)/.test(e.message));
  const old = { ...plan() };
  delete old.modelSha256;
  const q = validatePlan(old, 'p.json');
  checkPlanModel(q, { sha256: SHA, names: ['tiny'], label: 'tiny.onnx' }, 'p.json');
  assert.throws(() => checkPlanModel(q, { names: ['resnet'], label: 'resnet.onnx' }, 'p.json'), /the plan's 'model' is 'tiny', but resnet\.onnx is 'resnet'/);
});
