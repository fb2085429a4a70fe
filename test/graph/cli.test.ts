import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelBuilder, Rng } from '../../src/graph/builder.js';
import { ROOT } from '../support/shared.js';

const KERF = join(ROOT, 'bin', 'kerf.js');
const kerf = (...args: string[]) => spawnSync(process.execPath, [KERF, ...args], { encoding: 'utf8', timeout: 60_000 });

function tinyModel(dir: string): string {
  const b = new ModelBuilder({ opset: 13, name: 'tiny' });
  const r = new Rng(1);
  b.input('x', 'float32', ['N', 3, 8, 8]);
  b.initializer('w', 'float32', [4, 3, 3, 3], r.he([4, 3, 3, 3]));
  b.initializer('w2', 'float32', [4, 4, 3, 3], r.he([4, 4, 3, 3]));
  b.node('Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1] });
  b.node('Relu', ['c'], ['r']);
  b.node('Conv', ['r', 'w2'], ['c2'], { pads: [1, 1, 1, 1] });
  b.node('Add', ['c2', 'r'], ['s']);
  b.node('Relu', ['s'], ['y']);
  b.output('y', 'float32', ['N', 4, 8, 8]);
  const f = join(dir, 'tiny.onnx');
  writeFileSync(f, b.toBytes());
  return f;
}

test('kerf inspect --json lists cuts with id and tensors; text mode prints the cut table', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-cli-'));
  const f = tinyModel(dir);
  const r = kerf('inspect', f, '--json', '--input-shape', 'x=2x3x8x8');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.ok(Array.isArray(j.cuts) && j.cuts.length === 4);
  assert.deepEqual(j.cuts[1].tensors, ['r']);
  assert.equal(j.cuts[1].bytes, 2 * 4 * 64 * 4);
  assert.deepEqual(j.inputShapes, { x: [2, 3, 8, 8] });
  const t = kerf('inspect', f, '--granularity', 'all');
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /4 cuts \(\d single-tensor\)/);
  assert.match(t.stdout, /params: 252 /);
});

test('kerf split writes parts and manifest; --verify reports bitwise equality', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-cli-'));
  const f = tinyModel(dir);
  const out = join(dir, 'parts');
  const r = kerf('split', f, '--cuts', '1,2', '-o', out, '--verify');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /max abs diff 0, bitwise equal/);
  assert.deepEqual(readdirSync(out).sort(), ['manifest.json', 'part-0.onnx', 'part-1.onnx', 'part-2.onnx']);
  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(m.schema, 'kerf.manifest/v1');
  assert.match(m.model.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(m.cuts, [1, 2]);
  assert.deepEqual(m.parts[1].inputs.map((t: { name: string }) => t.name), ['r']);
  assert.deepEqual(m.parts[1].carry.map((t: { name: string }) => t.name), ['r'], 'skip tensor forwarded by part 1');
  assert.deepEqual(m.parts[2].inputs.map((t: { name: string }) => t.name).sort(), ['c2', 'r']);
  assert.deepEqual(m.parts[0].inputs[0], { name: 'x', dtype: 'float32', shape: [1, 3, 8, 8], bytes: 768 });
});

test('bad input: one line naming the culprit, non-zero exit, no partial output', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-cli-'));
  const f = tinyModel(dir);
  const cases: [string[], RegExp][] = [
    [['inspect', join(dir, 'nope.onnx')], /nope\.onnx: cannot read \(ENOENT\)/],
    [['inspect', '/etc/hostname'], /hostname: not a valid ONNX model/],
    [['split', f, '--cuts', '9', '-o', join(dir, 'o1')], /unknown cut id 9/],
    [['split', f, '--cuts', 'a', '-o', join(dir, 'o2')], /--cuts 'a'/],
    [['split', f, '--cuts', '1', '-o', join(f, 'sub')], /tiny\.onnx.*cannot create the output directory/],
    [['inspect', f, '--input-shape', 'x=1x3x8'], /input 'x' has rank 4/],
  ];
  const trunc = join(dir, 'trunc.onnx');
  writeFileSync(trunc, readFileSync(f).subarray(0, 200));
  cases.push([['inspect', trunc], /trunc\.onnx: not a valid ONNX model/]);
  for (const [args, re] of cases) {
    const r = kerf(...args);
    assert.notEqual(r.status, 0, `${args.join(' ')} should fail`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  }
  assert.ok(!existsSync(join(dir, 'o1')) && !existsSync(join(dir, 'o2')));
  assert.deepEqual(readdirSync(dir).sort(), ['tiny.onnx', 'trunc.onnx']);
});
