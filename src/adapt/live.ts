/**
 * The live controller: monitors fed from every request the gateway answers, a decision every
 * period, and a switch through the gateway's Switcher (its configured strategy) when the
 * decision changes. Unlike the rest of src/adapt it reads the clock and does I/O: it is the
 * glue between the pure decision and the serving runtime.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as http from 'node:http';
import { isKerfError, kerfError } from '../errors.js';
import type { Profile } from '../profile/types.js';
import type { Analysis } from '../graph/cuts.js';
import { enableStallClock } from '../serve/stall.js';
import type { Gateway } from '../serve/gateway.js';
import type { InferResult, Pipeline } from '../serve/pipeline.js';
import type { WarmReport } from '../serve/switch.js';
import { DOWNSTREAM_META_PREFIX, type ProbeRequest, type ProbeResult } from '../serve/worker.js';
import { Decider, chooseLinkCodecs, predictSplitLatency, splitCostModel, withCodecs, type AdaptConditions, type AdaptMode, type Decision, type SplitModel } from './decide.js';
import { systemCodecs } from '../plan/problem.js';
import { codecPairs } from '../plan/codec-cost.js';
import { codecSet } from '../codec/index.js';
import { LiveMonitor, type MonitorSnapshot } from './monitor.js';
import { Calibration } from './calibrate.js';

/** `--adapt`: no controller, bandwidth-only, or load-aware. */
export type AdaptSetting = 'off' | AdaptMode;
export const ADAPT_SETTINGS: readonly AdaptSetting[] = ['off', 'bandwidth', 'load-aware'];

export interface AdaptControllerOptions {
  /** 'off' still runs the monitors (for /v1/conditions) but never switches */
  mode: AdaptSetting;
  /** one profile per tier in chain order (gateway first), same model and blocks */
  profiles: readonly Profile[];
  /** the cost model itself instead of one made from `profiles` (`unprofiledCostModel`: monitors only) */
  costModel?: LiveCostModel;
  /** stage names of the tiers in the response meta (default: the profiles' tier or system names) */
  tierNames?: readonly string[];
  /** per link: believed before transfers arrive, e.g. from the plan or `--links` */
  linkPriors?: { bytesPerS: number; rttS: number }[];
  /** seconds between decisions (default 1) */
  periodS?: number;
  minGain?: number;
  minDwellS?: number;
  /** seconds a better placement must stay better before a switch (default 2; gains ≥ 50 % switch at once) */
  confirmS?: number;
  /** one line per decision that switches (JSON) and per failure */
  log?: (line: string) => void;
  /** load-aware: price each split the controller has run at its own recent measured latency while
   * the conditions that set it hold, else at the model × its measured ÷ predicted ratio
   * (`Calibration.factor`; default true) */
  calibrate?: boolean;
  /** load-aware: probe a tier whose own segment is too small to tell its load (default true): see `LOAD_PROBE_AFTER_S` */
  loadProbe?: boolean;
  /** hot-swap: splits (cut ids) to load the chunks of on every tier once the controller runs (default:
   * `warmCandidates` of the model around the priors, ≤ 20 splits; [] or false: none) */
  warm?: readonly (readonly number[])[] | false;
  /** codecs the links may switch to, as `--codecs` takes them (`lossless`, `lossy`, a list; default
   * none: the links keep the codecs they have). Priced from the profiles' codec measurements
   * (`kerf profile --codecs`) as the planner prices them; a codec change is a switch. */
  codecs?: string;
}

/** Warming the likely splits' chunks, as `GET /v1/conditions` reports it. */
export interface WarmStatus {
  /** 'waiting': for the gateway to switch with hot-swap; 'off': nothing to warm (mode off, no candidates) */
  state: 'off' | 'waiting' | 'running' | 'done' | 'failed';
  /** cut ids of the splits warmed (or to warm) */
  candidates: number[][];
  report?: WarmReport;
  error?: string;
}

/** A decision that led to a switch (or tried to), as logged and served. */
export interface AdaptEvent extends Decision {
  at: string;
  fromCuts: number[];
  toCuts: number[];
  /** the links' codecs before and after, when the controller prices codecs */
  fromCodecs?: string[];
  toCodecs?: string[];
  /** the switch's outcome: its downtime, preparation and duration, or the error */
  switchReport?: { downtimeMs: number; prepareMs: number; durationMs: number; strategy: string; prepared: string; rerouted?: number };
  error?: string;
}

const nowS = (): number => performance.now() / 1000;

/**
 * The live controller's minimum predicted gain (the pure Decider's default is 10 %). Measured on
 * this machine (resnet18, device 0.25 core, docs/adapt.md), the cost model's prediction of an
 * unsaturated split is off by up to 15–25 % from its measured mean latency, so a predicted gain
 * below ~20 % is as likely noise as gain: at 10 % the controller wandered between device-heavy
 * splits on predicted gains of 11–25 % that did not hold.
 */
export const LIVE_MIN_GAIN = 0.2;

/**
 * A tier none of whose runs has told its load for this long (seconds) — its segment is one tiny
 * block, e.g. the edge after the controller moved work off it — is probed: it runs a range of
 * the model it holds loaded (10–50 ms as profiled, the cheapest first) on random inputs, in turn
 * with its requests, at most once per `LOAD_PROBE_EVERY_S`. Without it a load that ends is never
 * seen, and a split that would use the tier again is priced at its last, loaded, factor.
 */
export const LOAD_PROBE_AFTER_S = 2;
export const LOAD_PROBE_EVERY_S = 2;
const LOAD_PROBE_RANGE_S: [number, number] = [0.01, 0.05];
/** after a probe finds nothing loaded to run, wait this long before asking again (and ask again
 * as soon as warming the likely splits has loaded their chunks) */
const LOAD_PROBE_MISS_S = 10;

/** At most this many ranges go in one probe request. */
export const LOAD_PROBE_MAX_RANGES = 200;

