// `kerf view` reports: draws the files inlined in #kerf-data (profiles, plans, placements,
// benchmark outputs). Everything it needs is in the page; it fetches nothing.

interface RItem { file: string; kind: 'profile' | 'plan' | 'placement' | 'bench'; doc: unknown }
interface RLatency { median: number; p90: number; min: number; spread: number; runs: number }
interface RProfile {
  model: { name: string }; system: { name: string; tier?: string; cpu?: string; threads?: number };
  granularity: string; source: string; blocks: { index: number; cutId?: number; latency: RLatency; outputBytes: number; highSpread?: boolean }[];
  whole?: { latency: RLatency }; blockSumOverWhole?: number; callOverheadS?: number;
}
interface RTierPlacement { tier: string; system: string | null; blocks: [number, number] | null; computeS: number; sendsBytes: number }
interface RRanked { rank: number; totalS: number; bottleneckS: number; objectiveS: number; bytesSent: number; cuts: (number | null)[]; boundaries: number[]; tiers: RTierPlacement[]; transfers: { from: string; to: string; bytes: number; seconds: number; kind: string; wireBytes?: number; codec?: string; lossy?: boolean; ratio?: number }[] }
interface RPlan extends RRanked { model: string; objective: string; inputBytes: number; criteria: Record<string, unknown>; ranked: RRanked[]; pareto?: RRanked[] }
interface RStage { index: number; node: string; blocks: { first: number; last: number }; cutIn: number | null; cutOut: number | null; computeSeconds: number; overheadSeconds?: number; wireSeconds: number; sendTo: string | null; sendSeconds: number; memoryBytes: number; memoryLimitBytes: number; speed: number; system?: string }
interface RPlacement {
  model: { name: string; blocks: number }; entry: string | null; objective: string; solver: string; optimal: boolean;
  bottleneck: { seconds: number; kind: string; where: string }; throughput: number; latency: number; lowerBound: number; gap: number;
  stages: RStage[]; links: { from: string; to: string; bytes: number; seconds: number; bandwidthMbps: number; rttMs: number; kind?: string; wireBytes?: number; codec?: string; lossy?: boolean; ratio?: number }[];
  pareto?: RPlacement[];
}

// ---- Pareto fronts (kerf plan --pareto, kerf place --pareto) ----
interface RFrontRow { latencyS: number; bottleneckS: number; deviceBytes: number; codec: string; where: string }
const codecText = (l: { codec?: string; lossy?: boolean; ratio?: number } | undefined): string =>
  (!l ? '–' : l.codec ? `${l.codec}${l.lossy ? ' (lossy)' : ''} ${l.ratio!.toFixed(2)}×` : 'none');
function renderFront(s: HTMLElement, verb: string, rows: RFrontRow[]): void {
  s.append(el('h3', {}, `Pareto front (${verb} --pareto): ${rows.length} placement${rows.length === 1 ? '' : 's'} no other beats on latency, bottleneck and bytes leaving the device`),
    el('div', { class: 'scroll' }, table(['#', 'latency', 'bottleneck', 'requests/s', 'device sends', 'device hop codec', 'placement'],
      rows.map((r, i) => [i + 1, fmtS(r.latencyS), fmtS(r.bottleneckS), r.bottleneckS > 0 ? (1 / r.bottleneckS).toPrecision(3) : '–', fmtBytes(r.deviceBytes), r.codec, r.where]), 'Pareto front')));
  if (rows.length < 2) return;
  const grid = el('div', { class: 'grid' });
  s.append(grid);
  new Chart(chartHost(grid, 'Pareto front: bytes leaving the device and the bottleneck, by end-to-end latency'), {
    time: false, xLabel: 'end-to-end latency (ms)', yLabel: 'KB sent / ms bottleneck',
    series: [{ label: 'device sends (KB)', color: tierColor(4), points: true }, { label: 'bottleneck (ms)', color: tierColor(1), points: true, dash: [4, 4] }],
  }, [rows.map((r) => r.latencyS * 1000), rows.map((r) => r.deviceBytes / 1000), rows.map((r) => r.bottleneckS * 1000)]);
}

