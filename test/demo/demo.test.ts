import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/shared.js';

test('kerf demo: profiles three tiers, plans, serves the split, every answer equals the unsplit model', () => {
  const keep = join(mkdtempSync(join(tmpdir(), 'kerf-demo-test-')), 'out');
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'kerf.js'), 'demo', '--requests', '2', '--json', '--keep', keep], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as {
    plan: { cuts: number[]; tiers: { tier: string; blocks: number[] | null }[]; predictedS: number };
    results: { label: string; p50: number; predicted: number; ratio: number; equal: number; n: number; failed: number; deviceCpuS: number | null }[];
    calibration: { coreS: number; coreSAtMeasurement: number; coreSAfterMeasurement: number; speedDriftAfter: number; deviceCpu: number | null; edgeCpu: number | null; quota: boolean; gateway: { fixedS: number; wireSPerByte: number };
      deviceServed: { cpuS: number; allowedS: number; ratio: number; profiledWholeCpuS: number | null } | null };
    steps: { step: string; seconds: number }[];
  };
  assert.equal(s.results.length, 3);
  assert.match(s.results[0]!.label, /^kerf plan( \(= all on (device|cloud)\))?$/);
  assert.deepEqual(s.results.slice(1).map((x) => x.label), ['all on device', 'all on cloud']);
  // The calibration the predictions rest on: this machine's speed, the shares, the gateway's own work.
  const c = s.calibration;
  assert.ok(c.coreS > 0 && c.gateway.fixedS >= 0 && c.gateway.wireSPerByte >= 0, JSON.stringify(c));
  // the model's CPU at full speed, read again before and after the measurements
  assert.ok(c.coreSAtMeasurement > 0 && c.coreSAfterMeasurement > 0 && Math.abs(c.speedDriftAfter - c.coreSAfterMeasurement / c.coreS) < 1e-12, JSON.stringify(c));
  if (c.quota) assert.ok(c.deviceCpu! > 0 && c.deviceCpu! <= c.edgeCpu! && c.edgeCpu! <= 1, 'the device is the slowest tier');
  // All on device, the CPU the device spent a request as served, against what its prediction allows at its share.
  if (c.quota && c.deviceCpu! < 1) {
    const d = c.deviceServed!, dev = s.results[1]!;
    assert.ok(d.cpuS > 0 && d.cpuS === dev.deviceCpuS && Math.abs(d.allowedS - dev.predicted * c.deviceCpu!) < 1e-12 && Math.abs(d.ratio - d.cpuS / d.allowedS) < 1e-12, JSON.stringify(d));
    assert.ok(d.profiledWholeCpuS! > 0, 'the device profile records the CPU of the whole model under its quota');
    // all on cloud: the device's gateway only forwards, a fraction of the model's CPU
    assert.ok(s.results[2]!.deviceCpuS! > 0 && s.results[2]!.deviceCpuS! < d.cpuS, JSON.stringify(s.results.map((x) => x.deviceCpuS)));
  }
  assert.equal(s.steps.length, 6);
  for (const x of s.results) assert.ok(Math.abs(x.ratio - x.p50 / x.predicted) < 1e-9 && x.predicted > 0);
  for (const x of s.results) {
    assert.equal(x.failed, 0, `${x.label}: failed requests`);
    assert.equal(x.equal, x.n, `${x.label}: outputs differ from the unsplit model`);
    assert.ok(x.p50 > 0 && Number.isFinite(x.p50));
  }
  assert.ok(s.plan.tiers.some((t) => t.blocks), 'the plan places blocks');
  const files = readdirSync(keep);
  assert.ok(files.includes('plan.json'));
  assert.equal(files.filter((f) => f.endsWith('.profile.json')).length, 3);
  // No cgroup of ours is left behind.
  if (existsSync('/sys/fs/cgroup/cpu')) {
    assert.deepEqual(readdirSync('/sys/fs/cgroup/cpu').filter((d) => d.startsWith(`kerf-${r.pid}-`) || (d.startsWith('kerf-') && d.includes('-profile-'))), []);
  }
});
