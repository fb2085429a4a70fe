/**
 * The live dashboard in a real browser, on a running 3-tier pipeline: it shows the model, every
 * cut and per-tier figures; its latency chart grows under load; choosing another cut
 * repartitions live with exact answers; without the token the controls are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { blockCuts } from '../../src/graph/cuts.js';
import { up } from '../../src/serve/up.js';
import { ocrModel } from '../support/shared.js';
import { TOKEN, bytesOf, httpRequest, inferBinary, inputsFor, reference, sleep } from '../serve/serve-helpers.js';
import { browserMissing, launch, openPage, screenshot } from './browser.js';

// Functions handed to the page run in the browser (the test's own lib has no DOM).
declare const document: any;
type HTMLSelectElement = any;

const MODEL = ocrModel('cls');
const SHAPE = { x: [1, 3, 48, 192] };
const skip = browserMissing();

test('dashboard of a running 3-tier pipeline: model, cuts, tiers, growing chart, live repartition, token-gated controls', { skip: skip ?? false, timeout: 180_000 }, async () => {
  const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
  const feeds = inputsFor(prep, 2);
  const refs = await Promise.all(feeds.map(async (f) => bytesOf((await reference(prep, f))['softmax_0.tmp_0']!)));
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  // Link probes on (every 2 s): the edge→cloud hop is bare loopback and the cut-43 tensor is small,
  // so the requests alone may never tell its rate (too few informative samples → not confident).
  const h = await up({ model: MODEL, cuts: [20, 43], inputShapes: SHAPE, token: TOKEN, links: [{ rateBps: 200e6, delayMs: 1 }, null], workerArgs: ['--link-probes', '2'] });
  const browser = await launch();
  let load: Promise<void> | null = null;
  let stop = false;
  const tally = { ok: 0, wrong: 0, failed: [] as string[] };
  try {
    // Load: one request after another, every answer checked against the unsplit model.
    load = (async () => {
      for (let i = 0; !stop; i++) {
        const k = i % feeds.length;
        const r = await inferBinary(h.url, h.name, feeds[k]!);
        if (r.status !== 200) tally.failed.push(`${r.status} ${r.error}`);
        else if (r.outputs['softmax_0.tmp_0']!.equals(refs[k]!)) tally.ok++;
        else tally.wrong++;
        await sleep(20);
      }
    })();
    const { page, errors, requests } = await openPage(browser);
    page.on('console', (m) => { if (process.env.KERF_UI_DEBUG) console.log('[page]', m.type(), m.text()); });
    await page.goto(`${h.url}/ui/`);
    await page.waitForFunction(() => document.querySelectorAll('#tiers tbody tr').length === 3, null, { timeout: 15_000 });
    assert.equal(await page.textContent('#model-name'), h.name);
    assert.equal(await page.locator('#strip rect').count(), ids.length + 1, 'one block per cut point, plus the last');
    const legend = (await page.textContent('#strip-legend'))!;
    for (const id of ids) assert.match(legend, new RegExp(`\\b${id}\\b`), `cut ${id} listed`);
    assert.deepEqual(await page.locator('#strip line[data-cut]').count(), 2);
    const tierText = await page.locator('#tiers tbody tr').allTextContents();
    assert.deepEqual(tierText.map((t) => /^(gateway|edge|cloud)/.exec(t)?.[1]), ['gateway', 'edge', 'cloud']);
    // Per-tier compute figures arrive with the first second of load; every tier's host, CPU share
    // and memory from its own process (the workers report theirs to the gateway).
    await page.waitForFunction(() => [...document.querySelectorAll('#tiers tbody tr')].every((tr) => /ms/.test(tr.children[4]?.textContent ?? '')), null, { timeout: 10_000 });
    await page.waitForFunction(() => [...document.querySelectorAll('#tiers tbody tr')].every((tr) => /^\d+\.\d %/.test(tr.children[7]?.textContent ?? '')), null, { timeout: 10_000 });
    const cells = await page.evaluate(() => [...document.querySelectorAll('#tiers tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent as string)));
    const { hostname } = await import('node:os');
    for (const row of cells) {
      assert.equal(row[1], hostname(), `${row[0]}: host`);
      assert.match(row[7]!, /^\d+\.\d %$/, `${row[0]}: CPU share`);
      assert.match(row[8]!, /^\d+(\.\d+)? MB$/, `${row[0]}: memory`);
    }
    // Per hop: the gateway's bandwidth and RTT estimates (GET /v1/conditions; this up() has no
    // profiles), learned from the requests and the probes, no longer the priors.
    // Under load a hop's estimate may restart on a level shift (a few samples, "(prior)" again for
    // a second), so each hop need only have shown a learned figure once, not both at one instant.
    await page.waitForFunction(() => {
      const w = globalThis as unknown as { seenLearned?: Set<number> };
      const seen = (w.seenLearned ??= new Set<number>());
      const rows = [...document.querySelectorAll('#hops tbody tr')];
      rows.forEach((tr: any, i: number) => { if (/Mbit\/s$/.test(tr.children[1]?.textContent ?? '') && /s$/.test(tr.children[2]?.textContent ?? '')) seen.add(i); });
      return rows.length === 2 && seen.size === 2;
    }, null, { timeout: 30_000 });
    type Conditions = { profiled: boolean; monitor: { links: { from: string; to: string; bytesPerS: number; rttS: number; confident: boolean }[] } };
    const confidentOnce = new Set<string>();
    let conditions: Conditions;
    for (const until = Date.now() + 20_000; ;) {
      conditions = await (await fetch(`${h.url}/v1/conditions`)).json() as Conditions;
      for (const l of conditions.monitor.links) if (l.confident) confidentOnce.add(`${l.from}→${l.to}`);
      if (confidentOnce.size >= conditions.monitor.links.length || Date.now() > until) break;
      await sleep(250);
    }
    assert.equal(conditions.profiled, false);
    assert.deepEqual(conditions.monitor.links.map((l) => `${l.from}→${l.to}`), ['device→edge', 'edge→cloud']);
    assert.ok(conditions.monitor.links.every((l) => l.bytesPerS > 0 && l.rttS > 0), JSON.stringify(conditions.monitor.links));
    assert.deepEqual([...confidentOnce].sort(), ['device→edge', 'edge→cloud'], `every hop's estimate learned from transfers at least once: ${JSON.stringify(conditions.monitor.links)}`);
    assert.match((await page.textContent('#chart-bw'))!, /device → edge/);
    const n0 = Number(await page.getAttribute('#chart-latency', 'data-points'));
    await page.waitForFunction((n) => Number(document.getElementById('chart-latency')!.dataset.points) >= n + 3, n0, { timeout: 10_000 });
    const p50 = await page.evaluate(() => document.querySelector('#chart-latency .u-legend')?.textContent ?? '');
    assert.match(p50, /p50/);
    await screenshot(page, 'dashboard.png');

    // Read-only without the token: the form is disabled, and the API refuses a forged call.
    assert.equal(await page.isDisabled('#cut-0'), true);
    const forged = await page.evaluate(async () => {
      const r = await fetch('/ui/api/partition', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cuts: [20, 43] }) });
      return { status: r.status, body: await r.json() as { code: string } };
    });
    assert.equal(forged.status, 401);
    assert.equal(forged.body.code, 'KERF_ERR_AUTH');
    await page.fill('#token', 'not-the-token');
    await page.click('#unlock button');
    await page.waitForSelector('.notice.bad');
    assert.match((await page.textContent('.notice.bad'))!, /Refused/);
    assert.equal(await page.isDisabled('#cut-0'), true);

    // With the token: choose another first cut and repartition from the page.
    await page.fill('#token', TOKEN);
    await page.click('#unlock button');
    await page.waitForFunction(() => !(document.getElementById('cut-0') as HTMLSelectElement).disabled);
    const target = ids.find((id) => id > 20 && id < 43)!;
    await page.selectOption('#cut-0', String(target));
    const answered = page.waitForResponse((r) => r.url().endsWith('/ui/api/partition'));
    await page.click('#repartition button[type=submit]');
    const res = await answered;
    assert.equal(res.status(), 200, await res.text());
    const t0 = performance.now();
    // The strip's first bold cut moves to the target's block boundary.
    const want = ids.indexOf(target);
    await page.waitForFunction((w) => [...document.querySelectorAll('#strip line[data-cut]')].map((l) => Number(l.getAttribute('data-cut')))[0] === w, want, { timeout: 5_000 });
    const shownMs = performance.now() - t0;
    assert.ok(shownMs < 1000, `the page showed the new split ${shownMs.toFixed(0)} ms after the switch answered`);
    await page.waitForFunction(() => /Switched to cuts/.test(document.getElementById('controls')!.textContent ?? ''));
    const status = JSON.parse((await httpRequest(`${h.url}/v1/partition`, 'GET')).body.toString()) as { cuts: number[] };
    assert.deepEqual(status.cuts, [target, 43]);
    const okBefore = tally.ok;
    await sleep(1500);
    assert.ok(tally.ok > okBefore, 'answers keep coming on the new split');
    assert.match((await page.textContent('#log'))!, new RegExp(`20,43 → ${target},43`));
    await screenshot(page, 'dashboard-switched.png');

    // Phone-sized: nothing wider than the screen but the scrolling strip and tables.
    const phone = await openPage(browser, { width: 390, height: 844 });
    await phone.page.goto(`${h.url}/ui/`);
    await phone.page.waitForFunction(() => document.querySelectorAll('#tiers tbody tr').length === 3, null, { timeout: 15_000 });
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `page ${overflow}px wider than a phone`);
    await screenshot(phone.page, 'dashboard-phone.png');
    const origin = new URL(h.url).origin;
    assert.deepEqual([...requests, ...phone.requests].filter((u) => !u.startsWith(origin)), [], 'no request leaves the gateway');
    // The two refusals above are the only failed loads.
    assert.deepEqual([...errors, ...phone.errors].filter((e) => !/status of 401/.test(e)), []);
    assert.equal(errors.filter((e) => /status of 401/.test(e)).length, 2);
  } finally {
    stop = true;
    await load?.catch(() => {});
    await browser.close();
    await h.close();
  }
  assert.deepEqual(tally.failed, []);
  assert.equal(tally.wrong, 0);
  assert.ok(tally.ok > 20, `${tally.ok} answers`);
});
