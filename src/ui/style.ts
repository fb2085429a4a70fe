/** The style sheet of the dashboard and of `kerf view` reports (one, so both read alike). */
export const STYLE = `
:root { --fg:#1b1f24; --muted:#4a5360; --bg:#ffffff; --panel:#f4f6f8; --line:#c9d1d9; --accent:#0b5cad; --bad:#a4161a; --ok:#1a7f37;
  --t0:#0b5cad; --t1:#b35900; --t2:#1a7f37; --t3:#8250df; --t4:#a4161a; --t5:#0a7b83; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; flex-wrap:wrap; gap:.5rem 1.5rem; align-items:baseline; padding:.75rem 1rem; border-bottom:1px solid var(--line); background:var(--panel); }
header h1 { font-size:1.25rem; margin:0; }
main { padding:0 1rem 2rem; max-width:1400px; margin:0 auto; }
section { margin:1rem 0; }
h2 { font-size:1.05rem; margin:1.25rem 0 .5rem; border-bottom:1px solid var(--line); padding-bottom:.2rem; }
h3 { font-size:.95rem; margin:.75rem 0 .25rem; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap:1rem; }
.card + .card { margin-top:1rem; } .grid > .card + .card { margin-top:0; }
.card { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:.6rem .8rem; min-width:0; }
.muted { color:var(--muted); }
.status { font-weight:600; }
.status.ok { color:var(--ok); } .status.bad { color:var(--bad); }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:.25rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; background:var(--panel); }
td.num, th.num { text-align:right; }
.scroll { overflow-x:auto; max-width:100%; }
.strip { width:100%; height:auto; display:block; }
.strip text { font-size:11px; fill:var(--fg); }
.legend { display:flex; flex-wrap:wrap; gap:.25rem 1rem; font-size:.9rem; margin:.25rem 0; }
.swatch { display:inline-block; width:.9em; height:.9em; border-radius:2px; vertical-align:-.1em; margin-right:.3em; }
form.controls { display:flex; flex-wrap:wrap; gap:.5rem 1rem; align-items:end; }
label { display:flex; flex-direction:column; font-size:.85rem; color:var(--muted); gap:.15rem; }
input, select, button { font:inherit; color:var(--fg); padding:.3rem .5rem; border:1px solid #6e7781; border-radius:4px; background:#fff; min-height:2rem; }
button { background:var(--accent); color:#fff; border-color:var(--accent); cursor:pointer; }
button.secondary { background:#fff; color:var(--accent); }
button:disabled, select:disabled, input:disabled { opacity:.55; cursor:not-allowed; }
:focus-visible { outline:3px solid #f0b400; outline-offset:2px; }
.notice { padding:.4rem .6rem; border-radius:4px; margin:.4rem 0; background:#fff8c5; border:1px solid #d4a72c; }
.notice.bad { background:#ffebe9; border-color:var(--bad); }
.log { max-height:22rem; overflow-y:auto; }
.kv { display:grid; grid-template-columns:max-content 1fr; gap:.1rem .75rem; margin:0; }
.kv dt { color:var(--muted); } .kv dd { margin:0; font-variant-numeric:tabular-nums; }
.chart { width:100%; min-height:220px; }
.visually-hidden { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); white-space:nowrap; }
.u-legend { font-size:.8rem; }
.bars { display:grid; gap:.2rem; }
.bar-row { display:grid; grid-template-columns:minmax(6rem, 14rem) 1fr minmax(5rem, max-content); gap:.5rem; align-items:center; font-size:.9rem; }
.bar-track { background:#e6eaef; border-radius:3px; height:1rem; }
.bar { display:block; height:100%; background:var(--accent); border-radius:3px; }
.bar-row.marked .bar { background:var(--bad); }
.bar-value { font-variant-numeric:tabular-nums; }
tr.marked td { font-weight:600; background:#ffebe9; }
@media (max-width: 600px) { body { font-size:14px; } main { padding:0 .5rem 1rem; } th, td { padding:.2rem .3rem; } }
`;
