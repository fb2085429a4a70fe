/** The HTML shells: the live dashboard (assets from the gateway) and a self-contained report (assets inlined). */
import { asset, escapeHtml, scriptJson } from './assets.js';

const head = (title: string): string =>
  `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><link rel="icon" href="data:,">`;

/** The dashboard's page: a skeleton the script fills from the event stream. */
export function dashboardPage(model: string): string {
  return `${head(`kerf · ${model}`)}
<link rel="stylesheet" href="/ui/assets/uplot.css"><link rel="stylesheet" href="/ui/assets/kerf.css"></head>
<body>
<header><h1>kerf · <span id="model-name">${escapeHtml(model)}</span></h1>
<span>version <strong id="version">–</strong></span><span>strategy <strong id="strategy">–</strong></span>
<span id="ready" class="status" role="status" aria-live="polite">connecting…</span>
<span class="muted" id="updated"></span></header>
<main>
<section aria-labelledby="h-split"><h2 id="h-split">Model and split</h2>
<div id="strip" class="scroll"></div><div id="strip-legend" class="legend"></div></section>
<section aria-labelledby="h-tiers"><h2 id="h-tiers">Tiers and hops</h2>
<div class="card scroll" id="tiers"></div><div class="card scroll" id="hops"></div></section>
<section aria-labelledby="h-charts"><h2 id="h-charts">Live charts (last 5 minutes)</h2>
<div class="grid"><div class="card"><h3>Latency and throughput</h3><div id="chart-latency" class="chart" role="img" aria-label="latency p50 and p99 and throughput over time"></div></div>
<div class="card"><h3>Per-tier time</h3><div id="chart-tiers" class="chart" role="img" aria-label="per-tier compute and queue time over time"></div></div>
<div class="card" id="bw-card"><h3>Bandwidth estimates</h3><div id="chart-bw" class="chart" role="img" aria-label="estimated bandwidth per hop over time" hidden></div><p class="muted" id="bw-note"></p></div></div></section>
<section aria-labelledby="h-controls"><h2 id="h-controls">Controls</h2><div id="controls"></div></section>
<section aria-labelledby="h-log"><h2 id="h-log">Switch, adapt, failover and rollout log</h2><div id="log" class="log scroll" tabindex="0" aria-label="event log"></div></section>
<section aria-labelledby="h-extra" id="extra-section" hidden><h2 id="h-extra">More state</h2><div id="extra"></div></section>
</main>
<script src="/ui/assets/uplot.js"></script><script src="/ui/assets/common.js"></script><script src="/ui/assets/dashboard.js"></script>
</body></html>
`;
}

/** One report's data as the page script reads it. */
export interface ReportItem { file: string; kind: string; doc: unknown }

/** A report: one file, every asset and the data inline, a policy forbidding any fetch. */
export async function reportPage(title: string, items: ReportItem[]): Promise<string> {
  const [ucss, kcss, ujs, common, report] = await Promise.all([asset('uplot.css'), asset('kerf.css'), asset('uplot.js'), asset('common.js'), asset('report.js')]);
  const script = (s: string): string => `<script>${s.replace(/<\/script/gi, '<\\/script')}</script>`;
  return `${head(title)}
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<style>${ucss}</style><style>${kcss}</style></head>
<body>
<header><h1>${escapeHtml(title)}</h1><span class="muted">${items.length} file${items.length === 1 ? '' : 's'}: ${items.map((i) => escapeHtml(`${i.file} (${i.kind})`)).join(', ')}</span></header>
<main id="report"></main>
<script type="application/json" id="kerf-data">${scriptJson(items)}</script>
${script(ujs)}${script(common)}${script(report)}
</body></html>
`;
}
