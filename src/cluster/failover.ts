/**
 * Failover: the controller that keeps a deployment serving when a host is lost.
 *
 * It watches every worker stage of the chain in force — the substrate's `stage-exit` /
 * `host-lost` events, and heartbeats of its own on a connection to each stage (a killed
 * process closes it at once; a cut link answers no ping) — and on a loss re-plans without the
 * lost host (a `Replanner`: `kerf place` on the hosts left, for a placement), deploys the new
 * chain through the substrate (its parts staged by hash, stages started last first), and
 * switches the gateway onto it (`POST /v1/partition/failover`): the gateway replays there
 * every request that was in flight on the broken chain (src/serve/gateway.ts, `replay`).
 * Then it stops what is left of the old chain.
 *
 * With `standby`, the chain the controller would deploy after losing each host is deployed
 * ahead (a fallback per host), so a failover only switches. A host that comes back
 * (`host-back`) is used again on the next re-plan. Every failover is recorded with its reason
 * and phases (detect, re-plan, deploy, switch) here, in the gateway's `GET /v1/partition`
 * history and in its /metrics.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKerfError, kerfError, type KerfError } from '../errors.js';
import type { Prepared } from '../engine/prepare.js';
import { place, type Cluster, type Placement, type PlaceModel, type PlaceOptions } from '../plan/place/index.js';
import { rankPlacements } from '../plan/search.js';
import type { Network, PlanCriteria, PlanProblem, PlanSearchOptions, PlanTier, RankedPlacement, TierPlacement } from '../plan/types.js';
import { NextHop, parseAddress } from '../serve/nexthop.js';
import type { SwitchReport } from '../serve/switch.js';
import { partBytes, writePart } from './parts.js';
import type { PartRef, StageHandle, Substrate, SubstrateEvent } from './substrate.js';

/** A chain of workers to deploy: the pipeline's cuts and, per worker part, its host. */
export interface Layout {
  cuts: number[];
  /** the gateway runs part 0 itself */
  local: boolean;
  /** one per remote part, in chain order */
  workers: { host: string; cpus?: number; profiledS?: number }[];
  /** what planned it, for the log (e.g. "place: bottleneck 12.1 ms") */
  note?: string;
}

/** A new layout on the hosts still usable (the entry excluded — the gateway stays where it is — unless the first layout ran workers on it). */
export type Replanner = (hosts: readonly string[]) => Layout;

/**
 * Re-plan with `kerf place`: the best placement of `model` on the cluster's nodes that are
 * still usable (and the entry). Stages run one per node, as `kerf up placement.json`.
 */
export function placementReplanner(model: PlaceModel, cluster: Cluster, opts: PlaceOptions = {}): Replanner {
  return (hosts) => {
    const keep = new Set([...hosts, ...(cluster.entry ? [cluster.entry] : [])]);
    const c: Cluster = { ...cluster, nodes: cluster.nodes.filter((n) => keep.has(n.name)), links: cluster.links.filter((l) => keep.has(l.from) && keep.has(l.to)) };
    if (!c.nodes.length) throw kerfError('KERF_ERR_PLACE', `no usable node left (lost: ${cluster.nodes.map((n) => n.name).filter((n) => !keep.has(n)).join(', ')})`);
    return placementLayout(place(model, c, opts));
  };
}

/**
 * Re-plan a 3-tier plan (`kerf plan`): the best plan under `criteria` in which every tier whose
 * host is lost runs nothing. `hostOf` names each tier's host (the device's is the entry, where
 * the gateway runs; it is never given up).
 */
export function planReplanner(problem: PlanProblem, network: Network, criteria: PlanCriteria, hostOf: Record<PlanTier, string>, opts: PlanSearchOptions = {}): Replanner {
  return (hosts) => {
    const c: PlanCriteria = structuredClone(criteria);
    for (const t of ['edge', 'cloud'] as const) {
      if (hosts.includes(hostOf[t])) continue;
      // the tier runs nothing (Scission's `-1`), whatever else was asked of it
      c[t] = { includeSystems: [], excludeSystems: [], includeLayers: [-1], excludeLayers: [] };
    }
    const best = rankPlacements(problem, network, c, { ...opts, topK: 1 })[0];
    if (!best) throw kerfError('KERF_ERR_PLAN', `no plan without ${(['edge', 'cloud'] as const).filter((t) => !hosts.includes(hostOf[t])).join(' and ')} meets the criteria`);
    return planLayout(best, hostOf);
  };
}

