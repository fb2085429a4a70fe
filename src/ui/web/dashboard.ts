// The live dashboard: reads the gateway's event stream (/v1/events) and draws the split, the
// tiers and hops, the charts and the log; its controls call /ui/api/ with the pipeline's token.
// Fields other subsystems add (hosts, codecs, failover, rollout) are shown when present.

interface DCut { id: number; bytes: number; after: string; single: boolean }
interface DPoint { t: number; rps: number; errorsPerS: number; p50S: number | null; p99S: number | null; tiers: Record<string, { queueS: number; computeS: number }>; remoteS: number | null }
interface DHello {
  model: { name: string; inputs: { name: string; shape: number[] }[]; outputs: { name: string; shape: number[] }[]; cuts: DCut[] };
  controls: boolean; strategies: string[]; periodMs: number; history: DPoint[];
}
type DTier = { name: string; address: string; part: number } & Record<string, unknown>;
interface DModelVersion { name: string; sha256: string; file: string | null }
interface DSwitch {
  version: string; strategy: string; from: number[]; to: number[]; at: string; prepared: string; downtimeMs: number; durationMs: number; rerouted?: number; setup?: boolean;
  failover?: { reason: string; lost: string[]; detectMs: number; replanMs: number; deployMs: number; switchMs: number; replayed: number; staged: boolean };
  rollout?: { from: DModelVersion; to: DModelVersion; back: boolean };
}
interface DPartition {
  strategy: string; model: string; version: string; cuts: number[]; tiers: DTier[]; switching: boolean; history: DSwitch[]; standby: { version: string; cuts: number[] } | null;
  modelVersion?: DModelVersion; previousModel?: DModelVersion | null;
}
interface DLinkEst { from: string; to: string; bytesPerS: number; rttS: number; confident: boolean; observed: boolean; codec?: string }
interface DTierEst { name: string; factor: number; queueS: number; confident: boolean }
interface DConditions {
  mode: string;
  profiled?: boolean;
  monitor?: { links: DLinkEst[]; tiers: DTierEst[]; ratePerS: number };
  events?: { at: string; reason: string; fromCuts: number[]; toCuts: number[]; error?: string; switch: boolean }[];
  lastDecision?: { reason: string } | null;
}
interface DSnapshot {
  t: number; point: DPoint | null; partition: DPartition;
  gateway: { ready: boolean; paused: boolean; queueDepth: number; cpuShare: number; rssBytes: number; pid: number; codec?: string | null; host?: string };
  workers?: Record<string, { host: string | null; pid: number | null; address: string; cpuShare: number | null; rssBytes: number | null }>;
  workersError?: string;
  panels: Record<string, unknown>;
}
interface DRanked { rank: number; totalS: number; bottleneckS: number; bytesSent: number; cuts: (number | null)[] }

const $ = (id: string): HTMLElement => document.getElementById(id)!;

class Dashboard {
  private hello: DHello | null = null;
  private snap: DSnapshot | null = null;
  private points: DPoint[] = [];
  private bw: { t: number; rates: (number | null)[] }[] = [];
  private bwNames: string[] = [];
  private latency: Chart | null = null;
  private tierChart: Chart | null = null;
  private tierChartNames = '';
  private bwChart: Chart | null = null;
  private token: string | null = null;
  private plan: DRanked[] | null = null;
  private busy = false;
  private message: { text: string; bad: boolean } | null = null;
  private controlsKey = '';

