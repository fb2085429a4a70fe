/** docs/grafana/kerf-dashboard.json stays in step with the metrics the code registers, and with docs/dashboard.md. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/shared.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Panel { type: string; id: number; title: string; description?: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { expr: string }[] }

test('grafana dashboard: every kerf metric has a panel, every panel queries real metrics and is described', () => {
  const dash = JSON.parse(readFileSync(join(ROOT, 'docs', 'grafana', 'kerf-dashboard.json'), 'utf8')) as { uid: string; panels: Panel[]; templating: { list: { name: string }[] } };
  const registered = new Set<string>();
  for (const f of sources(join(ROOT, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/\.(?:counter|gauge|histogram)\('(kerf_[a-z_]+)'/g)) registered.add(m[1]!);
  }
  assert.ok(registered.size >= 20, `found ${registered.size} metrics in src/`);
  const queried = new Set<string>();
  const ids = new Set<number>();
  for (const p of dash.panels) {
    assert.ok(!ids.has(p.id), `panel id ${p.id} twice`);
    ids.add(p.id);
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} is wider than the grid`);
    if (p.type === 'row') continue;
    assert.ok((p.description ?? '').length > 20, `${p.title} has no description`);
    assert.ok(p.targets?.length, `${p.title} has no query`);
    for (const t of p.targets!) {
      const names = [...t.expr.matchAll(/\b(kerf_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''));
      assert.ok(names.length, `${p.title}: '${t.expr}' queries no kerf metric`);
      for (const n of names) {
        assert.ok(registered.has(n), `${p.title}: ${n} is not a metric kerf registers`);
        queried.add(n);
      }
      assert.equal((t.expr.match(/\(/g) ?? []).length, (t.expr.match(/\)/g) ?? []).length, `${p.title}: unbalanced parentheses in '${t.expr}'`);
    }
  }
  assert.deepEqual([...registered].filter((m) => !queried.has(m)).sort(), [], 'metrics without a panel');
  assert.deepEqual(dash.templating.list.map((v) => v.name), ['datasource', 'job', 'instance']);
  const doc = readFileSync(join(ROOT, 'docs', 'dashboard.md'), 'utf8');
  for (const p of dash.panels.filter((x) => x.type !== 'row')) assert.ok(doc.includes(p.title), `docs/dashboard.md does not describe the panel '${p.title}'`);
});