/**
 * Re-plan without profiles: keep the split of `initial` (the layout deployed first) and put
 * every part whose host is not usable on a spare host (one the initial layout does not use, in
 * the hosts file's order); with no spare left, the part joins the part before it (its cut is
 * dropped; the first part of a chain without a local part joins the next one). A host that is
 * usable again gets its own part back. Answers stay exact: only where the cuts fall changes.
 */
export function spareReplanner(initial: Layout): Replanner {
  return (hosts) => {
    const mine = new Set(initial.workers.map((w) => w.host));
    const spares = hosts.filter((h) => !mine.has(h));
    const used = new Set<string>();
    const ws: (Layout['workers'][number] | null)[] = initial.workers.map((w) => {
      const keep = hosts.includes(w.host) && !used.has(w.host);
      const host = keep ? w.host : spares.shift();
      if (host === undefined) return null;
      used.add(host);
      return { host, ...(keep && w.cpus !== undefined ? { cpus: w.cpus } : {}), ...(w.profiledS !== undefined ? { profiledS: w.profiledS } : {}) };
    });
    const cuts = [...initial.cuts];
    const offset = initial.local ? 1 : 0;
    for (let j = ws.length - 1; j >= 0; j--) {
      if (ws[j] !== null) continue;
      const part = j + offset;
      if (part > 0) { cuts.splice(part - 1, 1); ws.splice(j, 1); continue; }
      if (ws.length < 2) break;
      cuts.splice(0, 1);
      ws.splice(0, 1);
    }
    const workers = ws.filter((w): w is NonNullable<typeof w> => w !== null);
    if (workers.length !== ws.length || (!initial.local && !workers.length)) {
      throw kerfError('KERF_ERR_PLACE', `no usable host left for the model's parts (usable: ${hosts.join(', ') || 'none'})`);
    }
    const moved = workers.filter((w) => !mine.has(w.host)).map((w) => w.host);
    return { cuts, local: initial.local, workers, note: `spare: ${workers.map((w) => w.host).join(' → ') || 'the gateway alone'}${moved.length ? ` (spares ${moved.join(', ')})` : ''}, cuts ${cuts.join(',') || 'none'}` };
  };
}

/**
 * Re-plan a 3-tier plan from the placements its file ranks (`kerf plan`'s `ranked` list, then
 * its `pareto` front, in that order: best first by the plan's objective): the first whose
 * tiers all run on usable hosts, i.e. the best plan kerf plan found without the lost tier.
 * `hostOf` names a tier's host (null: no host of the hosts file); the device tier runs on the
 * entry (with the gateway), which is never given up here. Throws KERF_ERR_PLAN when no ranked
 * placement avoids the lost hosts (`kerf plan --result-count N` ranks more).
 */
export function rankedPlanReplanner(ranked: readonly RankedPlacement[], hostOf: (t: TierPlacement) => string | null, entry: string): Replanner {
  // (the ranked list of a plan file is informational and not validated: what is not a full placement is passed over)
  const usable = ranked.filter((r) => Array.isArray(r?.cuts) && Array.isArray(r?.tiers) && r.cuts.every((x) => Number.isInteger(x)));
  return (hosts) => {
    const ok = new Set([...hosts, entry]);
    for (const r of usable) {
      const used = r.tiers.filter((t) => t.blocks !== null);
      const where = used.map((t) => (t.tier === 'device' ? entry : hostOf(t)));
      if (where.some((h) => h === null || !ok.has(h))) continue;
      // a host runs one tier: two tiers on one host is not what the plan priced
      if (new Set(where).size !== where.length) continue;
      const local = used[0]?.tier === 'device';
      const workers = used.map((t, i) => ({ t, host: where[i]! })).filter((x) => x.t.tier !== 'device').map((x) => ({ host: x.host, profiledS: x.t.computeS }));
      const rank = 'rank' in r ? ` (rank ${(r as RankedPlacement).rank})` : '';
      return { cuts: r.cuts as number[], local, workers, note: `plan${rank}: ${used.map((t, i) => `${t.tier}(${where[i]})`).join(' → ')}, ${Number.isFinite(r.totalS) ? `${(r.totalS * 1000).toFixed(1)} ms` : 'no time'}` };
    }
    throw kerfError('KERF_ERR_PLAN', `none of the plan's ${usable.length} ranked placements runs on the hosts left (${[entry, ...hosts].join(', ')}); kerf plan --result-count N ranks more`);
  };
}