  start(): void {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem('kerf-token', decodeURIComponent(m[1]!));
      history.replaceState(null, '', location.pathname + location.search);
    }
    const saved = sessionStorage.getItem('kerf-token');
    if (saved) void this.unlock(saved, true);
    const es = new EventSource('/v1/events');
    es.addEventListener('hello', (e) => this.onHello(JSON.parse((e as MessageEvent<string>).data) as DHello));
    es.addEventListener('snapshot', (e) => this.onSnapshot(JSON.parse((e as MessageEvent<string>).data) as DSnapshot));
    es.onerror = () => { const r = $('ready'); r.textContent = 'disconnected: reconnecting…'; r.className = 'status bad'; };
  }

  private onHello(h: DHello): void {
    this.hello = h;
    this.points = [...h.history];
    this.bw = [];
    $('model-name').textContent = h.model.name;
    this.latency ??= new Chart($('chart-latency'), {
      time: true, yLabel: 'latency (ms)', y2Label: 'requests/s',
      series: [
        { label: 'p50', color: tierColor(0), value: (v) => (v === null ? '–' : `${v.toFixed(2)} ms`) },
        { label: 'p99', color: tierColor(4), dash: [6, 4], value: (v) => (v === null ? '–' : `${v.toFixed(2)} ms`) },
        { label: 'throughput', color: tierColor(2), scale: 'y2', value: (v) => (v === null ? '–' : `${v.toFixed(1)}/s`) },
      ],
    });
    this.drawCharts();
    this.renderControls();
  }

  private onSnapshot(s: DSnapshot): void {
    this.snap = s;
    if (s.point && (this.points.length === 0 || this.points[this.points.length - 1]!.t < s.point.t)) {
      this.points.push(s.point);
      if (this.points.length > 300) this.points.splice(0, this.points.length - 300);
    }
    const links = this.conditions()?.monitor?.links;
    if (links) {
      this.bwNames = links.map((l) => `${l.from} → ${l.to}`);
      this.bw.push({ t: s.t, rates: links.map((l) => (Number.isFinite(l.bytesPerS) ? (l.bytesPerS * 8) / 1e6 : null)) });
      if (this.bw.length > 300) this.bw.splice(0, this.bw.length - 300);
    }
    this.render();
  }

  private conditions(): DConditions | null {
    const c = this.snap?.panels.conditions as DConditions | undefined;
    return c && typeof c === 'object' && !('error' in c) ? c : null;
  }

  /** Tier names in chain order, the gateway first. */
  private tierNames(): string[] { return this.snap?.partition.tiers.map((t) => t.name) ?? []; }

  private render(): void {
    const s = this.snap;
    const h = this.hello;
    if (!s || !h) return;
    const p = s.partition;
    $('version').textContent = p.version + (p.modelVersion ? ` · model ${p.modelVersion.name} ${p.modelVersion.sha256.slice(0, 12)}` : '') + (p.switching ? ' (switching…)' : '');
    $('strategy').textContent = p.strategy;
    const r = $('ready');
    r.textContent = s.gateway.paused ? 'paused' : s.gateway.ready ? 'ready' : 'not ready';
    r.className = `status ${s.gateway.ready ? 'ok' : 'bad'}`;
    $('updated').textContent = `updated ${new Date(s.t).toLocaleTimeString()}`;
    this.renderStrip();
    this.renderTiers();
    this.renderHops();
    this.drawCharts();
    this.renderLog();
    this.renderControls();
    this.renderExtra();
  }

  private renderStrip(): void {
    const h = this.hello!, p = this.snap!.partition;
    const cuts = h.model.cuts;
    const active = p.cuts.map((id) => cuts.findIndex((c) => c.id === id));
    const names = this.tierNames();
    // The part of block i is how many cuts in force come before it; tiers are listed by part.
    const blocks: StripBlock[] = Array.from({ length: cuts.length + 1 }, (_, i) => {
      const tier = active.filter((a) => a >= 0 && a < i).length;
      const end = cuts[i];
      return { label: `block ${i}${end ? ` (ends at cut ${end.id} after ${end.after}, ${fmtBytes(end.bytes)} out)` : ' (model output)'}`, tier: tier < names.length ? tier : null };
    });
    drawStrip($('strip'), blocks, names, active.filter((a) => a >= 0),
      `${h.model.name}: ${blocks.length} blocks, cuts in force ${p.cuts.join(', ') || 'none'} (${names.join(' → ')})`);
    legend($('strip-legend'), names.map((nm, i) => {
      const n = blocks.filter((b) => b.tier === i).length;
      return `${nm}: ${n} block${n === 1 ? '' : 's'}`;
    }));
    const allCuts = $('strip-legend');
    allCuts.append(el('span', { class: 'muted' }, `cut ids: ${cuts.map((c) => c.id).join(', ')}`));
  }

  private renderTiers(): void {
    const s = this.snap!, p = s.partition, pt = this.points[this.points.length - 1];
    const est = new Map((this.conditions()?.monitor?.tiers ?? []).map((t) => [t.name, t] as const));
    const known = new Set(['name', 'address', 'part']);
    const extraKeys = [...new Set(p.tiers.flatMap((t) => Object.keys(t).filter((k) => !known.has(k) && ['string', 'number', 'boolean'].includes(typeof t[k]))))];
    const rows = p.tiers.map((t, i) => {
      const time = pt?.tiers[t.name];
      const e = est.get(t.name) ?? this.conditions()?.monitor?.tiers[i];
      const gw = i === 0 && t.part === 0 && t.name === 'gateway';
      const w = gw ? undefined : s.workers?.[t.name];
      const cpu = gw ? s.gateway.cpuShare : w?.cpuShare;
      const rss = gw ? s.gateway.rssBytes : w?.rssBytes;
      return [
        el('span', {}, el('span', { class: 'swatch', style: `background:${tierColor(i)}`, 'aria-hidden': 'true' }), t.name),
        (gw ? s.gateway.host : w?.host) ?? '–', t.address, String(t.part),
        fmtS(time?.computeS), fmtS(time?.queueS),
        // without profiles no run tells a load: the prior 1× says nothing
        e && (e.confident || this.profiled()) ? `${e.factor.toFixed(2)}×${e.confident ? '' : ' (prior)'}` : '–',
        typeof cpu === 'number' ? `${(cpu * 100).toFixed(1)} %${typeof t.cpus === 'number' ? ` of ${t.cpus}` : ''}` : typeof t.cpus === 'number' ? `${t.cpus} cores` : '–',
        typeof rss === 'number' ? fmtBytes(rss) : typeof t.memoryBytes === 'number' ? fmtBytes(t.memoryBytes as number) : '–',
        ...extraKeys.map((k) => String(t[k] ?? '–')),
      ];
    });
    $('tiers').replaceChildren(el('h3', {}, 'Tiers'), table(['tier', 'host', 'address', 'part', 'compute', 'queue', 'load factor', 'CPU', 'memory', ...extraKeys], rows, 'per-tier figures'),
      el('p', { class: 'muted' }, `gateway queue depth ${s.gateway.queueDepth}; compute and queue are means over the last second; CPU is the process's share of one core, memory its resident set; ` +
        `load factor is adapt's observed ÷ profiled time (with --profiles)${s.workersError ? `; workers' figures missing: ${s.workersError}` : ''}`));
  }

  /** The gateway's monitors compare runs with profiles (false: monitors alone, links only). */
  private profiled(): boolean { return this.conditions()?.profiled !== false; }

  private renderHops(): void {
    const p = this.snap!.partition, pt = this.points[this.points.length - 1];
    const links = this.conditions()?.monitor?.links ?? [];
    const rows: Child[][] = [];
    for (let i = 0; i + 1 < p.tiers.length; i++) {
      const a = p.tiers[i]!, b = p.tiers[i + 1]!;
      const l = links.find((x) => x.from === a.name && x.to === b.name) ?? links[i];
      // The gateway knows its own hop's codec; a worker's shows when its status carries one.
      const codec = (l?.codec ?? a.codec ?? (i === 0 && a.part === 0 ? this.snap!.gateway.codec : undefined) ?? undefined) as string | undefined;
      rows.push([`${a.name} → ${b.name}`, l ? fmtRate(l.bytesPerS) + (l.confident ? '' : ' (prior)') : '–', l ? fmtS(l.rttS) : '–', codec ?? '–']);
    }
    $('hops').replaceChildren(el('h3', {}, 'Hops'), table(['hop', 'bandwidth (est.)', 'RTT (est.)', 'codec'], rows, 'per-hop figures'),
      el('p', { class: 'muted' }, `gateway's remote round trip ${fmtS(pt?.remoteS)}; bandwidth and RTT are the gateway's estimates (GET /v1/conditions) from the bytes each hop carries and the tiers' timings, "(prior)" until requests have told them${links.length ? '' : ' — none on this gateway'}`));
  }

  private drawCharts(): void {
    const pts = this.points;
    this.latency?.set([pts.map((p) => p.t / 1000), pts.map((p) => (p.p50S === null ? null : p.p50S * 1000)), pts.map((p) => (p.p99S === null ? null : p.p99S * 1000)), pts.map((p) => p.rps)]);
    // Tiers in chain order (their colours are the strip's), then any others seen in the points.
    const names = [...new Set([...this.tierNames(), ...pts.flatMap((p) => Object.keys(p.tiers))])].filter((n) => pts.some((p) => p.tiers[n]));
    if (names.length && names.join('\n') !== this.tierChartNames) {
      this.tierChartNames = names.join('\n');
      $('chart-tiers').replaceChildren();
      this.tierChart = new Chart($('chart-tiers'), {
        time: true, yLabel: 'ms per request',
        series: names.flatMap((n) => {
          const i = this.tierNames().indexOf(n);
          const color = tierColor(i >= 0 ? i : names.indexOf(n));
          return [{ label: `${n} compute`, color }, { label: `${n} queue`, color, dash: [4, 4] }];
        }),
      });
    }
    this.tierChart?.set([pts.map((p) => p.t / 1000), ...names.flatMap((n) => [pts.map((p) => (p.tiers[n] ? p.tiers[n]!.computeS * 1000 : null)), pts.map((p) => (p.tiers[n] ? p.tiers[n]!.queueS * 1000 : null))])]);
    if (this.bwNames.length) {
      $('bw-note').textContent = '';
      $('chart-bw').hidden = false;
      if (!this.bwChart) {
        this.bwChart = new Chart($('chart-bw'), { time: true, yLabel: 'Mbit/s', series: this.bwNames.map((n, i) => ({ label: n, color: tierColor(i) })) });
      }
      this.bwChart.set([this.bw.map((b) => b.t / 1000), ...this.bwNames.map((_, j) => this.bw.map((b) => b.rates[j] ?? null))]);
    } else $('bw-note').textContent = 'No bandwidth estimates on this gateway (GET /v1/conditions): a pipeline of one tier has no hop.';
  }

  private renderLog(): void {
    const p = this.snap!.partition;
    type Row = { at: string; kind: string; what: string; why: string };
    const rows: Row[] = p.history.map((h) => {
      const how = `downtime ${h.downtimeMs.toFixed(2)} ms, took ${h.durationMs.toFixed(0)} ms${h.rerouted ? `, ${h.rerouted} rerouted` : ''}`;
      const cuts = `cuts ${h.from.join(',') || 'none'} → ${h.to.join(',') || 'none'}`;
      if (h.failover) {
        const f = h.failover;
        return { at: h.at, kind: 'failover', what: `${h.version}: lost ${f.lost.join(', ')}; ${cuts}${f.staged ? ' (staged ahead)' : ''}`,
          why: `${f.reason}; detect ${f.detectMs.toFixed(0)} ms, re-plan ${f.replanMs.toFixed(0)} ms, deploy ${f.deployMs.toFixed(0)} ms, switch ${f.switchMs.toFixed(0)} ms, ${f.replayed} replayed` };
      }
      if (h.rollout) {
        const r = h.rollout;
        return { at: h.at, kind: 'rollout', what: `${h.version}: ${r.back ? 'back to' : 'to'} ${r.to.name} (${r.to.sha256.slice(0, 12)}) from ${r.from.name} (${r.from.sha256.slice(0, 12)}); ${cuts}`, why: how };
      }
      return { at: h.at, kind: h.setup ? 'setup' : 'switch', what: `${h.version}: ${cuts} (${h.strategy}, ${h.prepared})`, why: how };
    });
    for (const e of this.conditions()?.events ?? []) rows.push({ at: e.at, kind: 'adapt', what: `${e.fromCuts.join(',')} → ${e.toCuts.join(',')}`, why: e.error ? `${e.reason}; failed: ${e.error}` : e.reason });
    // Other panels' logs (failover, rollout, …): arrays of records with a time, or { events: […] }.
    for (const [name, v] of Object.entries(this.snap!.panels)) {
      if (name === 'conditions') continue;
      const list = Array.isArray(v) ? v : v && typeof v === 'object' && Array.isArray((v as { events?: unknown }).events) ? (v as { events: unknown[] }).events : [];
      for (const e of list as Record<string, unknown>[]) {
        if (!e || typeof e !== 'object' || typeof e.at !== 'string') continue;
        const { at, reason, message, ...rest } = e;
        rows.push({ at: at as string, kind: name, what: Object.entries(rest).filter(([, x]) => typeof x !== 'object').map(([k, x]) => `${k} ${String(x)}`).join(', '), why: String(reason ?? message ?? '') });
      }
    }
    rows.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
    const last = this.conditions()?.lastDecision?.reason;
    $('log').replaceChildren(
      ...(last ? [el('p', {}, el('strong', {}, 'adapt, last decision: '), last)] : []),
      rows.length ? table(['time', 'kind', 'what', 'why / how'], rows.slice(0, 200).map((r) => [new Date(r.at).toLocaleTimeString(), r.kind, r.what, r.why]), 'event log')
        : el('p', { class: 'muted' }, 'No switches yet.'));
  }

  private renderExtra(): void {
    const extra = Object.entries(this.snap!.panels).filter(([k]) => k !== 'conditions');
    const sec = $('extra-section');
    sec.hidden = extra.length === 0;
    if (!extra.length) return;
    const host = $('extra');
    const open = new Set([...host.querySelectorAll('details[open]')].map((d) => d.getAttribute('data-name')));
    host.replaceChildren(...extra.map(([k, v]) => el('details', { 'data-name': k, open: open.has(k) }, el('summary', {}, k), el('pre', { class: 'scroll' }, JSON.stringify(v, null, 2)))));
  }

  // ---- controls ----

  private async unlock(token: string, quiet = false): Promise<void> {
    const r = await fetch('/ui/api/auth', { headers: { authorization: `Bearer ${token}` } }).catch(() => null);
    if (r?.ok) {
      this.token = token;
      sessionStorage.setItem('kerf-token', token);
      this.message = { text: 'Controls unlocked.', bad: false };
    } else {
      this.token = null;
      sessionStorage.removeItem('kerf-token');
      if (!quiet) this.message = { text: r ? `Refused: ${((await r.json().catch(() => ({}))) as { error?: string }).error ?? r.status}` : 'The gateway did not answer.', bad: true };
    }
    this.controlsKey = '';
    this.renderControls();
  }

  private async call(path: string, method: string, body: unknown, done: string): Promise<void> {
    this.busy = true;
    this.message = { text: 'Working…', bad: false };
    this.controlsKey = '';
    this.renderControls();
    try {
      const r = await fetch(path, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token ?? ''}` }, body: JSON.stringify(body) });
      const doc = (await r.json().catch(() => ({}))) as { error?: string; downtimeMs?: number; durationMs?: number };
      this.message = r.ok ? { text: `${done}${doc.durationMs !== undefined ? ` in ${doc.durationMs.toFixed(0)} ms (downtime ${doc.downtimeMs?.toFixed(2)} ms)` : ''}.`, bad: false }
        : { text: `Refused (${r.status}): ${doc.error ?? ''}`, bad: true };
      if (r.status === 401) { this.token = null; sessionStorage.removeItem('kerf-token'); }
    } catch (e) {
      this.message = { text: `Failed: ${(e as Error).message}`, bad: true };
    } finally {
      this.busy = false;
      this.controlsKey = '';
      this.renderControls();
    }
  }

  private renderControls(): void {
    const h = this.hello, s = this.snap;
    if (!h || !s) return;
    const p = s.partition;
    // Rebuild only when something the form shows changed, so a choice being made survives snapshots.
    const key = JSON.stringify([!!this.token, this.busy, p.cuts, p.strategy, p.tiers.length, this.message, this.plan?.length ?? -1, p.previousModel?.sha256 ?? null]);
    if (key === this.controlsKey) return;
    this.controlsKey = key;
    const off = !this.token || this.busy;
    const names = this.tierNames();
    const host = $('controls');
    const parts: Node[] = [];
    if (!h.controls) parts.push(el('p', { class: 'notice' }, 'This gateway has no token: its controls are off (read-only).'));
    else if (!this.token) {
      const input = el('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'token-help' });
      parts.push(el('form', { class: 'controls', id: 'unlock', onsubmit: (e: Event) => { e.preventDefault(); void this.unlock(input.value.trim()); } },
        el('label', { for: 'token' }, 'Control token', input), el('button', { type: 'submit' }, 'Unlock controls')),
      el('p', { class: 'muted', id: 'token-help' }, 'Read-only without the pipeline\'s token (kerf up prints the dashboard link with it; or KERF_TOKEN).'));
    }
    // Cuts: one choice per boundary between consecutive tiers.
    const selects = p.cuts.map((c, i) => {
      const sel = el('select', { id: `cut-${i}`, disabled: off },
        ...h.model.cuts.map((x) => el('option', { value: x.id, selected: x.id === c }, `${x.id} (after ${x.after}, ${fmtBytes(x.bytes)})`)));
      return el('label', { for: `cut-${i}` }, `Cut ${i + 1}: ${names[i] ?? `part ${i}`} → ${names[i + 1] ?? `part ${i + 1}`}`, sel);
    });
    parts.push(el('form', {
      class: 'controls', id: 'repartition', 'aria-label': 'repartition',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const cuts = selects.map((l) => Number(l.querySelector('select')!.value));
        if (cuts.some((c, i) => i > 0 && c <= cuts[i - 1]!)) { this.message = { text: 'Cuts must increase from the first tier to the last.', bad: true }; this.controlsKey = ''; this.renderControls(); return; }
        void this.call('/ui/api/partition', 'POST', { cuts }, `Switched to cuts ${cuts.join(',')}`);
      },
    }, ...selects, el('button', { type: 'submit', disabled: off || p.cuts.length === 0 }, 'Repartition')));
    const strat = el('select', { id: 'strategy-choice', disabled: off }, ...h.strategies.map((x) => el('option', { value: x, selected: x === p.strategy }, x)));
    parts.push(el('form', { class: 'controls', id: 'strategy-form', onsubmit: (e: Event) => { e.preventDefault(); void this.call('/ui/api/strategy', 'PUT', { strategy: strat.value }, `Strategy ${strat.value}`); } },
      el('label', { for: 'strategy-choice' }, 'Switching strategy', strat), el('button', { type: 'submit', disabled: off }, 'Set strategy')));
    // A rollout: a new model file (a path on the hosts, as kerf rollout --to takes it), or back.
    const model = el('input', { id: 'rollout-model', type: 'text', placeholder: '/models/new.onnx', disabled: off, spellcheck: 'false' });
    parts.push(el('form', {
      class: 'controls', id: 'rollout-form',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const m = model.value.trim();
        if (!m) { this.message = { text: 'Give the new model file (a path on the hosts) to roll out.', bad: true }; this.controlsKey = ''; this.renderControls(); return; }
        void this.call('/ui/api/rollout', 'POST', { model: m }, `Rolled out ${m}`);
      },
    }, el('label', { for: 'rollout-model' }, 'Roll out a new model (file on the hosts)', model), el('button', { type: 'submit', disabled: off }, 'Start rollout'),
    el('button', { type: 'button', class: 'secondary', disabled: off || !p.previousModel, onclick: () => void this.call('/ui/api/rollout', 'POST', { back: true }, 'Rolled back') },
      p.previousModel ? `Roll back to ${p.previousModel.name}` : 'Roll back')));
    // A plan's ranked placements, read from a file the user picks (nothing leaves the page).
    const file = el('input', { id: 'plan-file', type: 'file', accept: '.json,application/json' });
    file.addEventListener('change', () => void this.loadPlan(file));
    parts.push(el('form', { class: 'controls', onsubmit: (e: Event) => e.preventDefault() }, el('label', { for: 'plan-file' }, 'Ranked placements from a plan file (kerf plan -o plan.json)', file)));
    if (this.plan) {
      const rows = this.plan.slice(0, 20).map((r) => {
        const ok = r.cuts.length === p.cuts.length && r.cuts.every((c) => c !== null && h.model.cuts.some((x) => x.id === c));
        return [r.rank, (r.cuts.join(',') || 'none'), fmtS(r.totalS), fmtS(r.bottleneckS), fmtBytes(r.bytesSent),
          el('button', { type: 'button', class: 'secondary', disabled: off || !ok, title: ok ? '' : 'not servable by this pipeline (other tier count or cut ids)', 'aria-label': `switch to rank ${r.rank}`,
            onclick: () => void this.call('/ui/api/partition', 'POST', { cuts: r.cuts }, `Switched to rank ${r.rank} (cuts ${r.cuts.join(',')})`) }, 'Switch')];
      });
      parts.push(el('div', { class: 'scroll' }, table(['rank', 'cuts', 'latency', 'bottleneck', 'sent', ''], rows, 'ranked placements')));
    }
    if (this.message) parts.push(el('p', { class: `notice${this.message.bad ? ' bad' : ''}`, role: 'status' }, this.message.text));
    const focused = document.activeElement?.id;
    host.replaceChildren(...parts);
    if (focused) document.getElementById(focused)?.focus();
  }

  private async loadPlan(input: HTMLInputElement): Promise<void> {
    const f = input.files?.[0];
    if (!f) return;
    try {
      const doc = JSON.parse(await f.text()) as { schema?: string; ranked?: DRanked[] };
      if (doc.schema !== 'kerf.plan/v1' || !Array.isArray(doc.ranked)) throw new Error(`${f.name} is not a kerf plan (schema kerf.plan/v1)`);
      this.plan = doc.ranked;
      this.message = { text: `${f.name}: ${doc.ranked.length} ranked placements.`, bad: false };
    } catch (e) {
      this.message = { text: (e as Error).message, bad: true };
    }
    this.controlsKey = '';
    this.renderControls();
  }
}

new Dashboard().start();
