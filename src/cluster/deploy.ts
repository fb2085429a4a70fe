/**
 * The controller's deploy step, on any substrate: stage every tier's part on its host ahead
 * (by content hash: a host already holding it is sent nothing), then start the tiers last
 * first through the substrate (serve/up.ts's `up()` with a launcher) and wait until the
 * gateway is ready. `kerf up` (LocalSubstrate) and `kerf up --hosts` (AgentSubstrate) both
 * deploy through here.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { kerfError } from '../errors.js';
import { up, type StartedTier, type TierLauncher, type UpHandle, type UpOptions } from '../serve/up.js';
import { partBytes, writePart } from './parts.js';
import { gatewayOnlyMemory, stageMemory, type StageMemory } from './memory.js';
import type { PartRef, StageHandle, Substrate } from './substrate.js';

export interface DeployOptions extends UpOptions {
  /** the host of each tier in pipeline order, gateway first (names from `substrate.hosts()`);
   * default: the substrate's first host for all */
  hostOf?: string[];
  /**
   * What a worker's host is sent: 'segments' (default on a substrate of several hosts): only the
   * part it runs; 'whole': the whole model (a later repartition, `--adapt` or a switch may load
   * any segment there). The gateway's host always gets the whole model (it answers model
   * metadata and runs part 0).
   */
  parts?: 'segments' | 'whole';
}

/** A running deployment: the UpHandle of `up()`, and where each tier runs. */
export interface Deployment extends UpHandle {
  substrate: Substrate;
  /** per tier, gateway first */
  stages: StageHandle[];
  /** host of each tier, gateway first */
  hostOf: string[];
  /** what each host was sent */
  staged: { onHost: string; part: PartRef; what: string }[];
}