/**
 * `primary`, and where it finds no layout (a KERF_ERR_PLACE / KERF_ERR_PLAN error), `fallback`
 * (e.g. the placer, then the spare re-planner); the layout's note says which and why.
 */
export function fallbackReplanner(primary: Replanner, fallback: Replanner): Replanner {
  return (hosts) => {
    try { return primary(hosts); } catch (e) {
      if (!isKerfError(e) || (e.code !== 'KERF_ERR_PLACE' && e.code !== 'KERF_ERR_PLAN')) throw e;
      const l = fallback(hosts);
      return { ...l, note: `${l.note ?? 'fallback'} (the re-planner found none: ${e.message})` };
    }
  };
}

/** The layout of a ranked plan: the tiers it uses after the device, on their hosts. */
export function planLayout(r: RankedPlacement, hostOf: Record<PlanTier, string>): Layout {
  if (r.cuts.some((x) => x === null)) throw kerfError('KERF_ERR_PLAN', 'the plan has no cut ids (made from imported profiles?); plan from kerf profiles');
  const used = r.tiers.filter((t) => t.blocks !== null);
  const local = used[0]?.tier === 'device';
  const workers = used.filter((t) => t.tier !== 'device').map((t) => ({ host: hostOf[t.tier], profiledS: t.computeS }));
  return { cuts: r.cuts as number[], local, workers, note: `plan: ${used.map((t) => `${t.tier}(${t.system})`).join(' → ')}, ${(r.totalS * 1000).toFixed(1)} ms` };
}

/** The layout of a placement (as `placementToUp` deploys it). */
export function placementLayout(p: Placement): Layout {
  const local = p.entry !== null && p.stages[0]!.node === p.entry;
  const cuts = p.stages.slice(0, -1).map((s) => s.cutOut!);
  const workers = p.stages.slice(local ? 1 : 0).map((s) => ({ host: s.node, profiledS: s.computeSeconds }));
  return { cuts, local, workers, note: `place: ${p.stages.map((s) => s.node).join(' → ')}, bottleneck ${(p.bottleneck.seconds * 1000).toFixed(1)} ms` };
}

export interface FailoverOptions {
  substrate: Substrate;
  /** the gateway's base URL and the pipeline's token (it also guards the gateway's control endpoints) */
  gatewayUrl: string;
  token: string;
  /** the whole model file and its preparation (parts are cut from it) */
  model: string;
  prep: Prepared;
  /** the host the gateway runs on (never given up: requests arrive there). Its loss cannot be
   *  failed over from here — clients talk to the gateway there — and is only logged, plainly.
   *  A worker on it whose process died (the host still answering) is re-planned like any other. */
  entry: string;
  /** the gateway's stage name (its ending unasked is logged as the entry's loss) */
  gatewayStage?: string;
  /** the layout in force and its worker stages (chain order), e.g. from `deploy()` */
  layout: Layout;
  stages: StageHandle[];
  replan: Replanner;
  /** deploy ahead, for every host of the chain in force, the chain that replaces it */
  standby?: boolean;
  /** heartbeats to every stage: ping every intervalMs, lost after timeoutMs silent (default 100 / 1000) */
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
  /** extra `kerf worker` flags of the stages it starts */
  workerArgs?: string[];
  threads?: number;
  log?: (line: string) => void;
}

/** One failover, as the controller saw it. */
export interface FailoverEvent {
  reason: string;
  lost: string[];
  /** performance.now() when the loss was detected, and when the gateway had switched */
  detectedAt: number;
  switchedAt: number;
  detectMs: number;
  replanMs: number;
  deployMs: number;
  switchMs: number;
  staged: boolean;
  layout: Layout;
  report: SwitchReport;
}

interface Chain { layout: Layout; stages: StageHandle[]; watch: NextHop[]; hosts: Set<string> }

