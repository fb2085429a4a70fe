/**
 * `kerf bench soak`: a long run of a 3-tier pipeline (kerf up: gateway + 2 workers as child
 * processes) at a fixed share of its measured capacity, repartitioned live every few seconds.
 * Checks what a leak or a slow drift would show: the resident memory of every process after
 * warm-up, requests lost or answered wrongly (bytes compared with the unsplit model's), and
 * whether the p99 of the last window is still that of the first.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kerfError } from '../../errors.js';
import { parse } from '../args.js';
import { table } from '../format.js';
import { encodeInferRequest } from '../../serve/oip.js';
import { closedLoopRate, quantile, sleep, twoSplits } from './load.js';

const HELP = `usage: kerf bench soak [--model m.onnx] [--minutes 10] [--load 0.6] [--every 10] [options]

Serve the model split over 3 local tiers (kerf up), measure what the pipeline sustains, then
drive an open-loop request rate of --load × that for --minutes, switching live between two
splits every --every seconds. Every answer is compared byte for byte with the unsplit model's.
After the warm-up it reports, per process (gateway and each worker), the resident memory
(VmRSS) of the first and the last window and their ratio, and the p99 latency of the first and
the last window and their ratio; and the requests sent, failed, lost and wrong.

Met when: every process's RSS grew ≤ --max-rss-growth (default 5%) from the first window to the
last, 0 lost, 0 wrong, 0 failed, and p99 last ÷ first ≤ --max-p99-ratio (default 1.5).
The exit code is 0 when all are met, 1 otherwise.

options:
  --model FILE          the model (default ../shared/models/resnet18.onnx)
  --minutes M           length of the run after the capacity measurement (default 10)
  --load F              share of the measured capacity to drive (default 0.6)
  --rate R              requests per second instead of --load × capacity
  --every S             seconds between live repartitions (default 10)
  --warmup-s S          seconds not counted in the windows (default: min(60, a fifth of the run))
  --window-s S          length of the first and the last window (default: 6 switch periods,
                        at most a third of what follows the warm-up)
  --strategy NAME       switching strategy (default: the pipeline's, on-demand)
  --cuts A1,A2          first split (default: single-tensor cuts at 1/3 and 2/3)
  --to B1,B2            second split (default: at 1/2 and 5/6)
  --max-rss-growth F    default 0.05
  --max-p99-ratio F     default 1.5
  --json                the result as one JSON line
  -h, --help            this help`;

const OPTIONS = {
  model: { type: 'string' }, minutes: { type: 'string' }, load: { type: 'string' }, rate: { type: 'string' }, every: { type: 'string' },
  'warmup-s': { type: 'string' }, 'window-s': { type: 'string' }, strategy: { type: 'string' }, cuts: { type: 'string' }, to: { type: 'string' },
  'max-rss-growth': { type: 'string' }, 'max-p99-ratio': { type: 'string' }, json: { type: 'boolean' },
} as const;

const here = dirname(fileURLToPath(import.meta.url));

/** One RSS sample of every process, bytes, in pipeline order; t in ms from the start of the run. */
export interface RssSample { t: number; rss: number[] }
/** One request: when it started and ended (ms from the start of the run) and how it went. */
export interface SoakRequest { start: number; end: number; status: number; correct: boolean }

export interface SoakCriteria { maxRssGrowth: number; maxP99Ratio: number }

export interface SoakProcessFigures {
  name: string;
  pid: number;
  /** median RSS of the first and of the last window after warm-up, MB */
  firstMB: number;
  lastMB: number;
  /** last ÷ first − 1 */
  growth: number;
  /** highest RSS after warm-up, MB */
  peakMB: number;
  /** least-squares slope of RSS after warm-up, MB per minute */
  slopeMBPerMin: number;
}

