/**
 * `kerf view` in a real browser: real profiles (docs/img, measured with kerf profile), a plan
 * and a placement made from them by kerf plan and kerf place, and a benchmark's JSON lines:
 * every chart draws, no console error, no request beyond the report file itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../support/shared.js';
import { KERF } from '../serve/serve-helpers.js';
import { browserMissing, launch, openPage, screenshot } from './browser.js';

declare const document: any;
const skip = browserMissing();
const PROFILES = ['resnet18.epyc-1thread.profile.json', 'resnet18.epyc-2threads.profile.json'].map((f) => join(ROOT, 'docs', 'img', f));

function kerf(args: string[], cwd: string): string {
  const r = spawnSync(process.execPath, [KERF, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `kerf ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('kerf view: profiles, a plan, a placement and a benchmark in one self-contained report that draws with no fetch', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-view-'));
  const browser = await launch();
  try {
    const prof = join(dir, 'profiles');
    mkdirSync(prof);
    for (const p of PROFILES) writeFileSync(join(prof, p.split('/').pop()!), readFileSync(p));
    writeFileSync(join(dir, 'net.yaml'), 'links:\n  - { from: epyc-1thread, to: epyc-2threads, rttMs: 1, bandwidthMbps: 1000 }\n');
    kerf(['plan', 'resnet18', '--profiles', prof, '--network', 'net.yaml', '--pareto', '-o', 'plan.json'], dir);
    writeFileSync(join(dir, 'cluster.yaml'), [
      'schema: kerf.cluster/v1', 'entry: gw', 'nodes:', '  - { name: gw, memoryMB: 512 }', '  - { name: pi1, memoryMB: 512, speed: 1.5 }', '  - { name: pi2, memoryMB: 512, speed: 2 }',
      'links:', '  - { from: gw, to: pi1, bandwidthMbps: 100, rttMs: 1 }', '  - { from: pi1, to: pi2, bandwidthMbps: 200, rttMs: 1 }', '  - { from: pi2, to: gw, bandwidthMbps: 100, rttMs: 1 }', '  - { from: gw, to: pi2, bandwidthMbps: 100, rttMs: 1 }', '',
    ].join('\n'));
    kerf(['place', 'resnet18', '--profile', PROFILES[0]!, '--cluster', 'cluster.yaml', '--pareto', '-o', 'placement.json'], dir);
    // The rows `kerf bench switch --json` prints (one JSON document a line).
    writeFileSync(join(dir, 'switch.jsonl'), [
      { model: 'm', strategy: 'pause-resume', rate: 20, switches: 4, downtimeMs: 61.2, p99Ratio: 3.1, failed: 0, lost: 0, wrong: 0 },
      { model: 'm', strategy: 'on-demand', rate: 20, switches: 4, downtimeMs: 0.002, p99Ratio: 1.2, failed: 0, lost: 0, wrong: 0 },
    ].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const out = kerf(['view', ...PROFILES, 'plan.json', 'placement.json', 'switch.jsonl', '-o', 'report.html'], dir);
    assert.match(out, /wrote report\.html \(5 files/);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href="(?!data:)/, 'no external script or style');

    const { page, errors, requests } = await openPage(browser);
    const url = pathToFileURL(join(dir, 'report.html')).href;
    await page.goto(url);
    await page.waitForFunction(() => document.querySelectorAll('canvas').length >= 3);
    const sections = await page.locator('main section h2').allTextContents();
    assert.deepEqual(sections, ['Profiles of resnet18', 'Plan for resnet18', 'Placement of resnet18', 'Benchmark: switch.jsonl']);
    // Charts drew their data: per-block latency of both systems, sizes per cut, the Pareto front.
    const points = await page.evaluate(() => [...document.querySelectorAll('.chart[data-points]')].map((e: any) => Number(e.dataset.points)));
    assert.ok(points.length >= 2 && points.slice(0, 2).every((n: number) => n === 22), `chart points ${points}`);
    assert.equal(await page.locator('section:nth-of-type(1) .u-legend .u-series').count() >= 3, true);
    assert.equal(await page.locator('section:nth-of-type(2) .strip rect').count(), 22);
    assert.ok((await page.locator('section:nth-of-type(2) tbody tr').count()) >= 2, 'ranked table');
    assert.match((await page.textContent('section:nth-of-type(3)'))!, /← bottleneck/);
    // the fronts kerf plan --pareto and kerf place --pareto wrote, drawn as tables
    assert.match((await page.textContent('section:nth-of-type(2)'))!, /Pareto front \(kerf plan --pareto\): \d+ placement/);
    assert.match((await page.textContent('section:nth-of-type(3)'))!, /Pareto front \(kerf place --pareto\): \d+ placement/);
    assert.match((await page.textContent('section:nth-of-type(4)'))!, /on-demand/);
    await screenshot(page, 'view-report.png');
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, [url], 'the report fetches nothing');
    // A phone-sized screen reads it without sideways scrolling of the page itself.
    const phone = await openPage(browser, { width: 390, height: 844 });
    await phone.page.goto(url);
    await phone.page.waitForFunction(() => document.querySelectorAll('canvas').length >= 3);
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `report ${overflow}px wider than a phone`);
    assert.deepEqual(phone.errors, []);
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kerf view: a file it cannot show is one line naming it, and nothing is written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-view-'));
  try {
    writeFileSync(join(dir, 'bad.json'), '{"schema":"kerf.cluster/v1"}');
    writeFileSync(join(dir, 'text.json'), 'not json');
    for (const [f, msg] of [['bad.json', /bad\.json: schema 'kerf\.cluster\/v1' is not one kerf view shows/], ['text.json', /text\.json: not JSON/], ['missing.json', /missing\.json: cannot read \(ENOENT\)/]] as const) {
      const r = spawnSync(process.execPath, [KERF, 'view', f, '-o', 'r.html'], { cwd: dir, encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
    assert.throws(() => readFileSync(join(dir, 'r.html')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