/** A loss reported (by the substrate or a heartbeat) and not handled yet. */
interface Loss {
  host: string;
  reason: string;
  /** the stage that was lost (null: the whole host, as the substrate reported it) */
  stage: string | null;
  detectedAt: number;
  detectMs: number;
  /** resolves true when the host is given up (it does not answer its substrate), false when only a process died */
  gone: Promise<boolean>;
}

const now = (): number => performance.now();

/**
 * The failover controller of one deployment. Create with `FailoverController.start`;
 * `close()` is idempotent (it stops the stages it started, not the gateway). Events:
 * 'failover' (FailoverEvent), 'error' (a failover that could not be completed), 'staged'
 * (with `standby`: the fallbacks, lost host → stages, each time staging them has ended).
 */
export class FailoverController extends EventEmitter {
  private chain: Chain;
  private readonly standbys = new Map<string, Chain>();
  private readonly lost = new Set<string>();
  private readonly lastSeen = new Map<string, number>();
  /** losses not handled yet (the first starts a failover; those arriving during one wait for it) */
  private pending: Loss[] = [];
  /** hosts whose loss is being confirmed (a probe of the substrate in flight): kept out of re-plans */
  private readonly suspects = new Set<string>();
  private draining: Promise<void> | null = null;
  private seq = 0;
  private closed = false;
  private partsDir: string | null = null;
  private readonly partRefs = new Map<string, { file: string; ref: PartRef }>();
  private readonly onEvent = (e: SubstrateEvent): void => this.event(e);
  readonly history: FailoverEvent[] = [];
  private staging: Promise<void> = Promise.resolve();
  private readonly cleanups = new Set<Promise<void>>();
  /** stages left on lost hosts: stopped when their host is back */
  private readonly orphans = new Set<StageHandle>();
  /** hosts this controller gave up on by its own probe: polled until they answer again */
  private readonly backWatch = new Map<string, NodeJS.Timeout>();
  /** the first layout runs workers on the entry host: the entry stays usable for them */
  private readonly entryWorkers: boolean;
  /** the entry's loss was logged (once until it answers again) */
  private entryDown = false;

  private constructor(private readonly o: FailoverOptions) {
    super();
    this.on('error', () => { /* reported through history and the log; listeners may add more */ });
    this.chain = { layout: o.layout, stages: [...o.stages], watch: [], hosts: new Set(o.stages.map((s) => s.onHost)) };
    this.entryWorkers = o.layout.workers.some((w) => w.host === o.entry);
  }

  static async start(o: FailoverOptions): Promise<FailoverController> {
    if (o.stages.length !== o.layout.workers.length) throw kerfError('KERF_ERR_USAGE', `failover: ${o.stages.length} stages for a layout of ${o.layout.workers.length} workers`);
    const c = new FailoverController(o);
    o.substrate.on('event', c.onEvent);
    c.watch(c.chain);
    if (o.standby) c.restage();
    return c;
  }

  /** The layout in force. */
  get layout(): Layout { return this.chain.layout; }
  /** Worker stages of the chain in force. */
  get stages(): readonly StageHandle[] { return this.chain.stages; }
  /** Hosts given up and not back. */
  get lostHosts(): string[] { return [...this.lost]; }
  /** Resolves once the fallback chains asked for are deployed. */
  whenStaged(): Promise<void> { return this.staging; }
  /** Fallback chains deployed: lost host → its stages. */
  get fallbacks(): Map<string, readonly StageHandle[]> { return new Map([...this.standbys].map(([h, c]) => [h, c.stages])); }

  private log(line: string): void { this.o.log?.(`failover: ${line}`); }

  /** Heartbeats on a connection of its own to each stage of `chain`. */
  private watch(chain: Chain): void {
    const hb = { intervalMs: this.o.heartbeat?.intervalMs ?? 100, timeoutMs: this.o.heartbeat?.timeoutMs ?? 1000 };
    for (const s of chain.stages) {
      const h = NextHop.open(parseAddress(s.address, 'stage'), { token: this.o.token, info: 'failover controller', heartbeat: hb, retryMs: 200, maxRetryMs: 1000 });
      this.lastSeen.set(s.name, now());
      const seen = setInterval(() => { if (h.connected) this.lastSeen.set(s.name, now()); }, hb.intervalMs);
      seen.unref();
      h.once('close-watch', () => clearInterval(seen));
      h.on('down', (why: KerfError) => {
        if (this.chain !== chain || this.closed) return;
        this.loss(s.onHost, `heartbeat: stage ${s.name} on ${s.onHost}: ${why.message}`, s.name);
      });
      chain.watch.push(h);
    }
  }

