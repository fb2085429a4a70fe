/** A small Prometheus text-format registry: counters, gauges and histograms with labels. */
import * as http from 'node:http';
import { kerfError } from '../errors.js';
import { bodyPending, closeAfterAnswer } from '../util/http.js';

type Labels = Record<string, string>;

const key = (l: Labels | undefined): string => (l ? Object.keys(l).sort().map((k) => `${k}=${l[k]}`).join(',') : '');
const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const fmtLabels = (l: Labels | undefined, extra?: [string, string]): string => {
  const parts = Object.entries(l ?? {}).map(([k, v]) => `${k}="${esc(v)}"`);
  if (extra) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};
const num = (v: number): string => (v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : Number.isNaN(v) ? 'NaN' : String(v));

interface Metric { render(): string }

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels | undefined; v: number }>();
  private readonly tracked = new Map<string, { labels: Labels | undefined; fn: () => number }>();
  constructor(readonly name: string, readonly help: string) {}
  /** A series read from `fn` at every scrape (a total kept elsewhere, e.g. the process's CPU seconds). */
  track(fn: () => number, labels?: Labels): this { this.tracked.set(key(labels), { labels, fn }); return this; }
  inc(labels?: Labels, v = 1): void {
    const k = key(labels);
    const e = this.values.get(k);
    if (e) e.v += v; else this.values.set(k, { labels, v });
  }
  get(labels?: Labels): number { return this.values.get(key(labels))?.v ?? 0; }
  /** Drop the series whose labels match (e.g. those of a segment that was unloaded). */
  deleteWhere(pred: (labels: Labels) => boolean): void {
    for (const [k, e] of this.values) if (pred(e.labels ?? {})) this.values.delete(k);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const e of this.values.values()) lines.push(`${this.name}${fmtLabels(e.labels)} ${num(e.v)}`);
    for (const e of this.tracked.values()) lines.push(`${this.name}${fmtLabels(e.labels)} ${num(e.fn())}`);
    return lines.join('\n');
  }
}

/** CPU seconds (user + system) this process has used. */
export function processCpuSeconds(): number { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; }

export class Gauge implements Metric {
  private readonly values = new Map<string, { labels: Labels | undefined; v: number | (() => number) }>();
  constructor(readonly name: string, readonly help: string) {}
  /** Set a value, or a function read at every scrape. */
  set(v: number | (() => number), labels?: Labels): void { this.values.set(key(labels), { labels, v }); }
  get(labels?: Labels): number { const e = this.values.get(key(labels)); return e ? (typeof e.v === 'function' ? e.v() : e.v) : NaN; }
  delete(labels?: Labels): void { this.values.delete(key(labels)); }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const e of this.values.values()) lines.push(`${this.name}${fmtLabels(e.labels)} ${num(typeof e.v === 'function' ? e.v() : e.v)}`);
    return lines.join('\n');
  }
}

/** Latency buckets in seconds, 0.5 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels | undefined; counts: number[]; sum: number; n: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[] = LATENCY_BUCKETS) {}
  observe(v: number, labels?: Labels): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) { s = { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, n: 0 }; this.series.set(k, s); }
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++;
    s.sum += v; s.n++;
  }
  count(labels?: Labels): number { return this.series.get(key(labels))?.n ?? 0; }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${fmtLabels(s.labels, ['le', num(b)])} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${fmtLabels(s.labels, ['le', '+Inf'])} ${s.n}`);
      lines.push(`${this.name}_sum${fmtLabels(s.labels)} ${num(s.sum)}`);
      lines.push(`${this.name}_count${fmtLabels(s.labels)} ${s.n}`);
    }
    return lines.join('\n');
  }
}

/** A set of metrics rendered together. */
export class Registry {
  private readonly metrics = new Map<string, Metric>();
  private add<M extends Metric & { name: string }>(m: M): M {
    if (this.metrics.has(m.name)) throw kerfError('KERF_ERR_USAGE', `metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
  counter(name: string, help: string): Counter { return this.add(new Counter(name, help)); }
  gauge(name: string, help: string): Gauge { return this.add(new Gauge(name, help)); }
  histogram(name: string, help: string, buckets?: readonly number[]): Histogram { return this.add(new Histogram(name, help, buckets)); }
  /** Prometheus text exposition format 0.0.4. */
  render(): string { return [...this.metrics.values()].map((m) => m.render()).join('\n') + '\n'; }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Serve `GET /metrics` from a registry on its own port; resolves once listening. */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (bodyPending(req)) closeAfterAnswer(req, res);
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
      const body = registry.render();
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: GET /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(kerfError('KERF_ERR_USAGE', `cannot listen for metrics on ${host}:${port}: ${e.code ?? e.message}`)));
    server.listen(port, host, () => resolve());
  });
  return server;
}

/**
 * Merge Prometheus text from several processes into one exposition: every sample gets a
 * `tier` label naming its source, and each metric family is written once (its HELP and TYPE,
 * then the samples of every source), as the text format requires. How the gateway's /metrics
 * shows every tier's series (docs/serve.md).
 */
export function mergeExpositions(sources: readonly { tier: string; text: string }[]): string {
  const families = new Map<string, { head: string[]; samples: string[] }>();
  for (const { tier, text } of sources) {
    let current: { head: string[]; samples: string[] } | null = null;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const m = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (m) {
        let f = families.get(m[2]!);
        if (!f) { f = { head: [], samples: [] }; families.set(m[2]!, f); }
        if (!f.head.some((h) => h.startsWith(`# ${m[1]} `))) f.head.push(line);
        current = f;
        continue;
      }
      if (line.startsWith('#')) continue;
      const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(.+)$/.exec(line);
      if (!s) continue;
      const labels = s[2] ? s[2].slice(1, -1) : '';
      const sample = `${s[1]}{tier="${esc(tier)}"${labels ? `,${labels}` : ''}} ${s[3]}`;
      if (current) current.samples.push(sample);
      else {
        let f = families.get(s[1]!);
        if (!f) { f = { head: [], samples: [] }; families.set(s[1]!, f); }
        f.samples.push(sample);
      }
    }
  }
  return [...families.values()].map((f) => [...f.head, ...f.samples].join('\n')).join('\n') + (families.size ? '\n' : '');
}
