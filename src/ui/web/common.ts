// Shared by the dashboard and the reports: DOM building, number formats, the block strip and
// the chart wrapper. A classic script (no import/export): its declarations are the page's
// globals, loaded before dashboard.js or report.js; uPlot is the global of uPlot.iife.js.

type Child = Node | string | number | null | undefined | false;

/** An element with attributes (`on…` keys as listeners) and children. */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, unknown> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v as EventListener);
    else if (k === 'text') e.textContent = String(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(typeof c === 'number' ? String(c) : c);
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag: string, attrs: Record<string, string | number> = {}): SVGElement {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Seconds as ms/s with three significant digits; '–' for nothing. */
function fmtS(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  const ms = s * 1000;
  if (Math.abs(ms) < 1) return `${ms.toFixed(3)} ms`;
  if (Math.abs(ms) < 1000) return `${ms.toPrecision(3)} ms`;
  return `${s.toPrecision(3)} s`;
}

function fmtBytes(b: number | null | undefined): string {
  if (b === null || b === undefined || !Number.isFinite(b)) return '–';
  const u = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  let v = b;
  while (Math.abs(v) >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? v.toFixed(0) : v.toPrecision(3)} ${u[i]}`;
}

/** Bytes per second as Mbit/s. */
function fmtRate(bytesPerS: number | null | undefined): string {
  if (bytesPerS === null || bytesPerS === undefined || !Number.isFinite(bytesPerS)) return '–';
  return `${((bytesPerS * 8) / 1e6).toPrecision(3)} Mbit/s`;
}

function fmtNum(x: unknown, digits = 3): string {
  return typeof x === 'number' && Number.isFinite(x) ? (Number.isInteger(x) ? String(x) : x.toPrecision(digits)) : x === null || x === undefined ? '–' : String(x);
}

/** Tier colours: distinct, dark enough for white text and for 3:1 against white. */
const TIER_COLORS = ['#0b5cad', '#b35900', '#1a7f37', '#8250df', '#a4161a', '#0a7b83', '#6e5400', '#bf3989'];
const tierColor = (i: number): string => TIER_COLORS[i % TIER_COLORS.length]!;

/** A table from headers and rows of cells (numbers right-aligned). */
function table(headers: string[], rows: Child[][], caption?: string): HTMLTableElement {
  const t = el('table', {}, caption ? el('caption', { class: 'visually-hidden' }, caption) : null);
  t.append(el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col' }, h)))));
  const body = el('tbody');
  for (const r of rows) body.append(el('tr', {}, ...r.map((c) => el('td', typeof c === 'number' ? { class: 'num' } : {}, typeof c === 'number' ? fmtNum(c) : c))));
  t.append(body);
  return t;
}

interface StripBlock { label: string; tier: number | null; detail?: string }

/**
 * The model as a strip of blocks coloured by the tier that runs them, a mark at every place it
 * can be cut and a bold one at each cut in force (`boundaries`: block index the cut follows).
 */
function drawStrip(host: HTMLElement, blocks: StripBlock[], tierNames: string[], boundaries: number[], title: string): void {
  const n = blocks.length;
  const bw = Math.max(6, Math.min(48, Math.floor(1100 / Math.max(1, n))));
  const w = n * bw + 2;
  const h = 56;
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, class: 'strip', role: 'img', 'aria-label': title, preserveAspectRatio: 'xMinYMid meet' });
  s.style.minWidth = `${Math.min(w, 640)}px`; // on a phone the strip scrolls in its box rather than shrink to a line
  s.append(Object.assign(svg('title'), { textContent: title }));
  blocks.forEach((b, i) => {
    const r = svg('rect', { x: 1 + i * bw, y: 8, width: bw - 1, height: 30, fill: b.tier === null ? '#d0d7de' : tierColor(b.tier), 'data-block': i });
    const t = svg('title');
    t.textContent = `${b.label}${b.tier !== null ? ` · ${tierNames[b.tier] ?? `tier ${b.tier}`}` : ' · not run'}${b.detail ? ` · ${b.detail}` : ''}`;
    r.append(t);
    s.append(r);
  });
  for (let i = 0; i < n - 1; i++) s.append(svg('line', { x1: 1 + (i + 1) * bw - 0.5, x2: 1 + (i + 1) * bw - 0.5, y1: 38, y2: 44, stroke: '#6e7781', 'stroke-width': 1 }));
  for (const b of boundaries) {
    const x = 1 + (b + 1) * bw - 0.5;
    s.append(svg('line', { x1: x, x2: x, y1: 2, y2: 48, stroke: '#1b1f24', 'stroke-width': 3, 'data-cut': b }));
  }
  const label = svg('text', { x: 2, y: 55 });
  label.textContent = `${n} blocks · ${boundaries.length} cut${boundaries.length === 1 ? '' : 's'} in force`;
  s.append(label);
  host.replaceChildren(s);
}

function legend(host: HTMLElement, names: string[]): void {
  host.replaceChildren(...names.map((nm, i) => el('span', {}, el('span', { class: 'swatch', style: `background:${tierColor(i)}`, 'aria-hidden': 'true' }), nm)));
}

interface ChartSeries { label: string; color: string; scale?: string; dash?: number[]; points?: boolean; value?: (v: number | null) => string; bars?: boolean; noLine?: boolean; spanGaps?: boolean }
interface ChartOpts { time: boolean; series: ChartSeries[]; yLabel: string; y2Label?: string; height?: number; xLabel?: string; logY?: boolean; intX?: boolean }

/** A uPlot chart that fills its container's width; `set` replaces the data. */
class Chart {
  private plot: uPlot | null = null;
  private data: uPlot.AlignedData;
  constructor(private readonly host: HTMLElement, private readonly opts: ChartOpts, data?: uPlot.AlignedData) {
    this.data = data ?? [[], ...opts.series.map(() => [])];
    this.build();
    const ro = new ResizeObserver(() => { if (this.plot && Math.abs(this.plot.width - this.width()) > 4) this.plot.setSize({ width: this.width(), height: this.opts.height ?? 220 }); });
    ro.observe(host);
  }
  private width(): number { return Math.max(240, this.host.clientWidth || 600); }
  private build(): void {
    const o = this.opts;
    const axes: uPlot.Axis[] = [{ ...(o.xLabel ? { label: o.xLabel } : {}), ...(o.intX ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] } : {}) }, { label: o.yLabel, scale: 'y', size: 60 }];
    if (o.y2Label) axes.push({ label: o.y2Label, scale: 'y2', side: 1, grid: { show: false }, size: 60 });
    this.plot = new uPlot({
      width: this.width(), height: o.height ?? 220,
      scales: { x: { time: o.time }, y: o.logY ? { distr: 3 } : { auto: true }, ...(o.y2Label ? { y2: { auto: true } } : {}) },
      axes,
      series: [{ label: o.time ? 'time' : (o.xLabel ?? 'x') }, ...o.series.map((s) => ({
        label: s.label, stroke: s.color, width: 2, scale: s.scale ?? 'y', spanGaps: s.spanGaps ?? false,
        ...(s.dash ? { dash: s.dash } : {}), ...(s.points || s.noLine ? { points: { show: true, size: 7, fill: s.color } } : {}),
        ...(s.bars ? { paths: uPlot.paths.bars!({ size: [0.7, 40] }), fill: s.color + 'cc', points: { show: false } } : {}),
        ...(s.noLine ? { paths: () => null } : {}),
        ...(s.value ? { value: (_u: uPlot, v: number | null) => s.value!(v) } : {}),
      }))],
    }, this.data, this.host);
    this.host.dataset.points = String(this.length);
  }
  set(data: uPlot.AlignedData): void {
    this.data = data;
    this.plot?.setData(data);
    this.host.dataset.points = String(this.length);
  }
  /** number of x values drawn */
  get length(): number { return this.data[0]?.length ?? 0; }
}

interface Bar { label: string; value: number; mark?: string }

/** Horizontal bars as HTML (readable without a canvas): one row per item, the marked one flagged. */
function bars(host: HTMLElement, items: Bar[], fmt: (v: number) => string, title: string): void {
  const max = Math.max(...items.map((b) => b.value), 1e-12);
  const list = el('div', { role: 'list', 'aria-label': title, class: 'bars' });
  for (const b of items) {
    const pct = Math.max(0.5, (100 * b.value) / max);
    list.append(el('div', { role: 'listitem', class: `bar-row${b.mark ? ' marked' : ''}` },
      el('span', { class: 'bar-label' }, b.label),
      el('span', { class: 'bar-track' }, el('span', { class: 'bar', style: `width:${pct.toFixed(2)}%` })),
      el('span', { class: 'bar-value' }, fmt(b.value), b.mark ? el('strong', {}, ` ${b.mark}`) : null)));
  }
  host.append(el('h3', {}, title), list);
}

/** A definition list of label/value pairs. */
function kv(pairs: [string, Child][]): HTMLDListElement {
  const d = el('dl', { class: 'kv' });
  for (const [k, v] of pairs) d.append(el('dt', {}, k), el('dd', {}, v));
  return d;
}
