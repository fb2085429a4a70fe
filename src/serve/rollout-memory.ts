/**
 * Rollout: load the new version beside the old one where memory allows, else stage by stage.
 *
 * Pure: what each tier's host reports (resident memory of its stages, the memory it declares it
 * offers — `--memory-mb`, the hosts file's memoryMB —, and what its machine has free now) and an
 * estimate of what loading the new version's part beside the old costs there, in; the way to
 * take and why, out. The estimate is the placement's memory model (src/plan/place: margin ×
 * (weights + peak activation)) plus what a second version on a thread of its own costs a
 * process beyond its session (a JavaScript environment, onnxruntime's arenas), plus the new
 * model file's bytes where a tier prepares the whole model to slice its part from it.
 */
import type { Analysis } from '../graph/cuts.js';

/** The placement memory model's margin over weights + activations (src/plan/place DEFAULT_MARGIN). */
export const MEMORY_MARGIN = 1.1;
/** A version loaded on a thread of its own, beyond its session: measured 15–54 MB per tier with
 * mobilenet_v2 parts (`kerf bench rollout`, `--back`, where no tier prepares the model again). */
export const THREAD_OVERHEAD_BYTES = 48 * 2 ** 20;

/** One tier as its process reports it (worker `info` → `memory`). */
export interface TierMemory {
  tier: string;
  /** the host it runs on (tiers of one host share its memory) */
  host: string;
  /** its process's resident memory now */
  rssBytes: number;
  /** memory its host offers stages, as declared (null: not declared) */
  limitBytes: number | null;
  /** memory its machine has available now (MemAvailable; null: unknown) */
  availableBytes: number | null;
  /** the estimated cost of loading the new version's part beside the old here */
  besideBytes: number;
}

export interface HostVerdict {
  host: string;
  tiers: string[];
  usedBytes: number;
  besideBytes: number;
  limitBytes: number | null;
  availableBytes: number | null;
  fits: boolean;
}

/** Which way a rollout went and why. */
export interface RolloutWay {
  way: 'beside' | 'stage-by-stage';
  /** asked for (`stageByStage` / `beside`) or chosen from the hosts' memory */
  chosen: 'asked' | 'memory';
  reason: string;
  hosts: HostVerdict[];
}

const mb = (b: number): string => `${Math.round(b / 1e6)} MB`;

/** Estimated bytes of loading the part between cut ids `start` and `end` (null: the model's ends) beside the old version. */
export function besideEstimate(a: Analysis, start: number | null, end: number | null, fileBytes: number, prepares: boolean): number {
  const cut = (id: number | null) => (id === null ? null : a.cuts.find((c) => c.id === id) ?? null);
  const s = cut(start), e = cut(end);
  const params = (s ? s.paramsAfter : a.totals.params) - (e ? e.paramsAfter : 0);
  const weights = a.totals.params > 0 ? (a.totals.paramBytes * Math.max(0, params)) / a.totals.params : 0;
  // Peak activation: the largest tensor set crossing a cut inside the part, in and out.
  let act = Math.max(a.totals.inputBytes, a.totals.outputBytes);
  for (const c of a.cuts) if ((start === null || c.id >= start) && (end === null || c.id <= end)) act = Math.max(act, c.bytes);
  return Math.ceil(MEMORY_MARGIN * (weights + 2 * act) + THREAD_OVERHEAD_BYTES + (prepares ? fileBytes : 0));
}

/**
 * Beside on every host whose stages' resident memory plus the new parts' fits in what it
 * declares, and whose machine has the new parts' memory available; stage by stage otherwise
 * (or when asked). Hosts that report nothing about their memory are assumed to fit.
 */
export function chooseRolloutWay(tiers: readonly TierMemory[], asked?: 'beside' | 'stage-by-stage'): RolloutWay {
  const byHost = new Map<string, HostVerdict>();
  for (const t of tiers) {
    const h = byHost.get(t.host) ?? { host: t.host, tiers: [], usedBytes: 0, besideBytes: 0, limitBytes: null, availableBytes: null, fits: true };
    h.tiers.push(t.tier);
    h.usedBytes += t.rssBytes;
    h.besideBytes += t.besideBytes;
    if (t.limitBytes !== null) h.limitBytes = h.limitBytes === null ? t.limitBytes : Math.min(h.limitBytes, t.limitBytes);
    if (t.availableBytes !== null) h.availableBytes = h.availableBytes === null ? t.availableBytes : Math.min(h.availableBytes, t.availableBytes);
    byHost.set(t.host, h);
  }
  const hosts = [...byHost.values()];
  const why: string[] = [];
  for (const h of hosts) {
    if (h.limitBytes !== null && h.usedBytes + h.besideBytes > h.limitBytes) {
      h.fits = false;
      why.push(`${h.host}: ${mb(h.usedBytes)} in use + ${mb(h.besideBytes)} for the new version > ${mb(h.limitBytes)} it offers`);
    } else if (h.availableBytes !== null && h.besideBytes > h.availableBytes) {
      h.fits = false;
      why.push(`${h.host}: ${mb(h.besideBytes)} for the new version > ${mb(h.availableBytes)} available on its machine`);
    }
  }
  if (asked) {
    return { way: asked, chosen: 'asked', hosts, reason: asked === 'beside' ? `beside, as asked${why.length ? ` (though ${why.join('; ')})` : ''}` : 'stage by stage, as asked' };
  }
  if (why.length) return { way: 'stage-by-stage', chosen: 'memory', hosts, reason: `two versions do not fit side by side: ${why.join('; ')}` };
  const tight = hosts.filter((h) => h.limitBytes !== null).map((h) => `${h.host} ${mb(h.usedBytes + h.besideBytes)} of ${mb(h.limitBytes!)}`);
  return { way: 'beside', chosen: 'memory', hosts, reason: `both versions fit side by side${tight.length ? ` (${tight.join(', ')})` : ''}` };
}

/** What a stage's process declares about its host's memory (`kerf worker --host-name --memory-mb`). */
export interface HostMemoryDecl {
  /** the host it runs on (default: this machine's hostname) */
  host?: string;
  /** memory its host offers stages, MB (the agent's --memory-mb) */
  limitMB?: number;
}

/** What a process reports (worker `info` → `memory`): the shell around `chooseRolloutWay`. */
export interface MemoryReport { host: string; rssBytes: number; limitBytes: number | null; availableBytes: number | null }

export async function memoryReport(decl: HostMemoryDecl | undefined): Promise<MemoryReport> {
  const [{ hostname }, { readFile }] = await Promise.all([import('node:os'), import('node:fs/promises')]);
  let available: number | null = null;
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(await readFile('/proc/meminfo', 'utf8'));
    if (m) available = Number(m[1]) * 1024;
  } catch { /* not Linux: unknown */ }
  return { host: decl?.host ?? hostname(), rssBytes: process.memoryUsage.rss(), limitBytes: decl?.limitMB !== undefined ? decl.limitMB * 1e6 : null, availableBytes: available };
}
