import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { benchInstance, summarise } from '../../src/cli/bench/place.js';
import { deviceBytes, type Placement } from '../../src/plan/place/index.js';
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

describe('kerf place --codecs', () => {
  // two nodes (the entry can hold the whole model), a thin link, a profile that measured zstd-1 and int8+zstd-1 on every block's output
  const profile = {
    schema: 'kerf.profile/v1', model: { name: 'coded', inputBytes: 400_000 },
    system: { name: 'pi', tier: 'edge', cpu: 'x', cores: 1, memoryBytes: 1, threads: 1, hostname: 'h' },
    granularity: 'single', source: 'kerf', callOverheadS: 0.0005,
    blocks: [0, 1, 2, 3].map((i) => ({
      index: i, firstLayer: i, lastLayer: i, cutId: 10 + i, outputTensors: ['t'],
      latency: { median: 0.02, p90: 0.02, min: 0.02, spread: 0, runs: 1 }, outputBytes: [800_000, 200_000, 100_000, 4000][i], paramBytes: 30 * 2 ** 20, flops: 0,
      codecs: { 'zstd-1': { ratio: 2.5, encodeS: 0.002, decodeS: 0.001 }, 'int8+zstd-1': { ratio: 9, encodeS: 0.004, decodeS: 0.002, lossy: true } },
    })),
    whole: { latency: { median: 0.08, p90: 0.08, min: 0.08, spread: 0, runs: 1 } },
    settings: { repeats: 1, warmup: 1, threads: 1, optimization: 'disabled', method: 'trace', seed: 0, runtime: 'x' },
    createdAt: '2026-01-01T00:00:00Z',
  };
  const cluster = `schema: kerf.cluster/v1
entry: gw
memory: { margin: 1, overheadMB: 0 }
nodes:
  - { name: gw, memoryMB: 140 }
  - { name: pi, memoryMB: 100 }
links:
  - { from: gw, to: pi, bandwidthMbps: 10, rttMs: 4 }
`;
  const run = (...extra: string[]): { code: number | null; p: Record<string, any> | null; out: string; err: string } => {
    writeFileSync(join(dir, 'coded.profile.json'), JSON.stringify(profile));
    writeFileSync(join(dir, 'coded.yaml'), cluster);
    const o = join(dir, `coded-${extra.join('_').replace(/[^a-z0-9]/gi, '')}.json`);
    const r = kerf('place', 'coded', '--cluster', join(dir, 'coded.yaml'), '--profile', join(dir, 'coded.profile.json'), '-o', o, ...extra);
    return { code: r.code, p: r.code === 0 ? JSON.parse(readFileSync(o, 'utf8')) : null, out: r.out, err: r.err };
  };
  it('chooses a codec per hop where it pays, shows it, and keeps lossy codecs to when they are asked for', () => {
    const raw = run();
    const lossless = run('--codecs', 'lossless');
    const lossy = run('--codecs', 'lossy');
    for (const r of [raw, lossless, lossy]) assert.equal(r.code, 0, r.err);
    assert.equal(raw.p!.links.some((l: { codec?: string }) => l.codec), false);
    // the cut's bytes at 10 Mbit/s cost far more than 3 ms of codec work: zstd-1, then int8
    const coded = lossless.p!.links.filter((l: { codec?: string; kind: string }) => l.codec && l.kind === 'forward');
    assert.ok(coded.length > 0 && coded.every((l: { codec: string; lossy?: boolean }) => l.codec === 'zstd-1' && !l.lossy), JSON.stringify(lossless.p!.links));
    assert.match(lossless.out, /zstd-1 2\.50×/);
    assert.ok(lossy.p!.links.some((l: { codec?: string; lossy?: boolean }) => l.codec === 'int8+zstd-1' && l.lossy));
    for (const r of [lossless, lossy]) for (const l of r.p!.links) if (l.kind === 'return') assert.ok(!l.lossy);
    // raw, the thin link is the bottleneck; coded, the entry's compute
    assert.equal(raw.p!.bottleneck.kind, 'link');
    assert.ok(lossy.p!.bottleneck.seconds <= lossless.p!.bottleneck.seconds && lossless.p!.bottleneck.seconds < raw.p!.bottleneck.seconds);
  });
  it('--pareto writes the front: non-dominated placements, each with its codec, in the placement schema', () => {
    const r = run('--codecs', 'lossless', '--pareto');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Pareto front: \d+ placements? no other beats/);
    const front = r.p!.pareto as Placement[];
    assert.ok(front.length >= 2, JSON.stringify(front.map((p) => [p.latency, p.bottleneck.seconds, deviceBytes(p)])));
    const vec = (p: Placement): number[] => [p.latency, p.bottleneck.seconds, deviceBytes(p)];
    for (const a of front) for (const b of front) assert.ok(!vec(b).every((x, i) => x <= vec(a)[i]!) || vec(b).every((x, i) => x === vec(a)[i]!));
    for (let i = 1; i < front.length; i++) assert.ok(front[i - 1]!.latency <= front[i]!.latency);
    const schema = JSON.parse(readFileSync(join(ROOT, 'docs', 'schema', 'placement.schema.json'), 'utf8'));
    for (const p of front) assert.deepEqual(offSchema(p as unknown as Record<string, unknown>, schema, 'pareto'), []);
    assert.ok(front.some((p) => p.solver === 'given'));
  });
  it('refuses a codec no profile measured, naming it', () => {
    const r = run('--codecs', 'lz4');
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /no profile measured codec 'lz4'/);
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
