/**
 * `kerf up … --hosts hosts.yaml --failover [--standby]`: the failover controller
 * (src/cluster/failover.ts) around a deployment made by `deploy()`. It re-plans with the split
 * deployed kept and the lost host's part moved to a spare host, or joined to its neighbour
 * (`spareReplanner`); with `standby`, the chain that replaces each host is deployed ahead.
 * Every failover is logged (reason, detect / re-plan / deploy / switch), printed as a JSON
 * line with `--json`, and recorded by the gateway (`GET /v1/partition` history, /metrics).
 */
import type { Deployment } from './deploy.js';
import type { StageHandle } from './substrate.js';
import { FailoverController, spareReplanner, type FailoverEvent, type Layout } from './failover.js';

export interface UpFailoverOptions {
  deployment: Deployment;
  model: string;
  cuts: number[];
  /** the gateway runs part 0 (default true) */
  local?: boolean;
  inputShapes?: Record<string, number[]>;
  /** keep the fallback of every host staged ahead */
  standby?: boolean;
  workerArgs?: string[];
  /** progress lines (stderr) */
  log: (line: string) => void;
  /** one JSON document per event (stdout, with --json) */
  json?: (doc: Record<string, unknown>) => void;
}

export async function startUpFailover(o: UpFailoverOptions): Promise<FailoverController> {
  const d = o.deployment;
  const { prepareModel } = await import('../engine/prepare.js');
  const prep = await prepareModel(o.model, o.inputShapes ? { inputShapes: o.inputShapes } : {});
  const workers = d.stages.filter((s) => s.role === 'worker');
  const layout: Layout = { cuts: [...o.cuts], local: o.local ?? true, workers: workers.map((s) => ({ host: s.onHost, ...(s.cpus !== undefined ? { cpus: s.cpus } : {}) })) };
  const ctl = await FailoverController.start({
    substrate: d.substrate, gatewayUrl: d.url, token: d.token, model: o.model, prep, entry: d.hostOf[0]!,
    layout, stages: workers, replan: spareReplanner(layout), standby: o.standby ?? false,
    ...(o.workerArgs ? { workerArgs: o.workerArgs } : {}), log: o.log,
  });
  ctl.on('failover', (e: FailoverEvent) => {
    o.json?.({
      event: 'failover', reason: e.reason, lost: e.lost, staged: e.staged,
      detectMs: +e.detectMs.toFixed(1), replanMs: +e.replanMs.toFixed(1), deployMs: +e.deployMs.toFixed(1), switchMs: +e.switchMs.toFixed(1),
      replayed: e.report.failover?.replayed ?? 0, cuts: e.layout.cuts, hosts: e.layout.workers.map((w) => w.host),
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
