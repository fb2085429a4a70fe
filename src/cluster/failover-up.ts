/**
 * `kerf up … --hosts hosts.yaml --failover [--standby]`: the failover controller
 * (src/cluster/failover.ts) around a deployment made by `deploy()`. It re-plans as the
 * deployment was planned: a placement with `kerf place` on the hosts left (given the cluster
 * and profiles it was placed with), a 3-tier plan with the best of the plan's ranked
 * placements that leaves the lost tier unused; where that information is absent, or it finds
 * no layout, with the split deployed kept and the lost host's part moved to a spare host or
 * joined to its neighbour (`spareReplanner`). The re-planner in use is logged at start. With
 * `standby`, the chain that replaces each host is deployed ahead. Every failover is logged
 * (reason, detect / re-plan / deploy / switch), printed as a JSON line with `--json`, and
 * recorded by the gateway (`GET /v1/partition` history, /metrics).
 */
import type { Deployment } from './deploy.js';
import type { StageHandle } from './substrate.js';
import type { Cluster, PlaceModel, PlaceOptions } from '../plan/place/index.js';
import type { RankedPlacement, TierPlacement } from '../plan/types.js';
import { FailoverController, fallbackReplanner, placementReplanner, rankedPlanReplanner, spareReplanner, type FailoverEvent, type Layout, type Replanner } from './failover.js';

/** How to re-plan: as the deployment was planned, or (absent that) the spare re-planner. */
export type ReplanSource =
  | { kind: 'placement'; model: PlaceModel; cluster: Cluster; options?: PlaceOptions; /** for the log, e.g. "cluster.yaml, p.json" */ source: string; /** seconds the placer may take (default 2) */ timeLimitS?: number }
  | { kind: 'plan'; ranked: readonly RankedPlacement[]; hostOf: (t: TierPlacement) => string | null; source: string }
  | { kind: 'spare'; /** why not re-planning as planned (logged) */ why?: string };

export interface UpFailoverOptions {
  deployment: Deployment;
  model: string;
  cuts: number[];
  /** the gateway runs part 0 (default true) */
  local?: boolean;
  inputShapes?: Record<string, number[]>;
  /** how to re-plan (default: spare) */
  replan?: ReplanSource;
  /** keep the fallback of every host staged ahead */
  standby?: boolean;
  workerArgs?: string[];
  /** progress lines (stderr) */
  log: (line: string) => void;
  /** one JSON document per event (stdout, with --json) */
  json?: (doc: Record<string, unknown>) => void;
}

/** The re-planner of `src` (the spare one where it finds none) and the line saying which it is. */
export function upReplanner(src: ReplanSource, initial: Layout, entry: string): { replan: Replanner; kind: 'placement' | 'plan' | 'spare'; line: string } {
  const spare = spareReplanner(initial);
  const spareText = 'the spare re-planner (the split kept, a lost host\'s part moved to a spare host of the hosts file, else joined to its neighbour\'s)';
  if (src.kind === 'placement') {
    // one deadline per re-plan: the exact solver returns its best so far when it passes
    let deadline = 0;
    const inner = placementReplanner(src.model, src.cluster, { ...src.options, shouldStop: () => performance.now() > deadline });
    const limit = (src.timeLimitS ?? 2) * 1000;
    const placer: Replanner = (hosts) => { deadline = performance.now() + limit; return inner(hosts); };
    return { replan: fallbackReplanner(placer, spare), kind: 'placement', line: `re-planner: kerf place on the hosts left (${src.source}); where it finds no placement, ${spareText}` };
  }
  if (src.kind === 'plan') {
    const n = src.ranked.filter((x) => Array.isArray(x?.cuts) && Array.isArray(x?.tiers) && x.cuts.every((c) => Number.isInteger(c))).length;
    return { replan: fallbackReplanner(rankedPlanReplanner(src.ranked, src.hostOf, entry), spare), kind: 'plan',
      line: `re-planner: the best of the plan's ${n} ranked placement${n === 1 ? '' : 's'} (${src.source}) whose tiers all run on hosts left; where none does, ${spareText}` };
  }
  return { replan: spare, kind: 'spare', line: `re-planner: ${spareText}${src.why ? ` — ${src.why}` : ''}` };
}

export async function startUpFailover(o: UpFailoverOptions): Promise<FailoverController> {
  const d = o.deployment;
  const { prepareModel } = await import('../engine/prepare.js');
  const prep = await prepareModel(o.model, o.inputShapes ? { inputShapes: o.inputShapes } : {});
  const workers = d.stages.filter((s) => s.role === 'worker');
  const entry = d.hostOf[0]!;
  const layout: Layout = { cuts: [...o.cuts], local: o.local ?? true, workers: workers.map((s) => ({ host: s.onHost, ...(s.cpus !== undefined ? { cpus: s.cpus } : {}) })) };
  const r = upReplanner(o.replan ?? { kind: 'spare' }, layout, entry);
  o.log(`failover: ${r.line}`);
  o.log(`failover: the gateway runs on the entry host ${entry}: a lost worker host is failed over; the entry's own loss cannot be (clients talk to the gateway there) and is only reported`);
  const gatewayStage = d.stages.find((s) => s.role === 'gateway')?.name;
  const ctl = await FailoverController.start({
    substrate: d.substrate, gatewayUrl: d.url, token: d.token, model: o.model, prep, entry, ...(gatewayStage ? { gatewayStage } : {}),
    layout, stages: workers, replan: r.replan, standby: o.standby ?? false,
    ...(o.workerArgs ? { workerArgs: o.workerArgs } : {}), log: o.log,
  });
  o.json?.({ event: 'failover-replanner', kind: r.kind, detail: r.line });
  ctl.on('failover', (e: FailoverEvent) => {
    o.json?.({
      event: 'failover', reason: e.reason, lost: e.lost, staged: e.staged,
      detectMs: +e.detectMs.toFixed(1), replanMs: +e.replanMs.toFixed(1), deployMs: +e.deployMs.toFixed(1), switchMs: +e.switchMs.toFixed(1),
      replayed: e.report.failover?.replayed ?? 0, cuts: e.layout.cuts, hosts: e.layout.workers.map((w) => w.host), local: e.layout.local, note: e.layout.note ?? null,
      stages: ctl.stages.map((s) => ({ name: s.name, host: s.onHost, pid: s.pid, address: s.address })),
    });
  });
  ctl.on('error', (e: Error) => o.json?.({ event: 'failover-error', error: e.message }));
  // With standby: say when the fallbacks are staged (at start, after every failover, when a host is back).
  ctl.on('staged', (fallbacks: Map<string, readonly StageHandle[]>) => {
    const fb = [...fallbacks].map(([lost, st]) => ({ lost, hosts: st.map((s) => s.onHost) }));
    o.log(`failover: fallbacks staged: ${fb.map((f) => `losing ${f.lost} → ${f.hosts.join(' → ') || 'the gateway alone'}`).join('; ') || 'none'}`);
    o.json?.({ event: 'standby', fallbacks: fb });
  });
  return ctl;
}
