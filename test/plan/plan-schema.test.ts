import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/shared.js';
import { parseNetwork } from '../../src/plan/network-yaml.js';
import { problemFromProfiles } from '../../src/plan/problem.js';
import { rankPlacements } from '../../src/plan/search.js';
import { planPareto } from '../../src/plan/pareto.js';
import { planDocument } from '../../src/plan/document.js';
import { validatePlan } from '../../src/plan/validate.js';
import { validateJson } from '../../src/profile/schema.js';
import type { Profile } from '../../src/profile/types.js';

function profile(system: string, tier: 'device' | 'edge' | 'cloud', speed: number): Profile {
  const blocks = Array.from({ length: 6 }, (_, i) => ({
    index: i, firstLayer: i * 3, lastLayer: i * 3 + 2, ...(i < 5 ? { cutId: i * 3 + 2 } : {}),
    latency: { median: (0.01 + 0.002 * i) / speed, p90: 0.012 / speed, min: 0.009 / speed, spread: 0.1, runs: 5 },
    outputBytes: 400_000 >> i, paramBytes: 10_000 * (i + 1),
  }));
  return { schema: 'kerf.profile/v1', model: { name: 'm', inputBytes: 600_000 }, system: { name: system, tier }, granularity: 'single', source: 'kerf', blocks };
}

test('plan.json follows docs/schema/plan.schema.json', () => {
  const profiles = [profile('pi', 'device', 1), profile('box', 'edge', 4), profile('dc', 'cloud', 10)];
  const net = parseNetwork('links:\n  - {from: pi, to: box, rttMs: 4, bandwidthMbps: 50}\n  - {from: box, to: dc, rttMs: 20, bandwidthMbps: 200}\n  - {from: pi, to: dc, rttMs: 40, bandwidthMbps: 20}\n', 'net.yaml');
  const problem = problemFromProfiles(profiles, 'm');
  for (const objective of ['latency', 'throughput'] as const) {
    const ranked = rankPlacements(problem, net, undefined, { objective, topK: 5, returnResult: true });
    const pareto = planPareto(problem, net, undefined, { objective, returnResult: true });
    const doc = JSON.parse(JSON.stringify(planDocument(ranked, net, { model: 'm', objective, returnResult: true, inputBytes: problem.inputBytes, pareto })));
    assert.ok(doc.pareto.length >= 2);
    const schema = JSON.parse(readFileSync(join(ROOT, 'docs', 'schema', 'plan.schema.json'), 'utf8'));
    assert.equal(validateJson(schema, doc), null, objective);
    assert.equal(validatePlan(doc, 'plan.json'), doc, 'the plan kerf plan writes passes the validator up, split and repartition use');
    assert.ok(doc.cuts.every((c: number) => c % 3 === 2), 'cuts are the profiles\' cut ids');
  }
});