/**
 * Ranges of the model a probe of tier `j` may run (profiled seconds within `LOAD_PROBE_RANGE_S`,
 * at most `LOAD_PROBE_MAX_RANGES`): first tier j's segments of the splits in `likely` (the splits
 * warmed and the one served: the tier holds those loaded), then the rest cheapest first. Without
 * that order a warmed segment — often the longest range in the band — could fall past the cap
 * (squeezenet's edge in test/adapt/live.test.ts: 180 ranges in the band on one profile, over 200 on
 * one taken beside two CPU burners, its warmed segment the most expensive of them), and then no
 * probe ever found anything loaded to run.
 */
export function probeRanges(model: SplitModel, j: number, cutOf: readonly number[], likely: readonly (readonly number[])[] = []): { cuts: [number | null, number | null]; profiledS: number }[] {
  const n = model.blocks, P = model.prefix[j]!, over = model.overheadS?.[j] ?? 0, k = model.tiers.length;
  const out: { cuts: [number | null, number | null]; profiledS: number }[] = [];
  const first = new Set(likely.filter((c) => c.length === k - 1).map((c) => `${j === 0 ? null : c[j - 1]},${j === k - 1 ? null : c[j]}`));
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b <= n; b++) {
      const s = P[b]! - P[a]! + over;
      if (s < LOAD_PROBE_RANGE_S[0] || s > LOAD_PROBE_RANGE_S[1]) continue;
      const start = a === 0 ? null : cutOf[a]!, end = b === n ? null : cutOf[b]!;
      if ((start !== null && start < 0) || (end !== null && end < 0)) continue;
      out.push({ cuts: [start, end], profiledS: s });
    }
  }
  const isFirst = (x: { cuts: [number | null, number | null] }): number => (first.has(`${x.cuts[0]},${x.cuts[1]}`) ? 0 : 1);
  return out.sort((x, y) => isFirst(x) - isFirst(y) || x.profiledS - y.profiledS).slice(0, LOAD_PROBE_MAX_RANGES);
}

/** A cost model with the map between its boundaries and the model's cut ids. */
export interface LiveCostModel { model: SplitModel; cutOf: number[]; boundaryOf: Map<number, number>; outputBytes: number }

/**
 * A cost model without times, for the monitors alone: every cut point of the model is a
 * boundary, with the bytes that cross it, and every block costs 0 s on every tier. Links are
 * estimated from those bytes and the tiers' timings as with profiles; tier loads are not (no
 * run is long enough to tell against 0 s), and nothing is decided. What a gateway started
 * without profiles serves at GET /v1/conditions.
 */
export function unprofiledCostModel(analysis: Analysis, names: readonly string[]): LiveCostModel {
  const cuts = [...analysis.cuts].sort((a, b) => a.id - b.id);
  const n = cuts.length + 1;
  const cutOf = [-1, ...cuts.map((c) => c.id), -1];
  const boundaryOf = new Map(cuts.map((c, i) => [c.id, i + 1] as const));
  const bytes = [analysis.totals.inputBytes, ...cuts.map((c) => c.bytes), analysis.totals.outputBytes];
  const allowed = cutOf.map((id, b) => id >= 0 && b > 0 && b < n);
  const model = splitCostModel(names.map((name) => ({ name, blockS: new Array<number>(n).fill(0) })), bytes, allowed);
  return { model, cutOf, boundaryOf, outputBytes: analysis.totals.outputBytes };
}

/**
 * A cost model whose boundaries are the profile's block ends; boundary b ↔ cut id of block b−1.
 * `codecs` (a `--codecs` value): the links may use those of them the profiles measured.
 */
export function liveCostModel(profiles: readonly Profile[], opts: { codecs?: string } = {}): LiveCostModel {
  const first = profiles[0];
  if (!first || profiles.length < 2) throw kerfError('KERF_ERR_PROFILE', `adapt needs one profile per tier (at least two), got ${profiles.length}`);
  const n = first.blocks.length;
  for (const p of profiles) {
    if (p.blocks.length !== n) throw kerfError('KERF_ERR_PROFILE', `profile of '${p.system.name}' has ${p.blocks.length} blocks, '${first.system.name}' has ${n}`);
    p.blocks.forEach((b, i) => {
      if (b.cutId !== first.blocks[i]!.cutId) throw kerfError('KERF_ERR_PROFILE', `profile of '${p.system.name}': block ${i} ends at cut ${b.cutId}, '${first.system.name}' says ${first.blocks[i]!.cutId}`);
    });
  }
  const cutOf: number[] = [-1];
  const boundaryOf = new Map<number, number>();
  const allowed: boolean[] = [false];
  for (let b = 1; b <= n; b++) {
    const id = b < n ? first.blocks[b - 1]!.cutId : undefined;
    cutOf.push(id ?? -1);
    if (id !== undefined) boundaryOf.set(id, b);
    // Every tier must run at least one block (a switch keeps the tiers): no boundary at 0 or n.
    allowed.push(id !== undefined && b < n);
  }
  const bytes = [first.model.inputBytes ?? 0, ...first.blocks.map((b) => b.outputBytes)];
  let model = splitCostModel(profiles.map((p, j) => ({
    name: p.system.tier ?? p.system.name ?? `tier${j}`, blockS: p.blocks.map((b) => b.latency.median), overheadS: p.callOverheadS ?? 0,
  })), bytes, allowed);
  const allowedCodecs = new Set(opts.codecs === undefined ? [] : codecSet(opts.codecs, 'adapt codecs').map((c) => c.name).filter((c) => c !== 'none'));
  if (allowedCodecs.size) {
    const tiers = profiles.map((p) => systemCodecs(p, n, 1));
    const pairs = tiers.slice(1).map((t, j) => codecPairs(tiers[j], t, allowedCodecs));
    if (pairs.every((p) => p.length === 0)) {
      throw kerfError('KERF_ERR_PROFILE', `adapt codecs '${opts.codecs}': no link has a codec of that set measured on both its tiers ` +
        `(measured: ${profiles.map((p, j) => `${p.system.name}: ${tiers[j]?.names.join(',') || 'none'}`).join('; ')}); profile with kerf profile --codecs ${opts.codecs}`);
    }
    model = withCodecs(model, { tiers, pairs });
  }
  return { model, cutOf, boundaryOf, outputBytes: first.blocks[n - 1]!.outputBytes };
}

