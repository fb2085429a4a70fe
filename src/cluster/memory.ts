/**
 * What a stage costs its host's memory, by kerf's memory model (the placement's, src/plan/place:
 * margin × (weights + activations) + a worker's baseline), and whether it fits in what a host
 * offers beside the stages it runs. `kerf agent` admits a stage only when it fits
 * (src/cluster/host.ts); the controller sends its estimate with the stage, the agent checks it
 * against a floor of its own from the part file it holds (it never starts a stage on a
 * controller's word alone).
 */
import type { Analysis } from '../graph/cuts.js';
import { DEFAULT_MARGIN, DEFAULT_OVERHEAD_MB } from '../plan/place/instance.js';

const MiB = 2 ** 20;

/** A stage's memory by the model, and its terms (bytes). */
export interface StageMemory {
  bytes: number;
  weightBytes: number;
  /** peak activations: the largest tensor set crossing into or out of the part, in and out at once */
  activationBytes: number;
  /** a whole model file the stage holds beside its part (the gateway, a worker sent the whole model) */
  wholeBytes: number;
  margin: number;
  overheadBytes: number;
}

/**
 * The part between cut ids `start` and `end` (null: the model's ends) of an analysed model:
 * margin × (its weights + 2 × its peak crossing tensors) + the worker baseline, plus
 * `wholeBytes` where the stage holds the whole model too.
 */
export function stageMemory(a: Analysis, start: number | null, end: number | null, wholeBytes = 0): StageMemory {
  const cut = (id: number | null) => (id === null ? null : a.cuts.find((c) => c.id === id) ?? null);
  const s = cut(start), e = cut(end);
  const params = (s ? s.paramsAfter : a.totals.params) - (e ? e.paramsAfter : 0);
  const weightBytes = a.totals.params > 0 ? Math.round((a.totals.paramBytes * Math.max(0, params)) / a.totals.params) : 0;
  let act = start === null ? a.totals.inputBytes : s?.bytes ?? 0;
  act = Math.max(act, end === null ? a.totals.outputBytes : e?.bytes ?? 0);
  for (const c of a.cuts) if ((start === null || c.id > start) && (end === null || c.id < end)) act = Math.max(act, c.bytes);
  const activationBytes = 2 * act;
  const overheadBytes = DEFAULT_OVERHEAD_MB * MiB;
  return {
    bytes: Math.ceil(DEFAULT_MARGIN * (weightBytes + activationBytes) + overheadBytes + wholeBytes),
    weightBytes, activationBytes, wholeBytes, margin: DEFAULT_MARGIN, overheadBytes,
  };
}

/** A gateway that runs no part: its baseline, the model's inputs and outputs, and the whole model it holds. */
export function gatewayOnlyMemory(a: Analysis, wholeBytes = 0): StageMemory {
  const activationBytes = 2 * Math.max(a.totals.inputBytes, a.totals.outputBytes);
  const overheadBytes = DEFAULT_OVERHEAD_MB * MiB;
  return { bytes: Math.ceil(DEFAULT_MARGIN * activationBytes + overheadBytes + wholeBytes), weightBytes: 0, activationBytes, wholeBytes, margin: DEFAULT_MARGIN, overheadBytes };
}

/** The agent's own floor for a stage loading a model file of `fileBytes`: its file stands for its weights. */
export function fileMemoryFloor(fileBytes: number): number {
  return Math.ceil(DEFAULT_MARGIN * fileBytes + DEFAULT_OVERHEAD_MB * MiB);
}

const mb = (b: number): string => `${Math.round(b / 1e6)} MB`;

/** The terms of the floor, for a message. */
export function describeFileFloor(fileBytes: number): string {
  return `${DEFAULT_MARGIN} × its model file ${mb(fileBytes)} + worker baseline ${mb(DEFAULT_OVERHEAD_MB * MiB)}`;
}

/** A stage on a host as admission sees it: what it was admitted with, what it holds now. */
export interface Admitted { name: string; estimateBytes: number; rssBytes: number | null }

/** A stage's claim on its host: the larger of its estimate and what it holds now. */
export function claimOf(s: Admitted): number {
  return Math.max(s.estimateBytes, s.rssBytes ?? 0);
}

/**
 * Whether a stage needing `needBytes` fits in `limitBytes` beside `running`: null when it does,
 * else the sentence saying why not, with the figures.
 */
export function admissionRefusal(stage: string, needBytes: number, why: string, limitBytes: number, limitSource: string, running: readonly Admitted[]): string | null {
  const held = running.reduce((n, s) => n + claimOf(s), 0);
  const left = limitBytes - held;
  if (needBytes <= left) return null;
  const each = running.map((s) => `${s.name} ${mb(claimOf(s))}`).join(', ');
  return `stage ${stage} does not fit in this host's memory: it needs ${mb(needBytes)} by kerf's memory model (${why}), ` +
    `but the host offers ${mb(limitBytes)} (${limitSource})${running.length ? ` and its ${running.length} running stage${running.length > 1 ? 's' : ''} hold${running.length > 1 ? '' : 's'} ${mb(held)} (${each})` : ''}: ` +
    `${mb(Math.max(0, left))} left`;
}

/** The terms of an estimate, for a message. */
export function describeStageMemory(m: StageMemory): string {
  return `${m.margin} × (weights ${mb(m.weightBytes)} + activations ${mb(m.activationBytes)}) + worker baseline ${mb(m.overheadBytes)}${m.wholeBytes ? ` + the whole model ${mb(m.wholeBytes)}` : ''}`;
}