export interface SoakAnalysis {
  warmupS: number;
  windowS: number;
  processes: SoakProcessFigures[];
  /** p99 (ms) of the 200-answers started in the first and in the last window */
  p99FirstMs: number;
  p99LastMs: number;
  p99Ratio: number;
  p50FirstMs: number;
  p50LastMs: number;
  /** p99 of each whole window-length slice after warm-up, in order (ms) */
  p99ByWindowMs: number[];
  requestsFirst: number;
  requestsLast: number;
  met: { rss: boolean; p99: boolean };
}

function median(xs: number[]): number { return quantile(xs, 0.5); }

function slopePerMin(pts: { t: number; y: number }[]): number {
  if (pts.length < 2) return NaN;
  const mt = pts.reduce((a, p) => a + p.t, 0) / pts.length, my = pts.reduce((a, p) => a + p.y, 0) / pts.length;
  let num = 0, den = 0;
  for (const p of pts) { num += (p.t - mt) * (p.y - my); den += (p.t - mt) ** 2; }
  return den > 0 ? (num / den) * 60_000 : NaN;
}

/**
 * The soak's verdict from its samples (pure). The first window starts at the end of the warm-up,
 * the last ends at `endMs`; RSS per process is the median of its samples in each window, latency
 * the p99 of the successful requests started in each.
 */
export function analyseSoak(o: {
  names: string[]; pids: number[]; samples: RssSample[]; requests: SoakRequest[];
  warmupMs: number; windowMs: number; endMs: number; criteria: SoakCriteria;
}): SoakAnalysis {
  const firstFrom = o.warmupMs, firstTo = o.warmupMs + o.windowMs, lastFrom = o.endMs - o.windowMs, lastTo = o.endMs;
  if (lastFrom < firstTo) throw kerfError('KERF_ERR_USAGE', `soak: the run after the warm-up (${((o.endMs - o.warmupMs) / 1000).toFixed(0)} s) is shorter than two windows of ${(o.windowMs / 1000).toFixed(0)} s`);
  const inWin = (t: number, a: number, b: number): boolean => t >= a && t < b;
  const processes = o.names.map((name, k): SoakProcessFigures => {
    const after = o.samples.filter((s) => s.t >= o.warmupMs && s.rss[k]! > 0);
    const first = median(after.filter((s) => inWin(s.t, firstFrom, firstTo)).map((s) => s.rss[k]!));
    const last = median(after.filter((s) => inWin(s.t, lastFrom, lastTo)).map((s) => s.rss[k]!));
    return {
      name, pid: o.pids[k]!, firstMB: first / 1e6, lastMB: last / 1e6, growth: last / first - 1,
      peakMB: Math.max(...after.map((s) => s.rss[k]!)) / 1e6,
      slopeMBPerMin: slopePerMin(after.map((s) => ({ t: s.t, y: s.rss[k]! / 1e6 }))),
    };
  });
  const ok = o.requests.filter((r) => r.status === 200);
  const lat = (a: number, b: number): number[] => ok.filter((r) => inWin(r.start, a, b)).map((r) => r.end - r.start);
  const first = lat(firstFrom, firstTo), last = lat(lastFrom, lastTo);
  const p99ByWindowMs: number[] = [];
  for (let a = firstFrom; a + o.windowMs <= lastTo + 1e-9; a += o.windowMs) p99ByWindowMs.push(quantile(lat(a, a + o.windowMs), 0.99));
  const p99FirstMs = quantile(first, 0.99), p99LastMs = quantile(last, 0.99);
  const p99Ratio = p99LastMs / p99FirstMs;
  return {
    warmupS: o.warmupMs / 1000, windowS: o.windowMs / 1000, processes,
    p99FirstMs, p99LastMs, p99Ratio, p50FirstMs: quantile(first, 0.5), p50LastMs: quantile(last, 0.5), p99ByWindowMs,
    requestsFirst: first.length, requestsLast: last.length,
    met: {
      rss: processes.every((p) => Number.isFinite(p.growth) && p.growth <= o.criteria.maxRssGrowth),
      p99: first.length > 0 && last.length > 0 && p99Ratio <= o.criteria.maxP99Ratio,
    },
  };
}

