import { kerfError } from '../errors.js';
import type { Profile } from '../profile/types.js';
import { criteriaFromFlags, type CriteriaFlags } from './criteria.js';
import { problemFromProfiles } from './problem.js';
import { rankPlacements } from './search.js';
import type { Network, RankedPlacement, PlanTier } from './types.js';

/**
 * Python's `format(round(x, 4), '.4f')`: correctly rounded, exact halves to even.
 * (toFixed rounds exact halves up; a double is an exact half at the 5th decimal only when
 * x × 32 is an odd integer.)
 */
export function pyFixed4(x: number): string {
  const m = x * 32;
  if (!(Number.isInteger(m) && Math.abs(m) % 2 === 1)) return x.toFixed(4);
  const neg = x < 0;
  const s5 = Math.abs(x).toFixed(5); // exact: x has 5 decimals
  let n = BigInt(s5.replace('.', '')) / 10n;
  if (n % 2n === 1n) n += 1n;
  const digits = n.toString().padStart(5, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -4)}.${digits.slice(-4)}`;
}

/** One system as scission_predict.py loads it: a `.dat` file's tier, name and models. */
export interface ScissionSystemProfiles {
  tier: PlanTier;
  name: string;
  /** model name → imported profile */
  profiles: Map<string, Profile>;
  /** every model the file holds, when `profiles` holds only some */
  models?: string[];
}

/** scission_predict.py's arguments beyond the folder and network file. */
export interface ScissionArgs extends CriteriaFlags {
  model: string;
  resultCount?: number | undefined;
  /** input size in MB (default 0.15) */
  inputMB?: number | undefined;
}

/** Format one placement as a scission_predict.py result line (without the `[n] ` prefix). */
export function scissionLine(p: RankedPlacement): string {
  const part = (label: string, i: number): string => {
    const t = p.tiers[i]!;
    const name = t.system === null ? 'None' : t.system;
    const [a, b] = t.layers ?? [-1, -1];
    return `${label}(${name}) = ${a} - ${b}`;
  };
  return `${pyFixed4(p.totalS)}s - ${pyFixed4(p.bytesSent / 1000 / 1000)}MB - ` +
    `${part('Device', 0)}, ${part('Edge', 1)}, ${part('Cloud', 2)}`;
}

/**
 * The output lines of `scission_predict.py <folder> <network> <model> [flags]` (without its
 * chart), computed by kerf's exact search. `systems` in the order they were loaded.
 */
export function scissionPredict(systems: readonly ScissionSystemProfiles[], network: Network, args: ScissionArgs): string[] {
  const lines: string[] = [];
  const count = (t: PlanTier): number => systems.filter((s) => s.tier === t).length;
  lines.push(`[+] ${systems.length} systems loaded : ${count('device')} device, ${count('edge')} edge, ${count('cloud')} cloud`);
  const model = args.model.toLowerCase();
  const k = args.resultCount ?? 5;
  if (!Number.isInteger(k) || k < 1) throw kerfError('KERF_ERR_CRITERIA', `--result-count ${k}: expected a positive integer`);
  const criteria = criteriaFromFlags(args);
  if (systems.length === 0) return lines;
  const profiles: Profile[] = [];
  const labels: string[] = [];
  for (const s of systems) {
    const p = s.profiles.get(model);
    if (!p) {
      const known = [...(s.models ?? s.profiles.keys())].sort().join(', ');
      throw kerfError('KERF_ERR_PLAN', `unknown model '${args.model}': ${s.tier}-${s.name}.dat has ${known || 'no models'}`);
    }
    profiles.push(p);
    labels.push(`${s.tier}-${s.name}.dat`);
  }
  for (const s of systems) {
    const used = new Set(network.links.flatMap((l) => [l.from, l.to]));
    if (!used.has(s.name)) throw kerfError('KERF_ERR_NETWORK_FILE', `system '${s.name}' (${s.tier}-${s.name}.dat) is missing from the network file`);
  }
  // scission_predict.py builds scenarios only over full (device, edge, cloud) triples
  if (count('device') === 0 || count('edge') === 0 || count('cloud') === 0) {
    lines.push('No results for the specified configuration');
    return lines;
  }
  const inputBytes = (args.inputMB ?? 0.15) * 1000 * 1000;
  const problem = problemFromProfiles(profiles, model, { inputBytes, labels });
  const ranked = rankPlacements(problem, network, criteria, { topK: k, scissionQuirks: true });
  if (ranked.length === 0) {
    lines.push('No results for the specified configuration');
    return lines;
  }
  lines.push(`[+] ${model} results`);
  ranked.forEach((p, i) => lines.push(`[${i + 1}] ${scissionLine(p)}`));
  return lines;
}
