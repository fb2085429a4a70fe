/**
 * The gateway's dashboard: `GET /ui` (the page and its assets), `GET /v1/events` (a
 * Server-Sent Events stream: one `hello` with the model and the recent history, then one
 * `snapshot` per second with the partition, the gateway's figures, the latency window's point
 * and every panel the gateway carries, e.g. adapt's conditions), and the page's controls under
 * `/ui/api/` (repartition, switching strategy, rollout), which need the pipeline's token as
 * `Authorization: Bearer TOKEN`. Without the token everything stays readable.
 *
 * Its cost with no page open is one timer a second and a push per answered request; snapshots
 * are built only while a page listens.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type * as http from 'node:http';
import { isKerfError, kerfError } from '../errors.js';
import { blockCuts } from '../graph/cuts.js';
import type { Gateway } from '../serve/gateway.js';
import { SWITCH_STRATEGIES, type PartitionStatus, type SwitchStrategy } from '../serve/switch.js';
import { ASSET_NAMES, asset, contentType, type AssetName } from './assets.js';
import { dashboardPage } from './page.js';
import { LatencyWindow, type WindowPoint } from './window.js';
import { errorStatus, readBody, sendJson } from '../util/http.js';

/** A cut the page can draw and offer. */
export interface UiCut { id: number; bytes: number; after: string; single: boolean }

/** The stream's first event. */
export interface HelloEvent {
  model: { name: string; inputs: { name: string; shape: number[] }[]; outputs: { name: string; shape: number[] }[]; cuts: UiCut[] };
  /** true when the gateway has a token, so controls can be unlocked with it */
  controls: boolean;
  strategies: readonly SwitchStrategy[];
  periodMs: number;
  history: WindowPoint[];
}

/** One `snapshot` event. */
export interface SnapshotEvent {
  t: number;
  point: WindowPoint | null;
  partition: PartitionStatus;
  gateway: { ready: boolean; paused: boolean; queueDepth: number; cpuShare: number; rssBytes: number; pid: number; codec: string | null; host: string };
  /** per worker tier (by name), from its `info` while a page listens: its host, process, CPU share (of one core, null until two readings) and resident bytes */
  workers: Record<string, WorkerFigures>;
  /** why the workers' figures are missing, when asking them failed */
  workersError?: string;
  /** every panel of `gateway.panels` by name (adapt: 'conditions'); an entry that threw is `{ error }` */
  panels: Record<string, unknown>;
}

/** One worker's figures in a snapshot. */
export interface WorkerFigures { host: string | null; pid: number | null; address: string; cpuShare: number | null; rssBytes: number | null }

export interface DashboardOptions {
  /** seconds per point and per snapshot (default 1) */
  periodS?: number;
  /** most event streams at once (default 16); more get 503 */
  maxClients?: number;
}

const MAX_BUFFERED = 1 << 20;

/** The dashboard of one gateway. Made by `attachDashboard`; stops with the gateway. */
export class Dashboard {
  readonly window = new LatencyWindow();
  private readonly clients = new Set<http.ServerResponse>();
  private readonly timer: NodeJS.Timeout;
  private last = { wall: performance.now(), cpu: process.cpuUsage() };
  private cpuShare = 0;
  private lastPoint: WindowPoint | null = null;
  private readonly periodS: number;
  private readonly tokenHash: Buffer | null;
  private cutsCache: UiCut[] | null = null;
  private discovering: Promise<unknown> | null = null;
  /** seconds spent on the dashboard's own work so far (kerf_dashboard_seconds_total) */
  private readonly workS = { requests: 0, events: 0 };
  private workers: Record<string, WorkerFigures> = {};
  private workersError: string | undefined;
  private readonly cpuSeen = new Map<string, { pid: unknown; cpuS: number; at: number }>();
  private polling = false;