function num(v: string | undefined, flag: string, dflt: number, ok: (x: number) => boolean, what: string): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (!ok(x)) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected ${what}`);
  return x;
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP, false);
  if (!p) return 0;
  const v = p.values;
  const pos = (x: number): boolean => Number.isFinite(x) && x > 0;
  const minutes = num(v.minutes, '--minutes', 10, pos, 'a number of minutes > 0');
  const loadShare = num(v.load, '--load', 0.6, (x) => pos(x) && x <= 1, 'a share of the capacity in (0, 1]');
  const everyS = num(v.every, '--every', 10, pos, 'seconds > 0');
  const criteria: SoakCriteria = {
    maxRssGrowth: num(v['max-rss-growth'], '--max-rss-growth', 0.05, (x) => Number.isFinite(x) && x >= 0, 'a fraction ≥ 0'),
    maxP99Ratio: num(v['max-p99-ratio'], '--max-p99-ratio', 1.5, pos, 'a ratio > 0'),
  };
  const runMs = minutes * 60_000;
  const warmupMs = num(v['warmup-s'], '--warmup-s', Math.min(60, minutes * 60 / 5), (x) => Number.isFinite(x) && x >= 0, 'seconds ≥ 0') * 1000;
  const windowMs = num(v['window-s'], '--window-s', Math.min(6 * everyS, (runMs - warmupMs) / 3000), pos, 'seconds > 0') * 1000;
  if (runMs < 2 * everyS * 1000) throw kerfError('KERF_ERR_USAGE', `--minutes ${minutes}: the run must hold at least 2 switches (one every ${everyS} s)`);
  if (warmupMs + 2 * windowMs > runMs) throw kerfError('KERF_ERR_USAGE', `--minutes ${minutes}: the run must hold the warm-up (${warmupMs / 1000} s) and two windows of ${windowMs / 1000} s`);
  const rateGiven = v.rate !== undefined ? num(v.rate, '--rate', 0, pos, 'requests per second > 0') : null;
  const { prepareModel, Session, normalisedBytes, randomInputs } = await import('../../engine/index.js');
  const { up } = await import('../../serve/up.js');
  const { setSwitchStrategy, repartition, startLoad, SWITCH_STRATEGIES, DEFAULT_STRATEGY } = await import('../../serve/index.js');
  const strategy = v.strategy ?? DEFAULT_STRATEGY;
  if (!(SWITCH_STRATEGIES as readonly string[]).includes(strategy)) throw kerfError('KERF_ERR_USAGE', `--strategy '${strategy}': one of ${SWITCH_STRATEGIES.join(', ')}`);
  const modelPath = v.model ?? resolve(here, '..', '..', '..', '..', '..', 'shared', 'models', 'resnet18.onnx');
  if (!existsSync(modelPath)) throw kerfError('KERF_ERR_FILE', `${modelPath}: no such model; pass --model m.onnx`);
  const log = (s: string): void => { if (!v.json) process.stderr.write(s + '\n'); };

  const prep = await prepareModel(modelPath);
  const { A, B } = twoSplits(prep, v.cuts, v.to);

  // Expected answers: the unsplit model, in this process.
  const whole = await Session.create(normalisedBytes(prep), { label: 'whole' });
  const cases: import('../../serve/index.js').LoadCase[] = [];
  try {
    for (let k = 0; k < 4; k++) {
      const f = randomInputs(prep.model, prep.inputShapes, 700 + k);
      const out = await whole.run(f);
      cases.push({
        inputs: Object.entries(f).map(([name, t]) => ({ name, dtype: t.dtype as 'float32', dims: t.dims, data: t.data as Float32Array })),
        expect: Object.fromEntries(prep.model.outputs.map((o) => { const d = out[o.name]!.data as ArrayBufferView; return [o.name, new Uint8Array(d.buffer, d.byteOffset, d.byteLength)]; })),
      });
    }
  } finally { await whole.close(); }

  log(`${prep.model.name}: starting 3 tiers, cuts ${A.join(',')} ⇄ ${B.join(',')} every ${everyS} s (${strategy})`);
  const h = await up({ model: modelPath, cuts: A });
  try {
    await setSwitchStrategy(h.url, strategy as never, {}, h.token);
    // Capacity: a closed loop after one round trip of switches, so the figure is that of a
    // pipeline that has switched (caches, connections and JIT as they will be).
    await repartition(h.url, { cuts: B }, h.token);
    await repartition(h.url, { cuts: A }, h.token);
    const c0 = cases[0]!;
    const { head, data } = encodeInferRequest(c0.inputs);
    const probe = Buffer.concat([head, ...data]);
    await closedLoopRate(h.url, h.name, probe, head.length, 1000);
    const capacity = await closedLoopRate(h.url, h.name, probe, head.length, 4000);
    const rate = rateGiven ?? Math.max(1, loadShare * capacity);
    log(`pipeline sustains ${capacity.toFixed(1)} req/s (4 in flight): driving ${rate.toFixed(1)} req/s for ${minutes} min, warm-up ${warmupMs / 1000} s, windows of ${windowMs / 1000} s`);

    const pids = h.processes.map((x) => x.pid), names = h.processes.map((x) => `${x.name} (${x.role})`);
    const samples: RssSample[] = [];
    const switches: { t: number; ms: number; downtimeMs: number; error?: string }[] = [];
    const t0 = performance.now();
    const load = startLoad({ url: h.url, model: h.name, cases, rate, timeoutMs: 30_000 });
    const sampleNow = (): void => {
      const m = h.memory();
      samples.push({ t: performance.now() - t0, rss: pids.map((pid) => m.find((x) => x.pid === pid)?.rss ?? 0) });
    };
    const sampler = setInterval(sampleNow, 1000);
    let lastLog = 0;
    try {
      // Switch on an absolute schedule (every S from the start), so slow switches do not
      // stretch the period.
      for (let k = 1; k * everyS * 1000 < runMs; k++) {
        const due = t0 + k * everyS * 1000;
        await sleep(Math.max(0, due - performance.now()));
        const s = performance.now();
        try {
          const rep = await repartition(h.url, { cuts: k % 2 === 1 ? B : A }, h.token);
          switches.push({ t: s - t0, ms: performance.now() - s, downtimeMs: rep.downtimeMs });
        } catch (e) {
          switches.push({ t: s - t0, ms: performance.now() - s, downtimeMs: NaN, error: (e as Error).message });
        }
        if (s - t0 - lastLog >= 60_000) {
          lastLog = s - t0;
          const m = h.memory();
          log(`  ${((s - t0) / 60_000).toFixed(1)} min: ${load.sent} sent, ${switches.length} switches, RSS ${m.map((x) => `${(x.rss / 1e6).toFixed(0)}`).join('/')} MB`);
        }
      }
      await sleep(Math.max(0, t0 + runMs - performance.now()));
      sampleNow();
    } finally {
      clearInterval(sampler);
    }
    const endMs = performance.now() - t0;
    const recs = await load.stop();
    const failed = recs.filter((r) => r.status !== 200 && r.status !== 0);
    const lost = load.sent - recs.length + recs.filter((r) => r.status === 0).length;
    const wrong = recs.filter((r) => r.status === 200 && (!r.correct || !r.idOk)).length;
    const an = analyseSoak({
      names, pids, samples, warmupMs, windowMs, endMs, criteria,
      requests: recs.map((r) => ({ start: r.start - t0, end: r.end - t0, status: r.status, correct: r.correct && r.idOk })),
    });
    const failureCounts = new Map<string, number>();
    for (const r of failed) { const why = r.message ?? r.code ?? `HTTP ${r.status}`; failureCounts.set(why, (failureCounts.get(why) ?? 0) + 1); }
    const switchErrors = switches.filter((s) => s.error);
    const swMs = switches.filter((s) => !s.error).map((s) => s.ms);
    const result = {
      kind: 'soak', model: prep.model.name, strategy, minutes, everyS, cuts: A, to: B, capacityReqS: capacity, load: rate / capacity, rateReqS: rate,
      sent: load.sent, answered: recs.filter((r) => r.status === 200).length, failed: failed.length, lost, wrong,
      failedCodes: [...new Set(failed.map((r) => r.code ?? `HTTP ${r.status}`))],
      // what refused, and how often (the three most frequent messages: which queue or limit)
      failedMessages: [...failureCounts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([message, n]) => ({ message, n })),
      switches: switches.length, switchErrors: switchErrors.length, switchErrorFirst: switchErrors[0]?.error,
      switchMsMedian: quantile(swMs, 0.5), switchMsMax: Math.max(...swMs), downtimeMsMax: Math.max(...switches.filter((s) => !s.error).map((s) => s.downtimeMs)),
      ...an,
    };
    const met = an.met.rss && an.met.p99 && lost === 0 && wrong === 0 && failed.length === 0 && switchErrors.length === 0;
    if (v.json) {
      process.stdout.write(JSON.stringify({ ...result, met }) + '\n');
    } else {
      const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
      const out: string[] = [];
      out.push(`${result.model}: ${minutes} min at ${f(rate)} req/s (${f(100 * rate / capacity, 0)}% of ${f(capacity)} req/s measured, 4 in flight), ${strategy} switch every ${everyS} s between cuts ${A.join(',')} and ${B.join(',')}`);
      out.push(`warm-up ${f(an.warmupS, 0)} s; first window ${f(an.warmupS, 0)}–${f(an.warmupS + an.windowS, 0)} s, last window ${f(endMs / 1000 - an.windowS, 0)}–${f(endMs / 1000, 0)} s`);
      out.push(table(['process', 'pid', 'RSS first MB', 'RSS last MB', 'growth', 'peak MB', 'slope MB/min'],
        an.processes.map((x) => [x.name, x.pid, f(x.firstMB), f(x.lastMB), `${f(100 * x.growth, 2)}%`, f(x.peakMB), f(x.slopeMBPerMin, 3)])));
      out.push(`requests: ${result.sent} sent, ${result.answered} answered 200, ${result.failed} failed${result.failedCodes.length ? ` (${result.failedCodes.join(', ')})` : ''}, ${lost} lost, ${wrong} wrong (bytes vs the unsplit model)`);
      for (const m of result.failedMessages) out.push(`  ${m.n}× ${m.message}`);
      out.push(`switches: ${result.switches} (${result.switchErrors} failed${result.switchErrorFirst ? `: ${result.switchErrorFirst}` : ''}), each ${f(result.switchMsMedian, 0)} ms median, ${f(result.switchMsMax, 0)} ms max; downtime max ${f(result.downtimeMsMax, 3)} ms`);
      out.push(`p99 first window ${f(an.p99FirstMs)} ms (${an.requestsFirst} requests), last ${f(an.p99LastMs)} ms (${an.requestsLast}): ratio ${f(an.p99Ratio, 2)}; p50 ${f(an.p50FirstMs)} → ${f(an.p50LastMs)} ms`);
      out.push(`p99 per ${f(an.windowS, 0)} s window: ${an.p99ByWindowMs.map((x) => f(x, 0)).join(', ')} ms`);
      out.push(`RSS growth ≤ ${f(100 * criteria.maxRssGrowth, 0)}% for every process: ${an.met.rss ? 'met' : 'MISSED'}; 0 lost, 0 wrong, 0 failed: ${lost === 0 && wrong === 0 && failed.length === 0 ? 'met' : 'MISSED'}; p99 last ÷ first ≤ ${criteria.maxP99Ratio}: ${an.met.p99 ? 'met' : 'MISSED'}`);
      process.stdout.write(out.join('\n') + '\n');
    }
    return met ? 0 : 1;
  } finally {
    await h.close();
  }
}