/** The best placement in which every tier runs at least one block (boundaries strictly increasing). */
export function bestFeasible(model: SplitModel, c: AdaptConditions): { boundaries: number[]; latencyS: number } {
  const k = model.tiers.length, n = model.blocks;
  let best: number[] = [], bestS = Infinity;
  const cur: number[] = [];
  const walk = (j: number, from: number): void => {
    if (j === k - 1) {
      const s = predictSplitLatency(model, c, cur);
      if (s < bestS) { bestS = s; best = [...cur]; }
      return;
    }
    for (let b = from; b <= n - (k - 1 - j); b++) {
      if (!model.allowed[b]) continue;
      cur.push(b);
      walk(j + 1, b + 1);
      cur.pop();
    }
  };
  walk(0, 1);
  if (!Number.isFinite(bestS)) throw kerfError('KERF_ERR_PLAN', `no placement gives each of ${k} tiers a block of ${n}`);
  return { boundaries: best, latencyS: bestS };
}

/** Options of `warmCandidates`. */
export interface WarmGridOptions {
  /** multipliers of the first link's bandwidth (default 1/8 … 8 in powers of two) */
  bandwidth?: readonly number[];
  /** multipliers of each non-first tier's load factor (default 1, 2, 4, 8, 16) */
  load?: readonly number[];
  /** request rates per second (default 0 and 3) */
  rates?: readonly number[];
  /** at most this many splits (default 20) */
  max?: number;
  /** leave this split out (the one in force: it is loaded already) */
  exclude?: readonly number[];
}

/**
 * Splits (boundaries) the controller is likely to switch to: the best placement keeping every
 * tier (`bestFeasible`, queueing included) over a grid of conditions around `base` — the first
 * link's bandwidth scaled 1/8 … 8, each non-first tier's load 1 … 16 (load-aware only), a few
 * request rates — the splits of the conditions nearest the base first (distance: Σ |log2| of
 * the multipliers), then the most often chosen; at most `max`. Pure: no clock, no I/O.
 */
export function warmCandidates(model: SplitModel, base: AdaptConditions, mode: AdaptMode, opts: WarmGridOptions = {}): number[][] {
  const bw = opts.bandwidth ?? [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8];
  const loadAware = mode === 'load-aware';
  const loads = loadAware ? (opts.load ?? [1, 2, 4, 8, 16]) : [1];
  const rates = loadAware ? (opts.rates ?? [0, 3]) : [0];
  const k = model.tiers.length;
  // Load combinations of the non-first tiers: all of them up to 3 such tiers, else one tier at a time.
  const combos: number[][] = [];
  if (k - 1 <= 3) {
    const walk = (acc: number[]): void => { if (acc.length === k - 1) { combos.push(acc); return; } for (const f of loads) walk([...acc, f]); };
    walk([]);
  } else {
    combos.push(Array(k - 1).fill(1));
    for (let j = 0; j < k - 1; j++) for (const f of loads) if (f !== 1) combos.push(Array.from({ length: k - 1 }, (_, i) => (i === j ? f : 1)));
  }
  const count = new Map<string, { b: number[]; n: number; dist: number }>();
  for (const m of bw) {
    for (const combo of combos) {
      // How far the condition is from the base (a step of 2× in any input counts 1).
      const dist = Math.abs(Math.log2(m)) + combo.reduce((a, f) => a + Math.abs(Math.log2(f)), 0);
      for (const ratePerS of rates) {
        const c: AdaptConditions = {
          links: base.links.map((l, j) => (j === 0 ? { ...l, bytesPerS: l.bytesPerS * m } : l)),
          tiers: base.tiers.map((t, j) => (j === 0 ? t : { ...t, factor: t.factor * combo[j - 1]! })),
          ratePerS,
        };
        const b = bestFeasible(model, c).boundaries;
        const key = b.join(',');
        const e = count.get(key);
        if (e) { e.n++; e.dist = Math.min(e.dist, dist); } else count.set(key, { b, n: 1, dist });
      }
    }
  }
  const skip = opts.exclude ? opts.exclude.join(',') : null;
  return [...count.entries()].filter(([key]) => key !== skip)
    .sort((x, y) => x[1].dist - y[1].dist || y[1].n - x[1].n || (x[0] < y[0] ? -1 : 1))
    .slice(0, opts.max ?? 20).map(([, e]) => e.b);
}