  constructor(readonly gateway: Gateway, private readonly opts: DashboardOptions = {}) {
    this.periodS = opts.periodS ?? 1;
    // The token that guards the gateway's deploying endpoints guards the page's controls too.
    const token = gateway.controlToken ?? gateway.pipelineOptions.token;
    this.tokenHash = token ? createHash('sha256').update(token).digest() : null;
    gateway.answered.push((s, status) => this.timed('requests', () => this.window.answered(s, status)));
    gateway.observers.push((p, r) => this.timed('requests', () => this.window.stages(p.local ? 'gateway' : null, r.timings, r.stages)));
    // Its own cost, where it is paid (`kerf bench dashboard` reads it): every callback, tick and stream start.
    const work = gateway.registry.counter('kerf_dashboard_seconds_total', 'Seconds the gateway spent on its dashboard, by work: requests (the latency window, always on), events (building, serialising and writing them for open pages, asking the workers).');
    for (const w of ['requests', 'events'] as const) work.track(() => this.workS[w], { work: w });
    gateway.registry.gauge('kerf_dashboard_streams', 'Dashboard event streams (pages) open now.').set(() => this.clients.size);
    this.timer = setInterval(() => this.tick(), this.periodS * 1000);
    this.timer.unref();
    gateway.mount('/ui', (req, res, path) => this.routeUi(req, res, path));
    gateway.mount('/v1/events', (req, res) => this.timed('events', () => this.routeEvents(req, res)));
    gateway.onClose(async () => this.close());
  }

  /** Run `fn`, adding its time to the dashboard's own work. */
  private timed<T>(work: 'requests' | 'events', fn: () => T): T {
    const t0 = performance.now();
    try { return fn(); } finally { this.workS[work] += (performance.now() - t0) / 1000; }
  }

  /** Pages listening now. */
  get listeners(): number { return this.clients.size; }

  private tick(): void {
    this.lastPoint = this.timed('requests', () => this.window.roll(Date.now(), this.periodS));
    const now = performance.now();
    const cpu = process.cpuUsage();
    const wallUs = (now - this.last.wall) * 1000;
    if (wallUs > 0) this.cpuShare = (cpu.user - this.last.cpu.user + cpu.system - this.last.cpu.system) / wallUs;
    this.last = { wall: now, cpu };
    if (this.clients.size) {
      this.timed('events', () => {
        this.pollWorkers();
        this.broadcast('snapshot', this.snapshot());
      });
    }
  }

  /** Ask every worker for its info (one at a time in flight): host, pid, CPU seconds, RSS. */
  private pollWorkers(): void {
    if (this.polling) return;
    this.polling = true;
    this.gateway.switcher.tierInfo(1000).then((list) => this.timed('events', () => {
      const at = performance.now(), next: Record<string, WorkerFigures> = {};
      for (const { tier, address, info } of list) {
        const cpuS = typeof info.cpuSeconds === 'number' ? info.cpuSeconds : null;
        const prev = this.cpuSeen.get(tier);
        const share = cpuS !== null && prev && prev.pid === info.pid && at > prev.at ? (cpuS - prev.cpuS) / ((at - prev.at) / 1000) : null;
        if (cpuS !== null) this.cpuSeen.set(tier, { pid: info.pid, cpuS, at });
        next[tier] = {
          host: typeof info.host === 'string' ? info.host : null, pid: typeof info.pid === 'number' ? info.pid : null, address,
          cpuShare: share ?? this.workers[tier]?.cpuShare ?? null, rssBytes: typeof info.rssBytes === 'number' ? info.rssBytes : null,
        };
      }
      this.workers = next;
      this.workersError = undefined;
    }), (e: unknown) => { this.workersError = (e as Error)?.message ?? String(e); }).finally(() => { this.polling = false; });
  }

  private cuts(): UiCut[] {
    if (!this.cutsCache) {
      const a = this.gateway.prep.analysis;
      const active = new Set(this.gateway.switcher.cuts);
      const single = new Set(blockCuts(a, 'single').map((c) => c.id));
      this.cutsCache = a.cuts.filter((c) => single.has(c.id) || active.has(c.id)).map((c) => ({ id: c.id, bytes: c.bytes, after: c.after, single: c.single }));
    }
    return this.cutsCache;
  }

