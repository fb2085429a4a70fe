/**
 * The chart Scission draws, from kerf profiles: per-block latency of each system (log scale)
 * above the bytes that cross the cut at each block's end. Plain SVG written by hand; PNG through
 * @resvg/resvg-js when it is installed.
 */
import { kerfError } from '../errors.js';
import type { Profile } from './types.js';
import { HIGH_SPREAD } from './measure.js';

/** Options of `plotProfiles`. */
export interface PlotOptions {
  /** chart title (default: the model's name and what is shown) */
  title?: string;
  width?: number;
  height?: number;
}

// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#999933'];
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f1 = (x: number): string => (Math.round(x * 10) / 10).toString();

/** Seconds with a unit, short (for axis ticks). */
export function fmtTime(s: number): string {
  if (s >= 1) return `${+s.toPrecision(3)} s`;
  if (s >= 1e-3) return `${+(s * 1e3).toPrecision(3)} ms`;
  return `${+(s * 1e6).toPrecision(3)} µs`;
}

function byteUnit(max: number): { div: number; unit: string } {
  if (max >= 1e9) return { div: 1e9, unit: 'GB' };
  if (max >= 1e6) return { div: 1e6, unit: 'MB' };
  if (max >= 1e3) return { div: 1e3, unit: 'kB' };
  return { div: 1, unit: 'B' };
}

function compactBytes(b: number): string {
  const { div, unit } = byteUnit(b);
  const v = b / div;
  return `${v >= 100 ? Math.round(v) : +v.toPrecision(2)}${unit === 'B' ? 'B' : unit[0]}`;
}

function niceStep(range: number, ticks: number): number {
  const raw = range / Math.max(1, ticks);
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
}

/** Approximate text width in px for the chart's sans font. */
const textWidth = (s: string, size: number): number => s.length * size * 0.58;

/** Check that the profiles can share one chart: same model, same blocks. */
function checkComparable(profiles: readonly Profile[]): void {
  if (profiles.length === 0) throw kerfError('KERF_ERR_USAGE', 'plot: give at least one profile');
  const [a] = profiles;
  for (const p of profiles.slice(1)) {
    if (p.model.name !== a!.model.name) {
      throw kerfError('KERF_ERR_PROFILE', `plot: profiles of different models ('${a!.model.name}', '${p.model.name}'): plot one model at a time`);
    }
    if (p.blocks.length !== a!.blocks.length) {
      throw kerfError('KERF_ERR_PROFILE', `plot: ${a!.model.name} on ${a!.system.name} has ${a!.blocks.length} blocks but on ${p.system.name} ${p.blocks.length} (different granularity?): plot profiles with the same blocks`);
    }
  }
}

