import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, KerfError, isKerfError, kerfError } from '../src/errors.js';
import { ROOT } from './support/shared.js';

test('docs/errors.md lists exactly the codes of the catalogue', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `(KERF_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(documented.sort(), Object.keys(ErrorCodes).sort());
});

test('every code used in src/ is in the catalogue', () => {
  const used = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) for (const m of readFileSync(p, 'utf8').matchAll(/'(KERF_ERR_[A-Z_]+)'/g)) used.add(m[1]!);
    }
  };
  walk(join(ROOT, 'src'));
  for (const c of used) assert.ok(c in ErrorCodes, `${c} is used but not in src/errors.ts`);
});

test('errors keep their code across JSON (as they do across a socket)', () => {
  const e = kerfError('KERF_ERR_CUT', 'm.onnx: unknown cut id 9');
  assert.ok(e instanceof KerfError && e instanceof Error);
  const wire = JSON.parse(JSON.stringify({ code: e.code, message: e.message }));
  assert.ok(isKerfError(wire));
  assert.ok(!isKerfError({ code: 'ENOENT', message: 'x' }));
});