  hello(): HelloEvent {
    const g = this.gateway;
    return {
      model: { name: g.name, inputs: g.inputs.map((t) => ({ name: t.name, shape: [...t.shape] })), outputs: g.outputs.map((t) => ({ name: t.name, shape: [...t.shape] })), cuts: this.cuts() },
      controls: this.tokenHash !== null, strategies: SWITCH_STRATEGIES, periodMs: this.periodS * 1000, history: this.window.history(),
    };
  }

  snapshot(): SnapshotEvent {
    const g = this.gateway;
    const panels: Record<string, unknown> = {};
    for (const [name, fn] of g.panels) {
      try { panels[name] = fn(); } catch (e) { panels[name] = { error: (e as Error)?.message ?? String(e) }; }
    }
    const partition = g.switcher.status();
    partition.history = partition.history.slice(-50);
    return {
      t: Date.now(), point: this.lastPoint, partition,
      gateway: { ready: g.ready, paused: g.paused, queueDepth: g.pipeline.queueDepth, cpuShare: this.cpuShare, rssBytes: process.memoryUsage.rss(), pid: process.pid, codec: g.pipelineOptions.codec ?? null, host: g.hostName },
      workers: this.workers, ...(this.workersError ? { workersError: this.workersError } : {}),
      panels,
    };
  }