const report = document.getElementById('report')!;
const items = JSON.parse(document.getElementById('kerf-data')!.textContent ?? '[]') as RItem[];
let chartSeq = 0;

function section(title: string, sub: string): HTMLElement {
  const id = `s${++chartSeq}`;
  const s = el('section', { 'aria-labelledby': id }, el('h2', { id }, title), el('p', { class: 'muted' }, sub));
  report.append(s);
  return s;
}

function chartHost(parent: HTMLElement, title: string): HTMLElement {
  const host = el('div', { class: 'chart', role: 'img', 'aria-label': title });
  parent.append(el('div', { class: 'card' }, el('h3', {}, title), host));
  return host;
}

function markRows(t: HTMLTableElement, marked: (i: number) => boolean): HTMLTableElement {
  [...t.tBodies[0]!.rows].forEach((r, i) => { if (marked(i)) r.classList.add('marked'); });
  return t;
}

// ---- profiles: grouped by model, one chart series per system ----
function renderProfiles(list: { file: string; p: RProfile }[]): void {
  const model = list[0]!.p.model.name;
  const s = section(`Profiles of ${model}`, `${list.length} system${list.length === 1 ? '' : 's'}: ${list.map((x) => `${x.p.system.name} (${x.file})`).join(', ')}`);
  s.append(el('div', { class: 'scroll' }, table(['system', 'tier', 'threads', 'granularity', 'blocks', 'whole model', 'sum of blocks', 'cost of cutting', 'call overhead'],
    list.map(({ p }) => {
      const sum = p.blocks.reduce((a, b) => a + b.latency.median, 0);
      return [p.system.name, p.system.tier ?? '–', p.system.threads ?? '–', p.granularity, p.blocks.length, fmtS(p.whole?.latency.median), fmtS(sum),
        p.blockSumOverWhole !== undefined ? `${p.blockSumOverWhole.toFixed(3)}× (sum of blocks ÷ whole)` : '–', fmtS(p.callOverheadS)];
    }), 'profiles')));
  const n = Math.max(...list.map((x) => x.p.blocks.length));
  const xs = Array.from({ length: n }, (_, i) => i);
  const lat = list.map(({ p }) => xs.map((i) => (p.blocks[i] ? p.blocks[i]!.latency.median * 1000 : null)));
  const flat = lat.flat().filter((v): v is number => v !== null && v > 0);
  const grid = el('div', { class: 'grid' });
  s.append(grid);
  new Chart(chartHost(grid, 'Per-block latency per system (median, ms)'), {
    time: false, intX: true, xLabel: 'block', yLabel: 'ms', logY: flat.length > 0 && Math.max(...flat) / Math.min(...flat) > 50,
    series: list.map(({ p }, i) => ({ label: p.system.name, color: tierColor(i), points: true, value: (v) => (v === null ? '–' : `${v.toPrecision(3)} ms`) })),
  }, [xs, ...lat.map((a) => a.map((v) => (v !== null && v <= 0 ? null : v)))]);
  const first = list[0]!.p;
  new Chart(chartHost(grid, 'Output size per cut (bytes crossing after each block, KB)'), {
    time: false, intX: true, xLabel: 'block (its end cut)', yLabel: 'KB',
    series: [{ label: 'output', color: tierColor(0), bars: true, value: (v) => (v === null ? '–' : `${v.toPrecision(4)} KB`) }],
  }, [xs, xs.map((i) => (first.blocks[i] ? first.blocks[i]!.outputBytes / 1000 : null))]);
  const noisy = list.flatMap(({ p }) => p.blocks.filter((b) => b.highSpread).map((b) => `${p.system.name} block ${b.index}`));
  if (noisy.length) s.append(el('p', { class: 'notice' }, `High spread (treat with care): ${noisy.slice(0, 20).join(', ')}${noisy.length > 20 ? ', …' : ''}`));
}

