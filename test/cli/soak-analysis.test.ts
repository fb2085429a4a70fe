/**
 * The soak benchmark's verdict (analyseSoak, pure): a flat process passes, a process that leaks
 * steadily or a p99 that drifts up is reported as missed, and the windows are where they should be.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseSoak, type RssSample, type SoakRequest } from '../../src/cli/bench/soak.js';

const MB = 1e6;
const criteria = { maxRssGrowth: 0.05, maxP99Ratio: 1.5 };

/** 600 s sampled each second: gateway flat at 200 MB with a switch-sized wobble; worker grows by `leakMB` over the run. */
function samples(leakMB: number): RssSample[] {
  return Array.from({ length: 601 }, (_, t) => ({
    t: t * 1000,
    rss: [200 * MB + ((t / 10) % 2 < 1 ? 0 : 8 * MB), 300 * MB + (leakMB * MB * t) / 600 + (t < 30 ? -100 * MB : 0)],
  }));
}

/** 20 req/s for 600 s; latency 20 ms, one in 50 at `tailMs(t)`. */
function requests(tailMs: (tS: number) => number): SoakRequest[] {
  const out: SoakRequest[] = [];
  for (let i = 0; i < 12_000; i++) {
    const start = i * 50;
    out.push({ start, end: start + (i % 50 === 0 ? tailMs(start / 1000) : 20), status: 200, correct: true });
  }
  return out;
}

const base = { names: ['gateway', 'edge'], pids: [1, 2], warmupMs: 60_000, windowMs: 60_000, endMs: 600_000, criteria };

test('flat memory and a steady tail: both met; the warm-up ramp is not counted', () => {
  const a = analyseSoak({ ...base, samples: samples(0), requests: requests(() => 80) });
  assert.equal(a.met.rss, true);
  assert.equal(a.met.p99, true);
  for (const p of a.processes) assert.ok(Math.abs(p.growth) < 0.01, `${p.name} growth ${p.growth}`);
  assert.equal(a.p99ByWindowMs.length, 9);
  assert.equal(a.requestsFirst, 1200);
  assert.equal(a.requestsLast, 1200);
  assert.ok(Math.abs(a.p99Ratio - 1) < 1e-9);
});

test('a worker leaking 30 MB over 10 min (≈ 9% of 300 MB between the windows) is missed, and named', () => {
  const a = analyseSoak({ ...base, samples: samples(30), requests: requests(() => 80) });
  assert.equal(a.met.rss, false);
  const edge = a.processes.find((p) => p.name === 'edge')!;
  assert.ok(edge.growth > 0.05 && edge.growth < 0.1, `growth ${edge.growth}`);
  assert.ok(Math.abs(edge.slopeMBPerMin - 3) < 0.2, `slope ${edge.slopeMBPerMin}`);
  assert.ok(Math.abs(a.processes[0]!.growth) < 0.01);
});

test('a tail that doubles by the end is missed; failed requests do not count as latency', () => {
  const reqs = requests((t) => (t < 300 ? 80 : 160));
  reqs.push({ start: 100_000, end: 100_001, status: 503, correct: false });
  const a = analyseSoak({ ...base, samples: samples(0), requests: reqs });
  assert.equal(a.met.p99, false);
  assert.ok(Math.abs(a.p99Ratio - 2) < 1e-9);
  assert.equal(a.requestsFirst, 1200);
});

test('a run too short for two windows after the warm-up is refused', () => {
  assert.throws(() => analyseSoak({ ...base, endMs: 150_000, samples: samples(0), requests: [] }), /KERF_ERR_USAGE|shorter than two windows/);
});