  private async unwatch(chain: Chain): Promise<void> {
    const w = chain.watch.splice(0);
    for (const h of w) h.emit('close-watch');
    await Promise.all(w.map((h) => h.close()));
  }

  /** The entry (the gateway's host) is gone: nothing to fail over to, said once, plainly. */
  private entryLost(why: string): void {
    if (this.entryDown) return;
    this.entryDown = true;
    this.log(`the entry host ${this.o.entry} is lost (${why}): the gateway runs there and clients reach the pipeline through it, ` +
      `so kerf cannot fail over from this; nothing is re-planned. It serves again if ${this.o.entry} comes back with the gateway still running; ` +
      `otherwise restart kerf up (with another host as the hosts file's entry)`);
  }

  private event(e: SubstrateEvent): void {
    if (this.closed) return;
    if (e.type === 'host-back' && e.onHost === this.o.entry) {
      if (this.entryDown) this.log(`the entry host ${this.o.entry} answers again`);
      this.entryDown = false;
      this.lost.delete(e.onHost);
      return;
    }
    if (e.type === 'host-lost' && e.onHost === this.o.entry) { this.lost.add(e.onHost); this.entryLost(`host-lost: ${e.reason}`); return; }
    if (e.type === 'stage-exit' && this.o.gatewayStage !== undefined && e.stage === this.o.gatewayStage) {
      this.entryLost(`the gateway ${e.stage} ended: ${e.reason}`);
      return;
    }
    if (e.type === 'host-back') {
      if (this.lost.delete(e.onHost)) {
        this.log(`host ${e.onHost} is back: used again from the next re-plan`);
        const left = [...this.orphans].filter((s) => s.onHost === e.onHost);
        for (const st of left) this.orphans.delete(st);
        if (left.length) this.background(Promise.allSettled(left.map((st) => this.o.substrate.stop(st.name))).then(() => {}));
        if (this.o.standby) this.restage();
      }
      return;
    }
    if (e.type === 'host-lost') {
      // Given up at once, whether or not the chain in force uses it: no re-plan or fallback may count on it.
      this.lost.add(e.onHost);
      this.dropStandbys((h, c) => c.hosts.has(e.onHost) && h !== e.onHost, `${e.onHost} is lost`);
      this.loss(e.onHost, `host-lost: ${e.onHost}: ${e.reason}`, null, true);
      return;
    }
    if (this.chain.stages.some((s) => s.name === e.stage)) { this.loss(e.onHost, `stage-exit: ${e.stage} on ${e.onHost}: ${e.reason}`, e.stage); return; }
    // A fallback chain's stage ended: that fallback is no use any more.
    this.dropStandbys((_h, c) => c.stages.some((s) => s.name === e.stage), `its stage ${e.stage} ended (${e.reason})`);
  }

  /** Stop (in the background) the fallbacks `which` picks, and stage new ones. */
  private dropStandbys(which: (host: string, c: Chain) => boolean, why: string): void {
    const drop = [...this.standbys].filter(([h, c]) => which(h, c));
    if (!drop.length) return;
    for (const [h] of drop) this.standbys.delete(h);
    this.log(`dropped the fallback for losing ${drop.map(([h]) => h).join(', ')}: ${why}`);
    this.background(Promise.allSettled(drop.map(([, c]) => this.stopChain(c))).then(() => {}));
    if (this.o.standby) this.restage();
  }

  private background(p: Promise<void>): void {
    this.cleanups.add(p);
    void p.finally(() => this.cleanups.delete(p));
  }