// ---- plans ----
function paretoFront(pts: { x: number; y: number; i: number }[]): Set<number> {
  const sorted = [...pts].sort((a, b) => a.x - b.x || a.y - b.y);
  const front = new Set<number>();
  let best = Infinity;
  for (const p of sorted) if (p.y < best) { best = p.y; front.add(p.i); }
  return front;
}

function renderPlan(file: string, p: RPlan): void {
  const s = section(`Plan for ${p.model}`, `${file}: objective ${p.objective}, ${p.ranked.length} ranked placements${Object.keys(p.criteria ?? {}).length ? `, criteria ${JSON.stringify(p.criteria)}` : ''}`);
  const names = p.tiers.map((t) => (t.system ? `${t.tier} (${t.system})` : t.tier));
  const nBlocks = Math.max(...p.ranked.flatMap((r) => r.tiers.map((t) => (t.blocks ? t.blocks[1] + 1 : 0))));
  const tierOf = (b: number): number | null => { const k = p.tiers.findIndex((t) => t.blocks !== null && b >= t.blocks[0] && b <= t.blocks[1]); return k < 0 ? null : k; };
  s.append(kv([['best', `rank 1: ${fmtS(p.totalS)} end to end, bottleneck ${fmtS(p.bottleneckS)}, ${fmtBytes(p.bytesSent)} sent`],
    ['cuts', p.cuts.map((c) => (c === null ? '?' : String(c))).join(', ') || 'none (one tier)'], ['input', fmtBytes(p.inputBytes)]]));
  const strip = el('div', { class: 'scroll' });
  s.append(el('h3', {}, 'The best split drawn on the model'), strip);
  drawStrip(strip, Array.from({ length: nBlocks }, (_, b) => ({ label: `block ${b}`, tier: tierOf(b) })), names, p.boundaries.filter((b) => b < nBlocks - 1), `${p.model}: ${nBlocks} blocks split as ${names.join(' → ')}`);
  const lg = el('div', { class: 'legend' });
  legend(lg, p.tiers.map((t, i) => `${names[i]}: ${t.blocks ? `blocks ${t.blocks[0]}–${t.blocks[1]}, ${fmtS(t.computeS)}` : 'unused'}`));
  s.append(lg);
  const top = p.ranked.slice(0, 25);
  s.append(el('h3', {}, `Ranked placements (top ${top.length} of ${p.ranked.length})`), el('div', { class: 'scroll' }, markRows(table(['rank', 'latency', 'bottleneck', 'sent', 'cuts', ...p.tiers.map((t) => t.tier)],
    top.map((r) => [r.rank, fmtS(r.totalS), fmtS(r.bottleneckS), fmtBytes(r.bytesSent), r.cuts.map((c) => c ?? '?').join(',') || '–',
      ...r.tiers.map((t) => (t.blocks ? `${t.system ?? ''} ${t.blocks[0]}–${t.blocks[1]} (${fmtS(t.computeS)})` : '–'))]), 'ranked placements'), (i) => i === 0)));
  const pts = p.ranked.map((r, i) => ({ x: r.totalS, y: r.bytesSent, i }));
  const front = paretoFront(pts);
  if (front.size >= 2) {
    const order = [...pts].sort((a, b) => a.x - b.x);
    const grid = el('div', { class: 'grid' });
    s.append(grid);
    new Chart(chartHost(grid, `Pareto front: latency against bytes sent (${front.size} of ${pts.length} placements are on it)`), {
      time: false, xLabel: 'end-to-end latency (ms)', yLabel: 'sent (KB)',
      series: [{ label: 'placement', color: '#6e7781', noLine: true }, { label: 'Pareto front', color: tierColor(4), points: true, spanGaps: true }],
    }, [order.map((q) => q.x * 1000), order.map((q) => q.y / 1000), order.map((q) => (front.has(q.i) ? q.y / 1000 : null))]);
  } else s.append(el('p', { class: 'muted' }, 'No Pareto front between latency and bytes sent: one placement is best on both.'));
  if (p.pareto?.length) {
    renderFront(s, 'kerf plan', p.pareto.map((r) => {
      const first = r.transfers.find((t) => t.kind === 'forward');
      return { latencyS: r.totalS, bottleneckS: r.bottleneckS, deviceBytes: first ? first.wireBytes ?? first.bytes : 0, codec: codecText(first),
        where: r.tiers.filter((t) => t.blocks).map((t) => `${t.system} ${t.blocks![0]}–${t.blocks![1]}`).join(' → ') };
    }));
  }
}