const strictly = (b: readonly number[]): boolean => b.every((x, i) => i === 0 || x > b[i - 1]!);
/** The request codec of a hop codec (`C` of `C/REPLY`): what the profiles price. */
const requestCodec = (hop: string): string => hop.split('/')[0]!;
const sameList = <T>(a: readonly T[], b: readonly T[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Attach with `AdaptController.attach(gateway, opts)`: it observes every answered request,
 * decides every `periodS`, switches through `gateway.switcher`, and serves `GET /v1/conditions`
 * and its gauges in the gateway's /metrics. `close()` stops the timer (the gateway calls it).
 */
export class AdaptController {
  readonly monitor: LiveMonitor;
  readonly decider: Decider | null;
  readonly model: SplitModel;
  readonly events: AdaptEvent[] = [];
  private last: Decision | null = null;
  private readonly cutOf: number[];
  private readonly boundaryOf: Map<number, number>;
  private readonly names: readonly string[];
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private unmapped = new Set<string>();
  /** measured ÷ predicted latency per split that ran (load-aware), null when off */
  readonly calibration: Calibration | null;
  /** requests of the split in force that arrived after it settled, since the last tick */
  private settled = { sumS: 0, n: 0 };
  /** requests arriving before this (seconds, monotonic) met the previous split's backlog */
  private settledAfterS = -Infinity;
  /** the event loop's utilisation and the requests observed at the last tick (the gateway's own work) */
  private lastElu: { elu: ReturnType<typeof performance.eventLoopUtilization>; requests: number } | null = null;
  /** when the monitors last detected a level shift (seconds, monotonic) */
  private shiftAtS = -Infinity;
  private readonly log: (line: string) => void;
  decisions = 0;
  /** per tier: the ranges a load probe may run, a probe in flight, when the next may go, the last result */
  private readonly probes: { ranges: ReturnType<typeof probeRanges>; busy: boolean; nextAtS: number; last: ProbeResult & { ratio?: number; atS: number } | null; sent: number }[];
  /** warming the likely splits' chunks (hot-swap) */
  readonly warm: WarmStatus;

  private constructor(readonly gateway: Gateway, readonly opts: AdaptControllerOptions) {
    if (!ADAPT_SETTINGS.includes(opts.mode)) throw kerfError('KERF_ERR_USAGE', `--adapt '${String(opts.mode)}': expected one of ${ADAPT_SETTINGS.join(', ')}`);
    const m = opts.costModel ?? liveCostModel(opts.profiles, opts.codecs !== undefined ? { codecs: opts.codecs } : {});
    this.model = m.model;
    this.cutOf = m.cutOf;
    this.boundaryOf = m.boundaryOf;
    this.names = opts.tierNames ?? m.model.tiers;
    if (this.names.length !== m.model.tiers.length) throw kerfError('KERF_ERR_USAGE', `adapt: ${this.names.length} tier names for ${m.model.tiers.length} profiles`);
    const k = m.model.tiers.length;
    if (gateway.switcher && gateway.switcher.cuts.length !== k - 1) {
      throw kerfError('KERF_ERR_PROFILE', `adapt: ${k} tier profiles, but the pipeline has ${gateway.switcher.cuts.length + 1} tiers`);
    }
    this.log = opts.log ?? (() => {});
    this.monitor = new LiveMonitor(m.model, { linkPriors: opts.linkPriors ?? [], outputBytes: m.outputBytes });
    const initial = this.boundaries(gateway.pipeline.cuts);
    this.decider = opts.mode === 'off' ? null : new Decider(m.model, {
      mode: opts.mode, minGain: opts.minGain ?? LIVE_MIN_GAIN, minDwellS: opts.minDwellS ?? 3, confirmS: opts.confirmS ?? 2,
    }, initial ? { boundaries: initial, atS: nowS(), codecs: this.linkCodecs(gateway.switcher.codecs) } : undefined);
    let warm: number[][] = [];
    if (this.decider && opts.warm !== false) {
      warm = opts.warm ? opts.warm.map((c) => [...c])
        : warmCandidates(m.model, this.monitor.conditions(nowS()), opts.mode as AdaptMode, initial ? { exclude: initial } : {}).map((b) => this.cuts(b));
    }
    this.warm = { state: warm.length ? 'waiting' : 'off', candidates: warm };
    this.calibration = opts.mode === 'load-aware' && opts.calibrate !== false ? new Calibration() : null;
    this.probes = m.model.tiers.map((_, j) => ({
      ranges: j > 0 && opts.mode === 'load-aware' && opts.loadProbe !== false ? probeRanges(m.model, j, m.cutOf, [...warm, [...gateway.pipeline.cuts]]) : [], busy: false, nextAtS: -Infinity, last: null, sent: 0,
    }));
  }

  /**
   * Probe each tier past the first whose runs have not told its load for `LOAD_PROBE_AFTER_S`
   * (see there). Not awaited: the result feeds the tier's load estimate when it comes, and a
   * level shift it reveals is decided on at once.
   */
  private probeLoads(at: number): void {
    const p = this.gateway.pipeline;
    if (!p.next || !p.ready) return;
    const next = p.next;
    this.probes.forEach((pr, j) => {
      if (!pr.ranges.length || pr.busy || at < pr.nextAtS) return;
      if (at - this.monitor.loads[j]!.lastUsableAtS < LOAD_PROBE_AFTER_S) return;
      pr.busy = true;
      pr.nextAtS = at + LOAD_PROBE_EVERY_S;
      pr.sent++;
      void (async () => {
        try {
          const buf = await next.control('probe', JSON.stringify({ tier: this.names[j], ranges: pr.ranges.map((r) => r.cuts) } satisfies ProbeRequest), { timeoutMs: 10_000 });
          const r = JSON.parse(new TextDecoder().decode(buf)) as ProbeResult;
          const t = nowS();
          const range = typeof r.seconds === 'number' ? pr.ranges.find((x) => x.cuts[0] === r.start && x.cuts[1] === r.end) : undefined;
          if (!range || typeof r.seconds !== 'number') {
            pr.last = { ...r, atS: t };
            pr.nextAtS = t + LOAD_PROBE_MISS_S;
            return;
          }
          pr.last = { ...r, ratio: r.seconds / range.profiledS, atS: t };
          if (this.monitor.observeLoadProbe(j, r.seconds, range.profiledS, t)) this.shifted(t);
        } catch (e) {
          pr.last = { tier: this.names[j]!, none: `probe failed: ${(e as Error)?.message ?? String(e)}`, atS: nowS() };
        } finally {
          pr.busy = false;
        }
      })();
    });
  }

  /**
   * Hot-swap only: load the chunks of the likely splits on every tier, in the background, so
   * that a switch to any of them composes loaded chunks instead of loading under load. Started
   * by the first tick that finds the gateway on hot-swap; decisions wait while it runs (the
   * switcher is busy), requests do not.
   */
  private startWarm(): void {
    if (this.warm.state !== 'waiting' || this.gateway.switcher.strategy !== 'hot-swap') return;
    this.warm.state = 'running';
    // Least likely first: should the chunk cache overflow, its LRU then drops those, not the likeliest.
    this.gateway.switcher.warm([...this.warm.candidates].reverse()).then((r) => {
      this.warm.state = 'done';
      this.warm.report = r;
      // A probe that found nothing loaded before the chunks were may find them now.
      for (const p of this.probes) if (p.last?.none !== undefined) p.nextAtS = -Infinity;
      this.log(JSON.stringify({ event: 'adapt-warm', candidates: r.candidates, durationMs: Math.round(r.durationMs), tiers: r.tiers }));
    }, (e: unknown) => {
      this.warm.state = 'failed';
      this.warm.error = isKerfError(e) ? `${e.code}: ${e.message}` : String(e);
      this.log(`adapt: warming ${this.warm.candidates.length} splits failed: ${this.warm.error}`);
    });
  }

  static attach(gateway: Gateway, opts: AdaptControllerOptions): AdaptController {
    const c = new AdaptController(gateway, opts);
    // the gateway's CPU waits during round trips: link samples taken while it could not run weigh less
    enableStallClock();
    gateway.observers.push((p, r) => c.onRequest(p, r));
    gateway.mount('/v1/conditions', (req, res) => c.route(req, res));
    gateway.panels.set('conditions', () => c.conditions());
    gateway.onClose(async () => c.close());
    const r = gateway.registry;
    const link = r.gauge('kerf_adapt_link_bytes_per_second', 'Estimated link throughput, bytes/s.');
    const rtt = r.gauge('kerf_adapt_link_rtt_seconds', 'Estimated link round-trip time, seconds.');
    const lf = r.gauge('kerf_adapt_tier_load_factor', 'Observed ÷ profiled execution time per tier.');
    const q = r.gauge('kerf_adapt_tier_queue_seconds', 'Median queueing delay per tier, seconds.');
    c.model.tiers.forEach((_, j) => {
      lf.set(() => c.monitor.loads[j]!.estimate(nowS()).factor, { tier: c.names[j]! });
      q.set(() => c.monitor.loads[j]!.estimate(nowS()).queueS, { tier: c.names[j]! });
      if (j < c.model.tiers.length - 1) {
        const l = { link: `${c.names[j]}-${c.names[j + 1]}` };
        link.set(() => c.monitor.links[j]!.estimate(nowS()).bytesPerS, l);
        rtt.set(() => c.monitor.links[j]!.estimate(nowS()).rttS, l);
      }
    });
    r.gauge('kerf_adapt_request_rate', 'Estimated request arrival rate, per second.').set(() => c.monitor.arrivals.estimate(nowS()));
    r.gauge('kerf_adapt_arrival_scv', 'Squared coefficient of variation of the gaps between arrivals (1: Poisson, 0: periodic).').set(() => c.monitor.arrivals.scv(nowS()));
    r.gauge('kerf_adapt_decisions_total', 'Decisions taken by the adapt controller.').set(() => c.decisions);
    r.gauge('kerf_adapt_switches_total', 'Switches the adapt controller asked for.').set(() => c.events.length);
    const probes = r.gauge('kerf_adapt_load_probes_total', 'Load probes sent to a tier whose own runs did not tell its load.');
    c.probes.forEach((p, j) => { if (p.ranges.length) probes.set(() => p.sent, { tier: c.names[j]! }); });
    const period = (opts.periodS ?? 1) * 1000;
    c.timer = setInterval(() => void c.tick(), period);
    c.timer.unref();
    c.startWarm();
    return c;
  }

  /** Boundaries of a split given as cut ids, or null when a cut is not a profiled block end. */
  boundaries(cuts: readonly number[]): number[] | null {
    const b = cuts.map((id) => this.boundaryOf.get(id));
    return b.every((x) => x !== undefined) ? (b as number[]) : null;
  }

  cuts(boundaries: readonly number[]): number[] { return boundaries.map((b) => this.cutOf[b]!); }

  /** The links' codecs as the decision prices them (request codecs) from the switcher's hop codecs. */
  linkCodecs(hops: readonly string[]): string[] { return hops.map(requestCodec); }

  /** whether the workers' own codecs have been asked for (once, when codecs are priced) */
  private discovered = false;

  /** The decider reasons in block boundaries (`[3,9]`); the log line speaks cut ids throughout,
   * as its from/to do, so each bracketed boundary list becomes `cuts 17,43`. */
  reasonInCuts(reason: string): string {
    return reason.replace(/\[(\d+(?:,\d+)*)?\]/g, (all, list: string | undefined) => {
      const b = list ? list.split(',').map(Number) : [];
      return b.every((x) => this.cutOf[x] !== undefined) ? `cuts ${this.cuts(b).join(',') || 'none'}` : all;
    });
  }

  private onRequest(p: Pipeline, r: InferResult): void {
    try { this.observeRequest(p, r); } catch (e) { this.log(`adapt: observing a request failed: ${(e as Error).message}`); }
  }

  private observeRequest(p: Pipeline, r: InferResult): void {
    const b = this.boundaries(p.cuts);
    if (!b) {
      const key = p.cuts.join(',');
      if (!this.unmapped.has(key)) { this.unmapped.add(key); this.log(`adapt: cuts ${key} are not block ends of the profiles; requests on them are not observed`); }
      return;
    }
    const tiers = this.names.map((name, j) => {
      if (j === 0) return { queueS: r.timings.queueS, computeS: p.local ? r.timings.computeS : NaN };
      const s = r.stages[name];
      const d = r.meta[`${DOWNSTREAM_META_PREFIX}${name}`];
      return { queueS: s ? s[0] : NaN, computeS: s ? s[1] : NaN, ...(d !== undefined ? { downS: Number(d) } : {}) };
    });
    const t = r.timings;
    const latencyS = [t.queueS, t.computeS, t.remoteS].reduce((a, x) => a + (Number.isFinite(x) ? x : 0), 0);
    // Requests of the split in force that met no backlog of the one before: its own latency.
    const cur = this.decider?.current;
    if (this.calibration && cur && b.every((x, i) => x === cur[i]) && nowS() - latencyS >= this.settledAfterS) {
      this.settled.sumS += latencyS;
      this.settled.n++;
    }
    // A level shift (load or bandwidth stepped) is decided on at once, not at the next period.
    const codecs = this.gateway.switcher.codecsOf(p);
    if (this.monitor.observe({ atS: nowS(), boundaries: b, tiers, remoteS: t.remoteS, remoteStallS: t.remoteStallS, latencyS, ...(codecs.some((x) => x !== 'none') ? { codecs: codecs.map(requestCodec) } : {}) })) this.shifted(nowS(), true);
  }

  /**
   * The monitors detected a level shift at `atS`: decide at once (`now`: in this call, else just
   * after the caller returns), and stop measuring the split in force on requests that arrived before
   * it — they ran, at least in part, under the conditions that no longer hold, and would be
   * recorded against the new ones (a split slowed by a load step then read as fast as before it).
   */
  private shifted(atS: number, now = false): void {
    this.shiftAtS = atS;
    this.settled = { sumS: 0, n: 0 };
    this.settledAfterS = Math.max(this.settledAfterS, atS);
    if (!this.timer) return;
    if (now) void this.tick(); else setImmediate(() => void this.tick());
  }

  /** The monitors and the last decision, as `GET /v1/conditions` answers. */
  conditions(): {
    mode: AdaptSetting; profiled: boolean; cuts: number[]; codecs: string[]; monitor: MonitorSnapshot; lastDecision: Decision | null; events: AdaptEvent[]; decisions: number; warm: WarmStatus;
    calibration: { cuts: number[]; ratio: number; requests: number; lastMeasuredS: number }[];
    probes: { tier: string; sent: number; last: (ProbeResult & { ratio?: number; ageS: number }) | null }[];
  } {
    const at = nowS();
    const calibration = (this.calibration?.snapshot(at) ?? []).map((c) => ({ cuts: this.cuts(c.boundaries), ratio: c.ratio, requests: c.requests, lastMeasuredS: c.lastMeasuredS }));
    const probes = this.probes.flatMap((p, j) => (p.ranges.length ? [{
      tier: this.names[j]!, sent: p.sent, last: p.last ? (({ atS, ...r }) => ({ ...r, ageS: at - atS }))(p.last) : null,
    }] : []));
    return { mode: this.opts.mode, profiled: this.opts.costModel === undefined, cuts: [...this.gateway.pipeline.cuts], codecs: this.gateway.switcher.codecs, monitor: this.monitor.snapshot(at), lastDecision: this.last, events: this.events.slice(-50), decisions: this.decisions, warm: this.warm, calibration, probes };
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ok = req.method === 'GET' || req.method === 'HEAD';
    const text = JSON.stringify(ok ? this.conditions() : { error: `${req.method} not allowed on /v1/conditions (GET)`, code: 'KERF_ERR_USAGE' });
    res.writeHead(ok ? 200 : 405, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** One period: probe an idle first hop, decide, and switch if the decision says so. */
  async tick(): Promise<Decision | null> {
    if (this.busy) return null;
    this.busy = true;
    try {
      this.startWarm();
      // The gateway's own busy time per request (the device's work no profile holds).
      const elu = performance.eventLoopUtilization();
      if (this.lastElu) {
        const d = performance.eventLoopUtilization(elu, this.lastElu.elu);
        this.monitor.observeFront(d.active / 1000, this.monitor.requests - this.lastElu.requests, nowS());
      }
      this.lastElu = { elu, requests: this.monitor.requests };
      this.probeLoads(nowS());
      const p = this.gateway.pipeline;
      if (p.next && p.ready && this.monitor.needsProbe(nowS())) {
        const t0 = performance.now();
        try {
          await p.next.control('ready', '', { timeoutMs: 1000 });
          this.monitor.observeProbe((performance.now() - t0) / 1000, nowS());
        } catch { /* a failed probe says nothing about the rate */ }
      }
      const d = this.decider;
      if (!d || this.gateway.switcher.status().switching) return null;
      if (this.model.codecs && !this.discovered) {
        // The workers' links' codecs (the pipeline may have started with `--next-codec`).
        this.discovered = true;
        try { await this.gateway.switcher.discover(); } catch (e) { this.log(`adapt: finding the workers' codecs failed: ${(e as Error).message}`); }
      }
      const at = nowS();
      const cur = this.boundaries(this.gateway.switcher.cuts);
      const curCodecs = this.linkCodecs(this.gateway.switcher.codecs);
      if (cur && (!d.current || !sameList(cur, d.current) || !sameList(curCodecs, d.currentCodecs))) { d.adopt(cur, at, curCodecs); this.settle(at); } // switched by someone else
      const cond = this.monitor.conditions(at);
      const cal = this.calibration;
      // The model without queueing: what tells whether a split's measured latency still holds.
      const unqueued: AdaptConditions = { ...cond, ratePerS: 0 };
      if (cal && d.current && this.settled.n > 0) {
        cal.add(d.current, this.settled.sumS / this.settled.n, predictSplitLatency(this.model, cond, d.current), this.settled.n, at,
          predictSplitLatency(this.model, unqueued, d.current));
      }
      this.settled = { sumS: 0, n: 0 };
      const calibrate = cal
        ? (b: readonly number[]) => cal.factor(b, predictSplitLatency(this.model, cond, b), predictSplitLatency(this.model, unqueued, b), at)
        : undefined;
      // Within the confirmation time after a detected level shift, the shift was the confirmation.
      let dec = d.decide(cond, at, { shifted: at - this.shiftAtS <= (this.opts.confirmS ?? 2), ...(calibrate ? { calibrate } : {}) });
      this.decisions++;
      if (dec.switch && dec.current && !strictly(dec.chosen)) {
        // The search may leave a tier empty, which a switch cannot do: take the best placement
        // that keeps every tier, under the same inputs and the same minimum gain.
        const f = bestFeasible(this.model, dec.inputs);
        const fCodecs = chooseLinkCodecs(this.model, dec.inputs, f.boundaries);
        if (calibrate) f.latencyS *= calibrate(f.boundaries);
        const gain = (dec.predictedCurrentS - f.latencyS) / dec.predictedCurrentS;
        const same = sameList(f.boundaries, dec.current) && sameList(fCodecs, dec.currentCodecs!);
        const min = this.opts.minGain ?? LIVE_MIN_GAIN;
        const go = !same && gain >= min;
        d.adopt(go ? f.boundaries : dec.current, at, go ? fCodecs : dec.currentCodecs!);
        const codecNote = this.model.codecs && fCodecs.some((c) => c !== 'none') ? ` ${fCodecs.join(',')}` : '';
        dec = { ...dec, switch: go, chosen: go ? f.boundaries : dec.current, chosenCodecs: go ? fCodecs : dec.currentCodecs!, predictedBestS: f.latencyS, gain,
          reason: go ? `${dec.reason}; keeping every tier: → [${f.boundaries.join(',')}]${codecNote} gain ${(gain * 100).toFixed(1)}%`
            : `best [${dec.best.join(',')}] leaves a tier empty; best keeping every tier gains ${(gain * 100).toFixed(1)}% < ${(min * 100).toFixed(1)}%` };
      }
      this.last = dec;
      if (!dec.switch || !dec.current) return dec;
      const recode = this.model.codecs !== undefined && !sameList(dec.chosenCodecs, dec.currentCodecs ?? dec.chosenCodecs);
      const ev: AdaptEvent = {
        ...dec, at: new Date().toISOString(), fromCuts: this.cuts(dec.current), toCuts: this.cuts(dec.chosen),
        ...(this.model.codecs ? { fromCodecs: [...(dec.currentCodecs ?? [])], toCodecs: [...dec.chosenCodecs] } : {}),
      };
      this.events.push(ev);
      if (this.events.length > 200) this.events.shift();
      try {
        // Leaving a saturated split (a gain of half or more): its backlog would hold the requests
        // in flight there for seconds, so they start over on the new split.
        const rep = await this.gateway.switcher.partition({ cuts: ev.toCuts, ...(dec.gain >= 0.5 ? { reroute: true } : {}), ...(recode ? { codecs: ev.toCodecs! } : {}) });
        ev.switchReport = { downtimeMs: rep.downtimeMs, prepareMs: rep.prepareMs, durationMs: rep.durationMs, strategy: rep.strategy, prepared: rep.prepared, ...(rep.rerouted !== undefined ? { rerouted: rep.rerouted } : {}) };
      } catch (e) {
        ev.error = isKerfError(e) ? `${e.code}: ${e.message}` : String(e);
        d.adopt(dec.current, nowS(), dec.currentCodecs ?? undefined);
      }
      this.settle(nowS());
      this.log(JSON.stringify({ event: 'adapt', mode: dec.mode, from: ev.fromCuts, to: ev.toCuts, ...(ev.toCodecs ? { fromCodecs: ev.fromCodecs, toCodecs: ev.toCodecs } : {}), reason: this.reasonInCuts(dec.reason), gain: +dec.gain.toFixed(4),
        predictedCurrentS: +dec.predictedCurrentS.toFixed(5), predictedBestS: +dec.predictedBestS.toFixed(5), inputs: dec.inputs, ...(ev.switchReport ? { switch: ev.switchReport } : {}), ...(ev.error ? { error: ev.error } : {}) }));
      return dec;
    } finally {
      this.busy = false;
    }
  }

  /** A new split is in force from `atS`: requests arriving within the next second may still
   * queue behind the old split's backlog, so they do not measure it. */
  private settle(atS: number): void {
    this.settledAfterS = atS + 1;
    this.settled = { sumS: 0, n: 0 };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * Profiles for the tiers `names` (in that order) from `dir`, the folder `kerf plan --profiles`
 * takes: files `<model>.<system>.profile.json`, each naming its tier in `system.tier`. A tier
 * named as `kerf up` names a plan's tiers, `tier(system)`, takes the profile of that system on
 * that tier; a plain name takes the model's one profile on that tier, or of that system. A file
 * `<name>.profile.json` (the older layout) is still read. Errors name the tier and what is there.
 */
export async function loadTierProfiles(dir: string, names: readonly string[], model?: string): Promise<Profile[]> {
  let files: string[];
  try { files = (await readdir(dir)).filter((f) => f.endsWith('.profile.json')).sort(); } catch (e) {
    throw kerfError('KERF_ERR_USAGE', `--profiles ${dir}: cannot read the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const read = async (f: string): Promise<Profile> => {
    const file = join(dir, f);
    let p: Profile;
    try { p = JSON.parse(await readFile(file, 'utf8')) as Profile; } catch (e) { throw kerfError('KERF_ERR_PROFILE', `${file}: not JSON (${(e as Error).message})`); }
    if (p?.schema !== 'kerf.profile/v1' || !Array.isArray(p.blocks)) throw kerfError('KERF_ERR_PROFILE', `${file}: not a kerf.profile/v1 document`);
    return p;
  };
  const all = await Promise.all(files.map(async (f) => ({ f, p: await read(f) })));
  // The model's profiles; when none is of that name (a gateway serving it under another), all.
  const named = all.filter(({ p }) => model === undefined || p.model?.name?.toLowerCase() === model.toLowerCase());
  const ofModel = named.length ? named : all;
  const have = () => ofModel.map(({ f, p }) => `${f} (${p.system?.tier ?? 'no tier'} '${p.system?.name}')`).join(', ') || 'none';
  return names.map((name) => {
    const legacy = all.find(({ f }) => f === `${name}.profile.json`);
    const m = /^(device|edge|cloud)\((.+)\)$/.exec(name);
    const hits = m
      ? ofModel.filter(({ p }) => p.system?.tier === m[1] && p.system?.name === m[2])
      : ofModel.filter(({ p }) => p.system?.tier === name || p.system?.name === name);
    if (hits.length === 1) return hits[0]!.p;
    if (hits.length === 0 && legacy) return legacy.p;
    throw kerfError('KERF_ERR_USAGE', `--profiles ${dir}: ${hits.length ? `${hits.length} profiles fit` : 'no profile fits'} tier '${name}'${model ? ` of model '${model}'` : ''} ` +
      `(profiles of the model there: ${have()}); expected one <model>.<system>.profile.json per tier, as kerf profile --tier writes them`);
  });
}

/** The gateway's `--adapt …` flags, as `kerf worker --gateway` and `kerf up` pass them. */
export interface AdaptArgs {
  adapt?: string | undefined; profiles?: string | undefined; 'adapt-tiers'?: string | undefined; 'adapt-links'?: string | undefined;
  'adapt-period'?: string | undefined; 'min-gain'?: string | undefined; 'min-dwell'?: string | undefined; 'adapt-codecs'?: string | undefined;
}

/** Tier names from `--adapt-tiers`, else device, edge, cloud, tier3… (as `kerf up` names its tiers). */
function tierNamesFrom(list: string | undefined, tiers: number): string[] {
  const defaults = ['device', 'edge', 'cloud'];
  const names = list ? list.split(',').map((s) => s.trim()) : Array.from({ length: tiers }, (_, i) => defaults[i] ?? `tier${i}`);
  if (names.length !== tiers) throw kerfError('KERF_ERR_USAGE', `--adapt-tiers '${list}': ${names.length} names for a pipeline of ${tiers} tiers`);
  return names;
}

/**
 * The monitors without a controller on a gateway started without `--adapt`/`--profiles`:
 * GET /v1/conditions (and the dashboard) then show every hop's estimated bandwidth and RTT
 * (`unprofiledCostModel`). Nothing for a pipeline of one tier.
 */
export async function attachMonitors(gateway: Gateway, v: Pick<AdaptArgs, 'adapt-tiers' | 'adapt-links'>, tiers: number): Promise<AdaptController | null> {
  if (tiers < 2) return null;
  const names = tierNamesFrom(v['adapt-tiers'], tiers);
  const linkPriors = await linkPriorsFrom(v['adapt-links']);
  return AdaptController.attach(gateway, {
    mode: 'off', profiles: [], costModel: unprofiledCostModel(gateway.prep.analysis, names), tierNames: names, ...(linkPriors ? { linkPriors } : {}),
  });
}

/** `--adapt-links` RATE/DELAY per hop ('direct': loopback-fast) as the monitors' priors. */
async function linkPriorsFrom(list: string | undefined): Promise<{ bytesPerS: number; rttS: number }[] | undefined> {
  if (!list) return undefined;
  const { parseRate, parseDuration } = await import('../link/index.js');
  return list.split(',').map((s, i) => {
    const [rate, delay] = s.trim().split('/');
    if (!rate || rate === 'direct' || rate === '-') return { bytesPerS: 1e9, rttS: 0.0002 };
    return { bytesPerS: parseRate(rate, `--adapt-links hop ${i} rate`) / 8, rttS: delay ? 2 * parseDuration(delay, `--adapt-links hop ${i} delay`) / 1000 : 0.0005 };
  });
}

/** Attach a controller to `gateway` from command-line flags (`tiers` = parts of the pipeline). */
export async function attachAdaptFromArgs(gateway: Gateway, v: AdaptArgs, tiers: number, log: (line: string) => void): Promise<AdaptController> {
  const mode = (v.adapt ?? 'off') as AdaptSetting;
  if (!ADAPT_SETTINGS.includes(mode)) throw kerfError('KERF_ERR_USAGE', `--adapt '${v.adapt}': expected one of ${ADAPT_SETTINGS.join(', ')}`);
  if (!v.profiles) throw kerfError('KERF_ERR_USAGE', '--adapt needs --profiles DIR (the folder kerf plan takes: one <model>.<system>.profile.json per tier, as kerf profile --tier writes them)');
  const names = tierNamesFrom(v['adapt-tiers'], tiers);
  const num = (s: string | undefined, flag: string, def: number): number => {
    if (s === undefined) return def;
    const x = Number(s);
    if (!(x >= 0 && Number.isFinite(x))) throw kerfError('KERF_ERR_USAGE', `${flag} '${s}': expected a non-negative number`);
    return x;
  };
  const linkPriors = await linkPriorsFrom(v['adapt-links']);
  const profiles = await loadTierProfiles(v.profiles, names, gateway.name);
  const c = AdaptController.attach(gateway, {
    mode, profiles, tierNames: names, ...(linkPriors ? { linkPriors } : {}),
    periodS: num(v['adapt-period'], '--adapt-period', 1) || 1, minGain: num(v['min-gain'], '--min-gain', LIVE_MIN_GAIN), minDwellS: num(v['min-dwell'], '--min-dwell', 3),
    ...(v['adapt-codecs'] !== undefined ? { codecs: v['adapt-codecs'] } : {}), log,
  });
  log(`kerf gateway: adapt ${mode} over ${names.join(' → ')}, ${c.model.blocks} blocks${c.model.codecs ? `, codecs ${v['adapt-codecs']}` : ''}`);
  return c;
}
