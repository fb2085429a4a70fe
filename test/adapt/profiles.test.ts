import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTierProfiles } from '../../src/adapt/live.js';

const profile = (model: string, system: string, tier: string) => JSON.stringify({
  schema: 'kerf.profile/v1', model: { name: model }, system: { name: system, tier }, granularity: 'single', source: 'kerf',
  blocks: [{ index: 0, firstLayer: 0, lastLayer: 0, latency: { median: 0.01, p90: 0.01, min: 0.01, spread: 0, runs: 1 }, outputBytes: 4, paramBytes: 0 }],
});

test('adapt --profiles takes the folder kerf plan takes: <model>.<system>.profile.json, tiers as kerf up names them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-adapt-profiles-'));
  try {
    writeFileSync(join(dir, 'm.phone.profile.json'), profile('m', 'phone', 'device'));
    writeFileSync(join(dir, 'm.box.profile.json'), profile('m', 'box', 'edge'));
    writeFileSync(join(dir, 'other.box.profile.json'), profile('other', 'box', 'edge'));
    const got = await loadTierProfiles(dir, ['device(phone)', 'edge(box)'], 'm');
    assert.deepEqual(got.map((p) => `${p.model.name}/${p.system.name}`), ['m/phone', 'm/box']);
    const plain = await loadTierProfiles(dir, ['device', 'box'], 'm');
    assert.deepEqual(plain.map((p) => p.system.name), ['phone', 'box']);
    await assert.rejects(loadTierProfiles(dir, ['device', 'cloud'], 'm'), (e: Error & { code: string }) =>
      e.code === 'KERF_ERR_USAGE' && /no profile fits tier 'cloud' of model 'm'/.test(e.message) && /m\.phone\.profile\.json \(device 'phone'\)/.test(e.message));
    // the older layout, one <tier>.profile.json per tier, still reads
    writeFileSync(join(dir, 'cloud.profile.json'), profile('n', 'big', 'cloud'));
    assert.equal((await loadTierProfiles(dir, ['device', 'cloud'], 'm'))[1]!.system.name, 'big');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