// ---- placements ----
function renderPlacement(file: string, p: RPlacement): void {
  const s = section(`Placement of ${p.model.name}`, `${file}: ${p.stages.length} stages on ${new Set(p.stages.map((x) => x.node)).size} nodes, solver ${p.solver}${p.optimal ? ' (proved optimal)' : ` (gap ${(p.gap * 100).toFixed(1)} % to the lower bound)`}`);
  s.append(kv([['bottleneck', `${p.bottleneck.kind} ${p.bottleneck.where}: ${fmtS(p.bottleneck.seconds)} per request`], ['throughput', `${p.throughput.toPrecision(4)} requests/s`],
    ['latency', fmtS(p.latency)], ['entry', p.entry ?? '–'], ['objective', p.objective]]));
  const names = p.stages.map((x) => x.node);
  const strip = el('div', { class: 'scroll' });
  s.append(el('h3', {}, 'Stages drawn on the model'), strip);
  drawStrip(strip, Array.from({ length: p.model.blocks }, (_, b) => ({ label: `block ${b}`, tier: p.stages.findIndex((x) => b >= x.blocks.first && b <= x.blocks.last) })).map((b) => ({ ...b, tier: b.tier < 0 ? null : b.tier })),
    names, p.stages.slice(0, -1).map((x) => x.blocks.last), `${p.model.name}: ${p.model.blocks} blocks over ${names.join(' → ')}`);
  const lg = el('div', { class: 'legend' });
  legend(lg, p.stages.map((x) => `${x.node}: blocks ${x.blocks.first}–${x.blocks.last}`));
  s.append(lg);
  // kerf place names it 'stage K on NODE' or 'FROM -> TO'.
  const isBottleneck = (x: RStage): boolean => p.bottleneck.kind === 'compute' && p.bottleneck.where === `stage ${x.index} on ${x.node}`;
  s.append(el('h3', {}, 'Stages'), el('div', { class: 'scroll' }, markRows(table(['stage', 'node', 'blocks', 'cuts', 'compute', 'wire CPU', 'sends to', 'send', 'memory / limit', 'speed'],
    p.stages.map((x) => [x.index, x.node, `${x.blocks.first}–${x.blocks.last}`, `${x.cutIn ?? 'input'} → ${x.cutOut ?? 'output'}`, fmtS(x.computeSeconds), fmtS(x.wireSeconds), x.sendTo ?? '–', fmtS(x.sendSeconds),
      `${fmtBytes(x.memoryBytes)} / ${fmtBytes(x.memoryLimitBytes)}`, x.speed]), 'stages'), (i) => isBottleneck(p.stages[i]!))));
  const card = el('div', { class: 'card' });
  s.append(card);
  const linkMark = (l: { from: string; to: string }): boolean => p.bottleneck.kind === 'link' && p.bottleneck.where === `${l.from} -> ${l.to}`;
  bars(card, [
    ...p.stages.map((x) => ({ label: `stage ${x.index} on ${x.node}`, value: x.computeSeconds + (x.overheadSeconds ?? 0) + x.wireSeconds, ...(isBottleneck(x) ? { mark: '← bottleneck' } : {}) })),
    ...p.links.map((l) => ({ label: `link ${l.from} → ${l.to}`, value: l.seconds, ...(linkMark(l) ? { mark: '← bottleneck' } : {}) })),
  ], fmtS, 'Seconds per request of each stage and link (the slowest sets the throughput)');
  if (p.pareto?.length) {
    renderFront(s, 'kerf place', p.pareto.map((q) => {
      const first = q.links.find((l) => l.kind !== 'return' && l.from === q.entry);
      return { latencyS: q.latency, bottleneckS: q.bottleneck.seconds, deviceBytes: first ? first.wireBytes ?? first.bytes : 0, codec: codecText(first),
        where: q.stages.map((x) => `${x.node} ${x.blocks.first}–${x.blocks.last}`).join(' → ') };
    }));
  }
}

