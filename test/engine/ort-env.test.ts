/**
 * onnxruntime's telemetry is off in every kerf process unless the user asked for it
 * (src/engine/ort-env.ts): the variable is set before onnxruntime loads, kept when given, and
 * inherited by the processes kerf starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ort = new URL('../../src/engine/ort.js', import.meta.url).href;

/** In a fresh node with `env`: load kerf's engine, create a session (onnxruntime initialises), and report the variable, here and in a child. */
function probe(env: Record<string, string | undefined>): { here: string; child: string } {
  const script = `
    const { Session } = await import(${JSON.stringify(ort)});
    const { ModelBuilder } = await import(${JSON.stringify(new URL('../../src/graph/builder.js', import.meta.url).href)});
    const b = new ModelBuilder({ name: 'id' });
    b.input('x', 'float32', [1]);
    b.node('Identity', ['x'], ['y']);
    b.output('y', 'float32', [1]);
    const s = await Session.create(b.toBytes(), { label: 'probe' });
    await s.close();
    const { execFileSync } = await import('node:child_process');
    const child = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.env.ORT_DISABLE_TELEMETRY))']).toString();
    process.stdout.write(JSON.stringify({ here: String(process.env.ORT_DISABLE_TELEMETRY), child }));`;
  const base = { ...process.env };
  delete base.ORT_DISABLE_TELEMETRY;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...base, ...env }, cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { here: string; child: string };
}

test('telemetry: off by default, in kerf and in what it starts', () => {
  assert.deepEqual(probe({}), { here: '1', child: '1' });
});

test("telemetry: a value the user set is kept (ORT_DISABLE_TELEMETRY=0 is onnxruntime's default)", () => {
  assert.deepEqual(probe({ ORT_DISABLE_TELEMETRY: '0' }), { here: '0', child: '0' });
});
