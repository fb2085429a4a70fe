import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { benchInstance, summarise } from '../../src/cli/bench/place.js';
import { ROOT } from '../support/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'kerf-place-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const CLUSTER = `schema: kerf.cluster/v1
entry: gw
nodes:
  - { name: gw, memoryMB: 160 }
  - { name: pi1, memoryMB: 224, speed: 1.5 }
  - { name: pi2, memoryMB: 192 }
links:
  - { from: gw, to: pi1, bandwidthMbps: 100, rttMs: 1 }
  - { from: pi1, to: pi2, bandwidthMbps: 50, rttMs: 2 }
  - { from: pi2, to: gw, bandwidthMbps: 100 }
`;

function kerf(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'kerf.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** keys of `obj` not described by the schema node, and required keys it lacks */
function offSchema(obj: Record<string, unknown>, schema: { properties: Record<string, unknown>; required?: string[] }, where: string): string[] {
  const bad: string[] = [];
  for (const k of Object.keys(obj)) if (!(k in schema.properties)) bad.push(`${where}.${k} not in schema`);
  for (const k of schema.required ?? []) if (!(k in obj)) bad.push(`${where}.${k} missing`);
  return bad;
}

describe('kerf place', () => {
  it('writes a placement that matches docs/schema/placement.schema.json', () => {
    const c = join(dir, 'c.yaml');
    const o = join(dir, 'placement.json');
    writeFileSync(c, CLUSTER);
    const r = kerf('place', 'resnet50', '--cluster', c, '-o', o);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /solver exact \(proven optimal\)/);
    const p = JSON.parse(readFileSync(o, 'utf8'));
    const schema = JSON.parse(readFileSync(join(ROOT, 'docs', 'schema', 'placement.schema.json'), 'utf8'));
    const bad = offSchema(p, schema, 'placement');
    for (const s of p.stages) bad.push(...offSchema(s, schema.properties.stages.items, 'stage'));
    for (const l of p.links) bad.push(...offSchema(l, schema.properties.links.items, 'link'));
    assert.deepEqual(bad, []);
    assert.equal(p.stages[0].cutIn, null);
    assert.equal(p.stages.at(-1).cutOut, null);
    // the result goes back along the chain (workers reply to their caller) and ends at the entry
    assert.equal(p.stages.at(-1).sendTo, p.stages.length > 1 ? p.stages.at(-2).node : 'gw');
    const back = p.links.filter((l: { kind: string }) => l.kind === 'return');
    assert.equal(back.length, p.links.length / 2);
    assert.equal(back.at(-1).to, 'gw');
    for (const s of p.stages) assert.ok(s.memoryBytes <= s.memoryLimitBytes);
  });

  it('names the culprit in one line for a bad cluster file', () => {
    const c = join(dir, 'bad.yaml');
    writeFileSync(c, CLUSTER.replace('to: pi2, bandwidthMbps: 50', 'to: pi9, bandwidthMbps: 50'));
    const r = kerf('place', 'resnet50', '--cluster', c);
    assert.equal(r.code, 1);
    assert.match(r.err, /^kerf: .*bad\.yaml: links\[1\]: field 'to' names no node \(got "pi9"\)\n$/);
  });

  it('says why when the model cannot fit', () => {
    const c = join(dir, 'small.yaml');
    // 22 MB each beside the default 88 MB worker overhead: not enough for ResNet-50's weights
    writeFileSync(c, CLUSTER.replace(/memoryMB: \d+/g, 'memoryMB: 110'));
    const r = kerf('place', 'resnet50', '--cluster', c);
    assert.equal(r.code, 1);
    assert.match(r.err, /^kerf: model 'resnet50': .*weights need/);
  });
});

describe('kerf bench place', () => {
  it('runs every solver on an anchor instance; kerf is no worse than the baselines', () => {
    const o = { gflops: 8, objective: 'throughput' as const, exactNodes: 12, exactLimit: 30, entry: true };
    const rows = [benchInstance('resnet50', 8, 128, 0, 3, o)!, benchInstance('inception', 10, 'mixed', 0, 4, o)!];
    for (const r of rows) {
      assert.ok(r.kerf !== null && r.exact !== null);
      assert.ok(r.bound <= r.exact! * (1 + 1e-12) && r.exact! <= r.kerf! * (1 + 1e-12));
      if (r.greedy !== null) assert.ok(r.kerf! <= r.greedy * (1 + 1e-9));
      if (r.random !== null) assert.ok(r.kerf! <= r.random * (1 + 1e-9));
    }
    const s = summarise(rows);
    assert.equal(s.worseThanGreedy + s.worseThanRandom, 0);
    assert.equal(s.exactInstances, 2);
  });
});