// ---- benchmark outputs: every list of records as a table, its main figures as bars ----
const LABEL_KEYS = ['strategy', 'policy', 'name', 'scenario', 'kind', 'case', 'model'];
function renderBench(file: string, doc: unknown): void {
  const lists: [string, Record<string, unknown>[]][] = Array.isArray(doc) ? [['rows', doc as Record<string, unknown>[]]]
    : Object.entries(doc as Record<string, unknown>).filter(([, v]) => Array.isArray(v) && v.some((x) => x && typeof x === 'object')).map(([k, v]) => [k, (v as unknown[]).filter((x) => x && typeof x === 'object') as Record<string, unknown>[]]);
  const s = section(`Benchmark: ${file}`, `${lists.map(([k, v]) => `${v.length} ${k}`).join(', ')}`);
  if (!Array.isArray(doc)) {
    const scalars = Object.entries(doc as Record<string, unknown>).filter(([, v]) => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean');
    if (scalars.length) s.append(kv(scalars.map(([k, v]) => [k, fmtNum(v)])));
  }
  for (const [name, rows] of lists) {
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r).filter((k) => ['number', 'string', 'boolean'].includes(typeof r[k]))))].slice(0, 16);
    const labelKey = LABEL_KEYS.find((k) => cols.includes(k)) ?? cols.find((k) => rows.every((r) => typeof r[k] === 'string'));
    s.append(el('h3', {}, name), el('div', { class: 'scroll' }, table(cols, rows.slice(0, 200).map((r) => cols.map((c) => (typeof r[c] === 'number' ? (r[c] as number) : fmtNum(r[c])))), name)));
    // Bars for the figures that differ between rows, times and ratios first.
    const numeric = cols.filter((c) => c !== labelKey && rows.every((r) => typeof r[c] === 'number' && Number.isFinite(r[c] as number)) && new Set(rows.map((r) => r[c])).size > 1);
    const pick = [...numeric.filter((c) => /(Ms|S)$/.test(c) || /(mean|p50|p99|ratio|latency)$/i.test(c)), ...numeric].filter((c, i, a) => a.indexOf(c) === i).slice(0, 3);
    if (!labelKey || rows.length > 40) continue;
    const grid = el('div', { class: 'grid' });
    s.append(grid);
    for (const c of pick) {
      const card = el('div', { class: 'card' });
      grid.append(card);
      bars(card, rows.map((r, i) => ({ label: String(r[labelKey] ?? i), value: r[c] as number })), (v) => fmtNum(v), `${name}: ${c}`);
    }
  }
}

const profiles = new Map<string, { file: string; p: RProfile }[]>();
for (const it of items) {
  try {
    if (it.kind === 'profile') {
      const p = it.doc as RProfile;
      const list = profiles.get(p.model.name) ?? [];
      if (!list.length) profiles.set(p.model.name, list);
      list.push({ file: it.file, p });
    }
  } catch (e) { report.append(el('p', { class: 'notice bad' }, `${it.file}: ${(e as Error).message}`)); }
}
for (const list of profiles.values()) renderProfiles(list);
for (const it of items) {
  try {
    if (it.kind === 'plan') renderPlan(it.file, it.doc as RPlan);
    else if (it.kind === 'placement') renderPlacement(it.file, it.doc as RPlacement);
    else if (it.kind === 'bench') renderBench(it.file, it.doc);
  } catch (e) { report.append(el('p', { class: 'notice bad' }, `${it.file}: cannot draw it (${(e as Error).message})`)); }
}