  /**
   * A stage or a host is gone. The host is a suspect (kept out of re-plans) until the substrate
   * says whether it still answers (then only a process died: the host is re-used) or not (given
   * up). The loss is queued: it starts a failover when none is under way, else it is handled
   * right after the one under way (which may have made it moot: a loss of a host the chain in
   * force does not use only marks it lost).
   */
  private loss(host: string, reason: string, stage: string | null, hostGone = false): void {
    if (this.closed) return;
    const detectedAt = now();
    if (this.pending.some((l) => l.host === host && (l.stage === stage || l.stage === null))) return;
    const seen = stage ? this.lastSeen.get(stage) : undefined;
    const detectMs = seen !== undefined && reason.startsWith('heartbeat') ? detectedAt - seen : 0;
    this.log(`lost ${stage ?? host}: ${reason}`);
    let gone: Promise<boolean>;
    if (hostGone) gone = Promise.resolve(true);
    else {
      this.suspects.add(host);
      gone = this.answers(host).then((ok) => {
        this.suspects.delete(host);
        if (!ok) this.markLost(host);
        return !ok;
      });
    }
    this.pending.push({ host, reason, stage, detectedAt, detectMs, gone });
    this.draining ??= this.drain().finally(() => { this.draining = null; });
  }

  /** Handle the queued losses, one failover at a time, until the chain in force has none. */
  private async drain(): Promise<void> {
    while (!this.closed) {
      const chain = this.chain;
      const batch = this.pending.splice(0);
      const hits: Loss[] = [];
      for (const l of batch) {
        if (l.host === this.o.entry) {
          // a worker on the entry host: re-planned when only its process died; the entry gone is not
          // something to fail over from (the gateway is there)
          if (await l.gone) { this.entryLost(l.reason); continue; }
          this.log(`${l.stage ?? l.host} on the entry host ${l.host} ended, the entry still answers: re-planning (the gateway is unaffected)`);
        }
        if (l.stage !== null && chain.stages.some((s) => s.name === l.stage)) hits.push(l);
        else if (chain.hosts.has(l.host) && await l.gone) hits.push(l);
        else {
          await l.gone;
          this.log(`${l.stage ?? l.host} is not in the chain in force: ${this.lost.has(l.host) ? `${l.host} marked lost` : 'nothing to do'}`);
        }
      }
      // A host of the chain in force given up meanwhile (e.g. lost while the chain was deployed).
      for (const h of chain.hosts) {
        if (h === this.o.entry) continue;
        if (this.lost.has(h) && !hits.some((l) => l.host === h)) hits.push({ host: h, reason: `host ${h} is lost`, stage: null, detectedAt: now(), detectMs: 0, gone: Promise.resolve(true) });
      }
      if (!hits.length) return;
      if (this.closed || this.chain !== chain) { this.pending.unshift(...hits); continue; }
      try {
        await this.failover(chain, hits);
      } catch (e) {
        this.log(`could not fail over (trying again in 1 s): ${(e as Error).message}`);
        this.emit('error', e);
        this.pending.unshift(...hits.filter((l) => !this.pending.includes(l)));
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }

  /**
   * Give a host up on this controller's own probe. The substrate announces `host-back` only for
   * hosts it declared lost itself, and a host back before its own timeout (an agent restarted
   * at once) never was: so poll it here until it answers, then treat it as back.
   */
  private markLost(host: string): void {
    this.lost.add(host);
    if (this.backWatch.has(host)) return;
    let probing = false;
    const t = setInterval(() => {
      if (this.closed || !this.lost.has(host)) { clearInterval(t); this.backWatch.delete(host); return; }
      if (probing) return;
      probing = true;
      void this.answers(host).then((ok) => {
        probing = false;
        if (ok && !this.closed && this.lost.has(host)) this.event({ type: 'host-back', onHost: host });
      });
    }, 1000);
    t.unref();
    this.backWatch.set(host, t);
  }

  /** Whether the host still answers its substrate within 500 ms. */
  private async answers(host: string): Promise<boolean> {
    const t = new Promise<boolean>((r) => setTimeout(() => r(false), 500).unref());
    return Promise.race([this.o.substrate.status(host).then((s) => s.ok, () => false), t]);
  }

  /** Hosts a re-plan may use: not lost, not suspect; the entry only where the first layout ran workers on it. */
  private usable(): string[] {
    return this.o.substrate.hosts().filter((h) => !this.lost.has(h) && !this.suspects.has(h) && (h !== this.o.entry || this.entryWorkers));
  }

  private async failover(old: Chain, hits: Loss[]): Promise<void> {
    const lostNow = [...new Set(hits.map((l) => l.host))];
    const reason = hits.map((l) => l.reason).join('; ');
    const detectedAt = Math.min(...hits.map((l) => l.detectedAt));
    const detectMs = Math.max(...hits.map((l) => l.detectMs));
    const t0 = now();
    let layout: Layout;
    let next: Chain;
    let staged = false;
    let replanMs: number, deployMs: number;
    const fb = lostNow.length === 1 ? this.standbys.get(lostNow[0]!) : undefined;
    const fits = (c: Chain): boolean => [...c.hosts].every((h) => !this.lost.has(h) && !this.suspects.has(h)) && c.stages.length === c.layout.workers.length;
    if (fb && fits(fb)) {
      this.standbys.delete(lostNow[0]!);
      next = fb;
      layout = fb.layout;
      staged = true;
      replanMs = now() - t0;
      deployMs = 0;
    } else {
      // Without a fallback: know first which of the lost hosts are gone (≤ 500 ms), then re-plan without them.
      await Promise.all(hits.map((l) => l.gone));
      layout = this.o.replan(this.usable());
      const t1 = now();
      replanMs = t1 - t0;
      try {
        next = await this.deployChain(layout, `f${++this.seq}`);
      } catch (e) {
        // A host that does not answer now is given up (the next try re-plans without it).
        await Promise.all(layout.workers.map(async (w) => { if (!(await this.answers(w.host))) this.markLost(w.host); }));
        throw e;
      }
      deployMs = now() - t1;
    }
    const t2 = now();
    let report: SwitchReport;
    try {
      report = await this.switchGateway(next, { reason, lost: lostNow, detectMs, replanMs, deployMs, staged });
    } catch (e) {
      if (!staged) await this.stopChain(next);
      throw e;
    }
    const switchedAt = now();
    this.chain = next;
    this.watch(next);
    this.log(`switched to ${layout.workers.map((w) => w.host).join(' → ') || 'the gateway alone'} (cuts ${layout.cuts.join(',') || 'none'})${staged ? ', staged ahead' : ''}: ` +
      `replan ${replanMs.toFixed(0)} ms, deploy ${deployMs.toFixed(0)} ms, switch ${(switchedAt - t2).toFixed(0)} ms, ${report.failover?.replayed ?? 0} replayed`);
    const ev: FailoverEvent = { reason, lost: lostNow, detectedAt, switchedAt, detectMs, replanMs, deployMs, switchMs: switchedAt - t2, staged, layout, report };
    this.history.push(ev);
    await this.unwatch(old);
    // Fallbacks that ran on a lost host are no use any more.
    const drop = [...this.standbys].filter(([h, c]) => !fits(c) || lostNow.includes(h));
    for (const [h] of drop) this.standbys.delete(h);
    if (this.o.standby) this.restage();
    this.emit('failover', ev);
    // Stopping what is left of the old chain may wait on hosts that are gone: not in the way
    // of the next failover.
    // (Once it is known which lost hosts are gone: their stages are not waited for.)
    this.background(Promise.all(hits.map((l) => l.gone)).then(() => Promise.allSettled([this.stopChain(old), ...drop.map(([, c]) => this.stopChain(c))])).then(() => {}));
  }

  private async switchGateway(c: Chain, f: { reason: string; lost: string[]; detectMs: number; replanMs: number; deployMs: number; staged: boolean }): Promise<SwitchReport> {
    const body = { cuts: c.layout.cuts, next: c.stages[0]?.address ?? null, local: c.layout.local, ...f };
    const res = await fetch(`${this.o.gatewayUrl}/v1/partition/failover`, {
      method: 'POST', headers: { authorization: `Bearer ${this.o.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    }).catch((e: Error) => { throw kerfError('KERF_ERR_UPSTREAM', `failover: the gateway at ${this.o.gatewayUrl} cannot be reached: ${e.message}`); });
    const doc = await res.json().catch(() => ({})) as SwitchReport & { error?: string; code?: string };
    if (res.status !== 200) throw kerfError(isKerfError(doc) ? doc.code : 'KERF_ERR_UPSTREAM', `failover: the gateway refused the switch: ${doc.error ?? res.status}`);
    return doc;
  }

  /** The file of part `k` of `cuts` on `host`, staged there (a host caches each part once). */
  private async part(host: string, cuts: number[], k: number): Promise<PartRef> {
    const key = `${cuts.join(',')}#${k}`;
    let p = this.partRefs.get(key);
    if (!p) {
      this.partsDir ??= await mkdtemp(join(tmpdir(), 'kerf-failover-'));
      p = await writePart(this.partsDir, partBytes(this.o.prep, cuts, k, k));
      this.partRefs.set(key, p);
    }
    return this.o.substrate.stage(host, p.file);
  }

  /** Deploy `layout`'s workers, last first (each needs the next one's address). */
  private async deployChain(layout: Layout, tag: string): Promise<Chain> {
    const stages: StageHandle[] = [];
    const first = layout.local ? 1 : 0;
    const refs = await Promise.all(layout.workers.map((w, j) => this.part(w.host, layout.cuts, first + j)));
    try {
      let next: string | null = null;
      for (let j = layout.workers.length - 1; j >= 0; j--) {
        const w = layout.workers[j]!;
        const h = await this.o.substrate.start({
          index: 1 + j, name: `${w.host}-${tag}`, role: 'worker', cuts: [], blocks: null, next, port: 0,
          ...(this.o.threads ? { threads: this.o.threads } : {}), ...(w.cpus !== undefined ? { cpus: w.cpus } : {}),
          ...(w.profiledS !== undefined ? { profiledS: w.profiledS } : {}),
          args: [...(this.o.workerArgs ?? [])], onHost: w.host, part: refs[j]!, token: this.o.token,
        });
        stages.unshift(h);
        next = h.address;
      }
    } catch (e) {
      await Promise.allSettled(stages.map((s) => this.o.substrate.stop(s.name)));
      throw e;
    }
    return { layout, stages, watch: [], hosts: new Set(layout.workers.map((w) => w.host)) };
  }

  /**
   * Stop a chain's stages. Those on a lost host are not waited for (its agent cannot be reached:
   * it ends them when the session's lease runs out, or they are stopped when the host is back).
   */
  private async stopChain(c: Chain): Promise<void> {
    const here = c.stages.filter((s) => !this.lost.has(s.onHost));
    for (const s of c.stages) if (this.lost.has(s.onHost)) this.orphans.add(s);
    await Promise.allSettled(here.map((s) => this.o.substrate.stop(s.name)));
  }

  /** Deploy (in the background, one at a time) the fallback of every host of the chain in force. */
  private restage(): void {
    // Not in the failover queue: a loss meanwhile fails over at once (without that fallback).
    this.staging = this.staging.then(async () => {
      const key = (l: Layout): string => JSON.stringify([l.cuts, l.local, l.workers.map((w) => w.host)]);
      for (const h of this.chain.hosts) {
        if (this.closed) return;
        const usable = this.usable().filter((x) => x !== h);
        let layout: Layout;
        try { layout = this.o.replan(usable); } catch (e) { this.log(`no fallback for losing ${h}: ${(e as Error).message}`); continue; }
        // A fallback staged earlier stays while the re-plan still gives it (a host back may change it).
        const had = this.standbys.get(h);
        if (had && key(had.layout) === key(layout)) continue;
        if (had) {
          this.standbys.delete(h);
          this.background(this.stopChain(had));
        }
        try {
          const c = await this.deployChain(layout, `sb${++this.seq}`);
          this.standbys.set(h, c);
          this.log(`staged the fallback for losing ${h}: ${layout.workers.map((w) => w.host).join(' → ')}`);
        } catch (e) { this.log(`could not stage the fallback for losing ${h}: ${(e as Error).message}`); }
      }
      if (!this.closed) this.emit('staged', this.fallbacks);
    }).catch(() => {});
  }

  /** Stop watching, stop the fallbacks and the chain's stages started here; the gateway stays. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.backWatch.values()) clearInterval(t);
    this.backWatch.clear();
    this.o.substrate.off('event', this.onEvent);
    await this.draining?.catch(() => {});
    await this.staging.catch(() => {});
    await this.unwatch(this.chain);
    await Promise.all(this.cleanups);
    for (const c of this.standbys.values()) await this.stopChain(c);
    this.standbys.clear();
    // The chain in force: stages this controller started (those of the first deployment are also
    // the deployment's to stop; stopping twice is harmless).
    await this.stopChain(this.chain);
    if (this.partsDir) await rm(this.partsDir, { recursive: true, force: true });
  }
}
