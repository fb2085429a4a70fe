import { kerfError } from '../errors.js';
import type { Profile } from '../profile/types.js';
import type { PlanProblem, SystemCost, PlanTier } from './types.js';
import { PLAN_TIERS } from './types.js';
import { tierTermsProblem, type TierTerms } from './cost.js';
import type { SystemCodecs } from './codec-cost.js';

/** Scission's default input: a 0.15 MB image. */
export const DEFAULT_INPUT_BYTES = 0.15 * 1000 * 1000;

export interface ProblemOptions {
  /** bytes the device sends when it runs nothing (default: the profiles' model.inputBytes, else 0.15 MB) */
  inputBytes?: number | undefined;
  /** per-system load factor multiplying its compute times (1 = as profiled) */
  load?: Record<string, number> | undefined;
  /** label of each profile in error messages (e.g. its file name), by position */
  labels?: string[] | undefined;
  /** per-system terms measured beside the profiles (e.g. the gateway's fixed time per request,
   * its wire CPU per byte); the call overhead comes from each profile's `callOverheadS` */
  terms?: Record<string, Omit<TierTerms, 'callOverheadS'>> | undefined;
}

/** A profile's codec measurements as per-codec, per-block arrays (NaN where a block lacks one);
 * times × `load`. The planner and the adapt controller read profiles' codecs with it. */
export function systemCodecs(p: Profile, L: number, load: number): SystemCodecs | undefined {
  const names: string[] = [];
  const lossy: boolean[] = [];
  for (const b of p.blocks) {
    for (const [n, m] of Object.entries(b.codecs ?? {})) if (!names.includes(n)) { names.push(n); lossy.push(Boolean(m.lossy)); }
  }
  if (names.length === 0) return undefined;
  const arr = (): Float64Array => new Float64Array(L).fill(NaN);
  const out: SystemCodecs = { names, lossy, ratio: names.map(arr), encodeS: names.map(arr), decodeS: names.map(arr) };
  p.blocks.forEach((b, i) => {
    names.forEach((n, k) => {
      const m = b.codecs?.[n];
      if (!m || !(m.ratio > 0) || !(m.encodeS >= 0) || !(m.decodeS >= 0)) return;
      out.ratio[k]![i] = m.ratio;
      out.encodeS[k]![i] = m.encodeS * load;
      out.decodeS[k]![i] = m.decodeS * load;
    });
  });
  return out;
}

/**
 * Turn the profiles of one model (one per system, tier from `system.tier`) into the
 * planner's numeric problem. Checks that every profile is of `model` and that all agree on
 * the blocks (count and layer ranges); the culprit is named in the error.
 */
export function problemFromProfiles(profiles: readonly Profile[], model: string, opts: ProblemOptions = {}): PlanProblem {
  if (profiles.length === 0) throw kerfError('KERF_ERR_PROFILE', `no profiles of model '${model}'`);
  const label = (i: number): string => opts.labels?.[i] ?? `profile of system '${profiles[i]!.system?.name}'`;
  const ref = profiles[0]!;
  const L = ref.blocks?.length ?? 0;
  if (L === 0) throw kerfError('KERF_ERR_PROFILE', `${label(0)}: no blocks`);
  const firstLayer = new Int32Array(L);
  const lastLayer = new Int32Array(L);
  const cutIds: (number | null)[] = [];
  for (let i = 0; i < L; i++) {
    const b = ref.blocks[i]!;
    firstLayer[i] = b.firstLayer;
    lastLayer[i] = b.lastLayer;
    cutIds.push(typeof b.cutId === 'number' ? b.cutId : null);
  }
  const byTier: Record<PlanTier, SystemCost[]> = { device: [], edge: [], cloud: [] };
  const seen = new Set<string>();
  profiles.forEach((p, pi) => {
    const where = label(pi);
    if (p.schema !== 'kerf.profile/v1') throw kerfError('KERF_ERR_PROFILE', `${where}: schema is ${JSON.stringify(p.schema)}, expected "kerf.profile/v1"`);
    if (p.model?.name?.toLowerCase() !== model.toLowerCase()) {
      throw kerfError('KERF_ERR_PROFILE', `${where}: is a profile of model '${p.model?.name}', not '${model}'`);
    }
    const tier = p.system?.tier;
    if (!tier || !PLAN_TIERS.includes(tier)) throw kerfError('KERF_ERR_PROFILE', `${where}: system.tier must be device, edge or cloud`);
    const name = p.system.name;
    if (typeof name !== 'string' || name === '') throw kerfError('KERF_ERR_PROFILE', `${where}: system.name is missing`);
    const key = `${tier}\u0000${name}`;
    if (seen.has(key)) throw kerfError('KERF_ERR_PROFILE', `${where}: a second ${tier} profile of system '${name}'`);
    seen.add(key);
    if (p.blocks.length !== L) {
      throw kerfError('KERF_ERR_PROFILE', `${where}: has ${p.blocks.length} blocks but ${label(0)} has ${L}: profiles of different models or granularities`);
    }
    const load = opts.load?.[name] ?? 1;
    const time = new Float64Array(L);
    const out = new Float64Array(L);
    const mem = new Float64Array(L);
    for (let i = 0; i < L; i++) {
      const b = p.blocks[i]!;
      if (b.firstLayer !== firstLayer[i] || b.lastLayer !== lastLayer[i]) {
        throw kerfError('KERF_ERR_PROFILE', `${where}: block ${i} spans layers ${b.firstLayer}-${b.lastLayer}, but ${label(0)} has ${firstLayer[i]}-${lastLayer[i]}`);
      }
      const t = b.latency?.median;
      if (typeof t !== 'number' || !(t >= 0) || !Number.isFinite(t)) throw kerfError('KERF_ERR_PROFILE', `${where}: block ${i} latency.median ${t} is not a non-negative number`);
      if (typeof b.outputBytes !== 'number' || !(b.outputBytes >= 0)) throw kerfError('KERF_ERR_PROFILE', `${where}: block ${i} outputBytes is not a non-negative number`);
      time[i] = load === 1 ? t : t * load;
      out[i] = b.outputBytes;
      mem[i] = b.memoryBytes ?? b.paramBytes ?? 0;
    }
    const given = opts.terms?.[name] ?? {};
    const terms: TierTerms = { ...given, ...(p.callOverheadS !== undefined ? { callOverheadS: p.callOverheadS * load } : {}) };
    const bad = tierTermsProblem(terms, where);
    if (bad) throw kerfError('KERF_ERR_PROFILE', bad);
    const codecs = systemCodecs(p, L, load);
    byTier[tier].push({ name, tier, time, out, mem, ...(Object.keys(terms).length ? { terms } : {}), ...(codecs ? { codecs } : {}) });
  });
  for (const s of Object.keys(opts.terms ?? {})) {
    if (![...seen].some((k) => k.endsWith(`\u0000${s}`))) throw kerfError('KERF_ERR_PLAN', `per-request terms given for system '${s}', which has no profile`);
  }
  for (const s of Object.keys(opts.load ?? {})) {
    if (!seen.has(`device\u0000${s}`) && !seen.has(`edge\u0000${s}`) && !seen.has(`cloud\u0000${s}`)) {
      throw kerfError('KERF_ERR_PLAN', `load factor given for system '${s}', which has no profile`);
    }
  }
  const inputBytes = opts.inputBytes ?? ref.model.inputBytes ?? DEFAULT_INPUT_BYTES;
  return { model, blocks: L, firstLayer, lastLayer, cutIds, inputBytes, ...byTier };
}