/** An SVG chart of one model's profiles on one or more systems. */
export function plotProfiles(profiles: readonly Profile[], opts: PlotOptions = {}): string {
  checkComparable(profiles);
  const first = profiles[0]!;
  const n = first.blocks.length;
  const W = opts.width ?? 1100, H = opts.height ?? 720;
  const legendLabels = profiles.map((p) => `${p.system.name}${p.system.tier ? ` (${p.system.tier})` : ''}`);
  const legendW = Math.max(170, ...legendLabels.map((l) => textWidth(l, 13) + 40));
  const L = 86, R = legendW + 30, T = 78, gap = 64, B = 64;
  const plotW = W - L - R;
  const topH = Math.round((H - T - gap - B) * 0.6), botH = H - T - gap - B - topH;
  const top0 = T, bot0 = T + topH + gap;
  const band = plotW / n;
  const xc = (i: number): number => L + band * (i + 0.5);
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}">`);
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);

  // Title and subtitle.
  const gran = first.granularity === 'single' ? 'single-tensor cuts' : first.granularity === 'all' ? 'all cuts' : 'imported blocks';
  const title = opts.title ?? `${first.model.name}: latency per block and output size at each cut`;
  o.push(`<text x="${L}" y="32" font-size="20" font-weight="bold" fill="#222">${esc(title)}</text>`);
  const threads = [...new Set(profiles.map((p) => p.settings?.threads).filter((t) => t !== undefined))];
  const runs = [...new Set(profiles.map((p) => p.settings?.repeats).filter((t) => t !== undefined))];
  const settings = (runs.length ? `, ${runs.join('/')} timed runs` : '') + (threads.length ? `, ${threads.join('/')} thread${threads.length === 1 && threads[0] === 1 ? '' : 's'}` : '');
  o.push(`<text x="${L}" y="54" font-size="13" fill="#555">${esc(`${n} blocks (${gran}) · ${profiles.length} system${profiles.length === 1 ? '' : 's'} · source: ${first.source}${settings}`)}</text>`);

  // Latency panel: log scale over whole decades.
  const lat = profiles.flatMap((p) => p.blocks.map((b) => b.latency.median)).filter((v) => v > 0);
  const wholeLat = profiles.map((p) => p.whole?.latency.median ?? 0).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...lat, ...wholeLat)));
  let hi = Math.ceil(Math.log10(Math.max(...lat, ...wholeLat)));
  if (hi <= lo) hi = lo + 1;
  const yl = (s: number): number => top0 + topH - ((Math.log10(Math.max(s, 10 ** lo)) - lo) / (hi - lo)) * topH;
  o.push(`<g font-size="12" fill="#444">`);
  for (let d = lo; d <= hi; d++) {
    const y = yl(10 ** d);
    o.push(`<line x1="${L}" x2="${L + plotW}" y1="${f1(y)}" y2="${f1(y)}" stroke="#d0d0d0"/>`);
    o.push(`<text x="${L - 8}" y="${f1(y + 4)}" text-anchor="end">${fmtTime(10 ** d)}</text>`);
    if (d < hi) for (const m of [2, 5]) {
      const ym = yl(m * 10 ** d);
      o.push(`<line x1="${L}" x2="${L + plotW}" y1="${f1(ym)}" y2="${f1(ym)}" stroke="#eeeeee"/>`);
    }
  }
  o.push(`</g>`);
  o.push(`<text transform="translate(22 ${top0 + topH / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#222">latency per block (median, log scale)</text>`);
  const r = Math.max(2, Math.min(4.5, band / 3));
  profiles.forEach((p, k) => {
    const c = COLORS[k % COLORS.length]!;
    if (p.whole) {
      const y = yl(p.whole.latency.median);
      o.push(`<line x1="${L}" x2="${L + plotW}" y1="${f1(y)}" y2="${f1(y)}" stroke="${c}" stroke-width="1.2" stroke-dasharray="6 4" opacity="0.8"/>`);
    }
    // A zero time (imported data below its timer's resolution) has no place on a log axis: the line breaks there.
    let run: string[] = [];
    const flush = () => { if (run.length) o.push(`<polyline points="${run.join(' ')}" fill="none" stroke="${c}" stroke-width="1.8" stroke-linejoin="round"/>`); run = []; };
    for (const [i, b] of p.blocks.entries()) {
      if (b.latency.median > 0) run.push(`${f1(xc(i))},${f1(yl(b.latency.median))}`); else flush();
    }
    flush();
    for (const [i, b] of p.blocks.entries()) {
      if (!(b.latency.median > 0)) continue;
      const high = b.highSpread ?? b.latency.spread > HIGH_SPREAD;
      o.push(`<circle cx="${f1(xc(i))}" cy="${f1(yl(b.latency.median))}" r="${f1(r)}" fill="${high ? '#ffffff' : c}" stroke="${c}" stroke-width="1.5"><title>${esc(`${p.system.name} block ${b.index}: ${fmtTime(b.latency.median)}`)}</title></circle>`);
    }
  });
  o.push(`<rect x="${L}" y="${top0}" width="${plotW}" height="${topH}" fill="none" stroke="#888"/>`);

  // Output-size panel: linear scale with round ticks.
  const bytes = first.blocks.map((b) => b.outputBytes);
  const maxB = Math.max(1, ...bytes);
  const { div, unit } = byteUnit(maxB);
  const step = niceStep(maxB / div, 4);
  const topTick = Math.ceil(maxB / div / step) * step;
  const yb = (v: number): number => bot0 + botH - (v / div / topTick) * botH;
  o.push(`<g font-size="12" fill="#444">`);
  for (let v = 0; v <= topTick + step / 2; v += step) {
    const y = bot0 + botH - (v / topTick) * botH;
    o.push(`<line x1="${L}" x2="${L + plotW}" y1="${f1(y)}" y2="${f1(y)}" stroke="${v === 0 ? '#888' : '#e0e0e0'}"/>`);
    o.push(`<text x="${L - 8}" y="${f1(y + 4)}" text-anchor="end">${+v.toPrecision(4)} ${unit}</text>`);
  }
  o.push(`</g>`);
  const bw = Math.max(1, band * 0.7);
  for (const [i, b] of first.blocks.entries()) {
    const last = i === n - 1;
    const y = yb(b.outputBytes);
    o.push(`<rect x="${f1(xc(i) - bw / 2)}" y="${f1(y)}" width="${f1(bw)}" height="${f1(bot0 + botH - y)}" fill="${last ? '#b8c4d6' : '#5b7aa8'}"><title>${esc(`block ${b.index}${b.cutId !== undefined ? `, cut ${b.cutId}` : ' (model output)'}: ${b.outputBytes} bytes`)}</title></rect>`);
    // Values over the bars while they fit: small sizes vanish on a linear axis, and they are the interesting cuts.
    if (band >= 30) o.push(`<text x="${f1(xc(i))}" y="${f1(y - 4)}" font-size="10" text-anchor="middle" fill="#333">${compactBytes(b.outputBytes)}</text>`);
  }
  o.push(`<rect x="${L}" y="${bot0}" width="${plotW}" height="${botH}" fill="none" stroke="#888"/>`);
  o.push(`<text transform="translate(22 ${bot0 + botH / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#222">output size (${unit})</text>`);

  // Shared x axis: block indices, thinned to fit.
  const every = Math.max(1, Math.ceil(24 / band));
  const stepX = [1, 2, 5, 10, 20, 25, 50, 100].find((s) => s >= every) ?? every;
  o.push(`<g font-size="12" fill="#444" text-anchor="middle">`);
  for (let i = 0; i < n; i++) {
    if (i % stepX !== 0 && i !== n - 1) continue;
    if (i === n - 1 && i % stepX !== 0 && ((n - 1) % stepX) * band < 30) continue;
    for (const y0 of [top0 + topH, bot0 + botH]) o.push(`<line x1="${f1(xc(i))}" x2="${f1(xc(i))}" y1="${y0}" y2="${y0 + 4}" stroke="#888"/>`);
    o.push(`<text x="${f1(xc(i))}" y="${top0 + topH + 17}">${first.blocks[i]!.index}</text>`);
    o.push(`<text x="${f1(xc(i))}" y="${bot0 + botH + 17}">${first.blocks[i]!.index}</text>`);
  }
  o.push(`</g>`);
  o.push(`<text x="${L + plotW / 2}" y="${bot0 + botH + 42}" text-anchor="middle" font-size="13" fill="#222">block index (bars: bytes sent to the next tier when cutting after the block; last bar: model output)</text>`);

  // Legend.
  const lx = L + plotW + 22;
  let ly = top0 + 4;
  o.push(`<g font-size="13" fill="#222">`);
  o.push(`<text x="${lx}" y="${ly + 10}" font-weight="bold">systems</text>`);
  ly += 28;
  profiles.forEach((p, k) => {
    const c = COLORS[k % COLORS.length]!;
    o.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/><circle cx="${lx + 12}" cy="${ly}" r="4" fill="${c}"/>`);
    o.push(`<text x="${lx + 32}" y="${ly + 4}">${esc(legendLabels[k]!)}</text>`);
    if (p.whole) o.push(`<text x="${lx + 32}" y="${ly + 20}" font-size="11" fill="#555">whole model ${esc(fmtTime(p.whole.latency.median))}</text>`);
    ly += p.whole ? 40 : 26;
  });
  ly += 6;
  if (profiles.some((p) => p.whole)) {
    o.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="#555" stroke-width="1.2" stroke-dasharray="6 4"/><text x="${lx + 32}" y="${ly + 4}" font-size="12">whole model, unsplit</text>`);
    ly += 22;
  }
  if (profiles.some((p) => p.blocks.some((b) => b.latency.runs > 1))) {
    o.push(`<circle cx="${lx + 12}" cy="${ly}" r="4" fill="#fff" stroke="#555" stroke-width="1.5"/><text x="${lx + 32}" y="${ly + 4}" font-size="12">spread &gt; ${Math.round(HIGH_SPREAD * 100)}% (noisy)</text>`);
    ly += 22;
  }
  if (profiles.some((p) => p.blocks.some((b) => !(b.latency.median > 0)))) {
    o.push(`<text x="${lx}" y="${ly + 4}" font-size="12" fill="#555">gaps: 0 s recorded</text>`);
  }
  if (first.blockSumOverWhole !== undefined) {
    ly += 26;
    o.push(`<text x="${lx}" y="${ly + 4}" font-size="12" fill="#555">block sum / whole:</text>`);
    for (const p of profiles) {
      if (p.blockSumOverWhole === undefined) continue;
      ly += 17;
      o.push(`<text x="${lx + 8}" y="${ly + 4}" font-size="12" fill="#555">${esc(`${p.system.name}: ${p.blockSumOverWhole.toFixed(2)}`)}</text>`);
    }
  }
  o.push(`</g>`);
  o.push(`</svg>`);
  return o.join('\n') + '\n';
}

/** Rasterise an SVG to PNG with @resvg/resvg-js (an optional dependency). */
export async function svgToPng(svg: string, scale = 1): Promise<Uint8Array> {
  let mod: { Resvg: new (svg: string, o: object) => { render(): { asPng(): Uint8Array } } };
  try {
    mod = await import('@resvg/resvg-js' as string) as typeof mod;
  } catch {
    throw kerfError('KERF_ERR_USAGE', 'PNG output needs the npm package @resvg/resvg-js, which is not installed; write .svg instead');
  }
  const r = new mod.Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, background: '#ffffff' });
  return r.render().asPng();
}