export async function deploy(substrate: Substrate, opts: DeployOptions): Promise<Deployment> {
  const local = opts.local ?? true;
  const nParts = opts.cuts.length + 1;
  const nTiers = local ? nParts : nParts + 1;
  const hosts = substrate.hosts();
  const hostOf = opts.hostOf ?? Array.from({ length: nTiers }, () => hosts[0]!);
  if (hostOf.length !== nTiers) throw kerfError('KERF_ERR_USAGE', `deploy: ${hostOf.length} hosts given for ${nTiers} tiers`);
  for (const h of hostOf) if (!hosts.includes(h)) throw kerfError('KERF_ERR_USAGE', `deploy: no host '${h}' (hosts: ${hosts.join(', ')})`);
  const mode = opts.parts ?? (new Set(hosts).size > 1 ? 'segments' : 'whole');
  const log = opts.log ?? (() => {});
  // Which file each tier loads: the whole model, or (a worker away from the entry) its part.
  const partOfTier = (i: number): number => (local ? i : i - 1);
  const sliced = (i: number): boolean => mode === 'segments' && i > 0 && hostOf[i] !== hostOf[0] && opts.cuts.length > 0;
  let dir: string | null = null;
  const files = new Map<number, { file: string; ref: PartRef }>();
  const staged: Deployment['staged'] = [];
  const refOf = new Map<string, PartRef>();
  // each tier's memory by kerf's memory model, for the hosts' agents to admit it (hosts only)
  const memoryOf = new Map<number, StageMemory>();
  try {
    if (hostOf.some((_, i) => sliced(i)) || substrate.kind === 'hosts') {
      const { prepareModel } = await import('../engine/prepare.js');
      const { statSync } = await import('node:fs');
      // named as the gateway names the model: a rollout back to it makes the same parts (same hashes, cached)
      const prep = await prepareModel(opts.model, { name: opts.name ?? basename(opts.model).replace(/\.onnx$/i, ''), ...(opts.inputShapes ? { inputShapes: opts.inputShapes } : {}) });
      const wholeBytes = statSync(opts.model).size;
      for (let i = 0; i < nTiers; i++) {
        const k = partOfTier(i);
        // the gateway, and a worker sent the whole model, hold the whole model beside their part
        const whole = i === 0 || !sliced(i) ? wholeBytes : 0;
        memoryOf.set(i, k < 0 ? gatewayOnlyMemory(prep.analysis, whole) : stageMemory(prep.analysis, k === 0 ? null : opts.cuts[k - 1]!, k === opts.cuts.length ? null : opts.cuts[k]!, whole));
      }
      for (let i = 1; i < nTiers; i++) {
        if (!sliced(i)) continue;
        dir ??= await mkdtemp(join(tmpdir(), 'kerf-parts-'));
        const k = partOfTier(i);
        files.set(i, await writePart(dir, partBytes(prep, opts.cuts, k, k)));
      }
    }
    // Stage everything before starting anything: a host that cannot take its part fails the
    // deployment while nothing runs yet.
    await Promise.all([...new Set(hostOf)].map(async (h) => {
      const want = new Map<string, string>();
      hostOf.forEach((hh, i) => {
        if (hh !== h) return;
        const f = files.get(i);
        want.set(f?.file ?? opts.model, f ? `part ${partOfTier(i)} (${opts.cuts.join(',')})` : 'whole model');
      });
      for (const [file, what] of want) {
        const ref = await substrate.stage(h, file);
        refOf.set(`${h}\0${file}`, ref);
        staged.push({ onHost: h, part: ref, what });
        log(`staged ${what} on ${h} (${ref.sha256.slice(0, 12)}, ${(ref.bytes / 1e6).toFixed(1)} MB)`);
      }
    }));
  } catch (e) {
    if (dir) await rm(dir, { recursive: true, force: true });
    throw e;
  }
  // The part files stay until the deployment closes: a local substrate runs them in place.
  const removeParts = (): Promise<void> => (dir ? rm(dir, { recursive: true, force: true }) : Promise.resolve());
  const stages: StageHandle[] = [];
  const exited = new Set<string>();
  const onEvent = (e: { type: string; stage?: string }): void => { if (e.type === 'stage-exit' && e.stage) exited.add(e.stage); };
  substrate.on('event', onEvent);
  const launch: TierLauncher = async (t, token): Promise<StartedTier> => {
    const onHost = hostOf[t.index]!;
    const f = files.get(t.index);
    const part = refOf.get(`${onHost}\0${f?.file ?? opts.model}`)!;
    const { model: _m, host: _h, inputShapes, ...rest } = t;
    // a stage holding only its part fetches the whole model from the entry host when a switch needs it
    const whole = f ? refOf.get(`${hostOf[0]}\0${opts.model}`) : undefined;
    const wholeShapes = whole && inputShapes ? Object.entries(inputShapes).flatMap(([k, v]) => ['--whole-input-shape', `${k}=${v.join('x')}`]) : [];
    const h = await substrate.start({
      ...rest, ...(wholeShapes.length ? { args: [...rest.args, ...wholeShapes] } : {}),
      ...(f ? { cuts: [], blocks: null } : inputShapes ? { inputShapes } : {}), onHost, part, token,
      ...(whole ? { whole: { ...whole, onHost: hostOf[0]! } } : {}),
      ...(memoryOf.has(t.index) ? { memory: memoryOf.get(t.index)! } : {}),
    });
    stages[t.index] = h;
    return {
      address: h.address, pid: h.pid, ...(h.cpus !== undefined ? { cpus: h.cpus } : {}), ...(h.cgroup ? { cgroup: h.cgroup } : {}),
      exited: () => exited.has(h.name), memory: () => substrate.stageMemory?.(h.name) ?? null,
      stop: () => substrate.stop(h.name),
    };
  };
  const quota = (substrate as { cpuQuota?: string | null }).cpuQuota;
  if (quota && [...(opts.tiers ?? [])].some((t) => t.cpus !== undefined)) {
    log(`CPU shares not enforced (${quota}): tiers with a share run with 1 onnxruntime thread on whatever CPU they get`);
  }
  // Staged copies are named by hash: the gateway keeps the model's own name in its URLs.
  const name = opts.name ?? basename(opts.model).replace(/\.onnx$/i, '');
  const handle = await up({ ...opts, name, ...(substrate.pipelineToken ? { token: substrate.pipelineToken } : {}), launch }).catch(async (e: unknown) => { substrate.off('event', onEvent); await removeParts(); throw e; });
  const close = handle.close;
  let closing: Promise<void> | null = null;
  return {
    ...handle, substrate, stages, hostOf, staged,
    close: () => (closing ??= close().finally(async () => { substrate.off('event', onEvent); await removeParts(); })),
  };
}