  private broadcast(event: string, data: unknown): void {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of this.clients) {
      // A page that stopped reading is dropped rather than buffered without end.
      if (res.writableLength > MAX_BUFFERED) { this.clients.delete(res); res.destroy(); continue; }
      res.write(text);
    }
  }

  private routeEvents(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET') return reply(res, 405, { error: `${req.method} not allowed on /v1/events (GET)`, code: 'KERF_ERR_USAGE' });
    if (this.clients.size >= (this.opts.maxClients ?? 16)) return reply(res, 503, { error: `over ${this.opts.maxClients ?? 16} event streams open; close a dashboard`, code: 'KERF_ERR_OVERLOADED' });
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    res.write(`retry: 2000\n\nevent: hello\ndata: ${JSON.stringify(this.hello())}\n\nevent: snapshot\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
    this.clients.add(res);
    // The switcher finds the workers on its first switch; a page wants them at once.
    this.discovering ??= this.gateway.switcher.discover().then(() => this.timed('events', () => this.broadcast('snapshot', this.snapshot())), () => { this.discovering = null; });
    this.pollWorkers();
    const drop = (): void => { this.clients.delete(res); };
    req.on('close', drop);
    res.on('error', drop);
  }

  private authorised(req: http.IncomingMessage): boolean {
    if (!this.tokenHash) return false;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return !!m && timingSafeEqual(createHash('sha256').update(m[1]!).digest(), this.tokenHash);
  }

  private routeUi(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (path === '/ui' && get) { res.writeHead(308, { location: '/ui/' }); res.end(); return; }
    if (path === '/ui/' && get) {
      const body = dashboardPage(this.gateway.name);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const a = /^\/ui\/assets\/([a-z.]+)$/.exec(path);
    if (a && get) {
      const name = a[1] as AssetName;
      if (!ASSET_NAMES.includes(name)) return reply(res, 404, { error: `no dashboard asset '${a[1]}'`, code: 'KERF_ERR_USAGE' });
      asset(name).then((text) => {
        res.writeHead(200, { 'content-type': contentType(name), 'content-length': Buffer.byteLength(text), 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
        res.end(req.method === 'HEAD' ? undefined : text);
      }, (e: Error) => reply(res, 500, { error: e.message, code: isKerfError(e) ? e.code : 'KERF_ERR_FILE' }));
      return;
    }
    if (path.startsWith('/ui/api/')) return this.routeApi(req, res, path);
    reply(res, 404, { error: `no such dashboard page ${req.method} ${path} (GET /ui/)`, code: 'KERF_ERR_USAGE' });
  }

  private routeApi(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const known = { '/ui/api/auth': 'GET', '/ui/api/partition': 'POST', '/ui/api/strategy': 'PUT', '/ui/api/rollout': 'POST' } as Record<string, string>;
    const want = known[path];
    if (!want) return reply(res, 404, { error: `no such control ${path} (${Object.entries(known).map(([p, m]) => `${m} ${p}`).join(', ')})`, code: 'KERF_ERR_USAGE' });
    if (req.method !== want) return reply(res, 405, { error: `${req.method} not allowed on ${path} (${want})`, code: 'KERF_ERR_USAGE' });
    if (!this.authorised(req)) {
      req.resume();
      return reply(res, 401, {
        error: this.tokenHash ? 'controls need the pipeline\'s token (Authorization: Bearer TOKEN); the dashboard stays read-only without it' : 'this gateway has no token: its controls are off',
        code: 'KERF_ERR_AUTH',
      });
    }
    if (path === '/ui/api/auth') return reply(res, 200, { ok: true });
    readJson(req, 64 * 1024).then(async (doc) => {
      if (path === '/ui/api/partition') {
        const cuts = doc.cuts;
        if (!Array.isArray(cuts) || cuts.some((c) => !Number.isInteger(c))) throw kerfError('KERF_ERR_USAGE', 'partition: expected {"cuts": [cut ids…]}');
        const r = await this.gateway.switcher.partition({ cuts: cuts as number[], ...(doc.reroute === true ? { reroute: true } : {}) });
        this.broadcast('snapshot', this.snapshot());
        return r;
      }
      if (path === '/ui/api/rollout') {
        const model = doc.model, back = doc.back === true;
        if (back === (typeof model === 'string' && model !== '')) throw kerfError('KERF_ERR_USAGE', 'rollout: expected {"model": "new.onnx"} (a path on the hosts) or {"back": true}');
        const r = await this.gateway.switcher.rollout(back ? { back: true } : { model: model as string });
        this.broadcast('snapshot', this.snapshot());
        return r;
      }
      const s = doc.strategy;
      if (typeof s !== 'string' || !SWITCH_STRATEGIES.includes(s as SwitchStrategy)) throw kerfError('KERF_ERR_USAGE', `strategy: expected one of ${SWITCH_STRATEGIES.join(', ')}`);
      const r = await this.gateway.switcher.setStrategy(s as SwitchStrategy);
      this.broadcast('snapshot', this.snapshot());
      return r;
    }).then((r) => reply(res, 200, r), (e: unknown) => {
      const code = isKerfError(e) ? e.code : 'KERF_ERR_REMOTE';
      const status = errorStatus(e) ?? (['KERF_ERR_CUT', 'KERF_ERR_PLAN', 'KERF_ERR_USAGE'].includes(code) ? 400 : code === 'KERF_ERR_CLOSED' ? 503 : 500);
      reply(res, status, { error: isKerfError(e) ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`, code });
    });
  }

  /** End every event stream and the timer. Idempotent. */
  close(): void {
    clearInterval(this.timer);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}

const SECURITY_HEADERS = {
  // The page may talk to this gateway only: no CDN, no other origin.
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Serve the dashboard on `gateway` (Gateway.start does, unless `dashboard: false`). */
export function attachDashboard(gateway: Gateway, opts: DashboardOptions = {}): Dashboard {
  return new Dashboard(gateway, opts);
}

// answers and bodies through util/http.ts, as every kerf HTTP server (early answers close gently)
function reply(res: http.ServerResponse, status: number, body: unknown): void {
  sendJson(res.req, res, status, body);
}

async function readJson(req: http.IncomingMessage, max: number): Promise<Record<string, unknown>> {
  const raw = await readBody(req, { maxBytes: max, what: 'control', tooLarge: () => `control body over ${max} bytes` });
  let doc: unknown;
  try { doc = JSON.parse(raw.toString('utf8')); } catch { throw kerfError('KERF_ERR_USAGE', 'control body is not JSON'); }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw kerfError('KERF_ERR_USAGE', 'control body: expected a JSON object');
  return doc as Record<string, unknown>;
}
