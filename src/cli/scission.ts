import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { kerfError } from '../errors.js';
import { parseScissionBenchmark, scissionFileSystem, scissionToProfiles, type ScissionSystem } from '../profile/scission.js';
import { parseNetworkCsv } from '../plan/network.js';
import { scissionPredict, type ScissionSystemProfiles } from '../plan/scission.js';
import type { Profile } from '../profile/types.js';
import { parse } from './args.js';

const HELP = `usage: kerf scission <benchmark_folder> <network_stats.csv> <model> [criteria]

Scission's scission_predict.py, same output line for line (without its chart), read straight
from the .dat benchmark files. The network file is looked up in the current directory, then
in the benchmark folder (where Scission looks).

  --result-count N        results to show (default 5)
  -i, --input MB          input size sent when the device runs nothing (default 0.15)
  -d, --device LIST       device criteria: N, !N, NAME, !NAME, -1 (unused), !-1 (used)
  --device-upload MB      device upload limit
  --device-time S|x%      device time limit, seconds or % of the total processing time
  -e, --edge LIST         edge criteria (as -d)
  --edge-upload MB        edge upload limit
  --edge-time S|x%        edge time limit
  -c, --cloud LIST        cloud criteria (as -d)
  --cloud-time S|x%       cloud time limit
`;

/** Scission's query flags; `kerf plan` takes the same ones and more. */
export const SCISSION_OPTIONS = {
  'result-count': { type: 'string' },
  input: { type: 'string', short: 'i' },
  device: { type: 'string', short: 'd' },
  'device-upload': { type: 'string' },
  'device-time': { type: 'string' },
  edge: { type: 'string', short: 'e' },
  'edge-upload': { type: 'string' },
  'edge-time': { type: 'string' },
  cloud: { type: 'string', short: 'c' },
  'cloud-time': { type: 'string' },
} as const;
const OPTIONS = SCISSION_OPTIONS;

/**
 * argparse takes `-d -1` (a value that looks like a negative number); node's parseArgs does not, so join
 * such values to their flag first.
 */
export function joinNegativeValues(argv: string[], options: Record<string, { type: string; short?: string }>): string[] {
  const takes = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== 'string') continue;
    takes.add(`--${name}`);
    if (o.short) takes.add(`-${o.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (takes.has(a) && next !== undefined && /^-\d+$|^-\d*\.\d+$/.test(next)) {
      out.push(a.startsWith('--') ? `${a}=${next}` : `${a}${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function num(v: string | undefined, flag: string, int = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.trim());
  if (v.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n))) {
    throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected ${int ? 'an integer' : 'a number'}`);
  }
  return n;
}

/**
 * Parsed .dat files are cached as JSON under ~/.cache/kerf/scission (KERF_CACHE_DIR overrides;
 * KERF_CACHE_DIR=off disables), keyed by the sha256 of the file's bytes — as Python keeps
 * __pycache__: a query re-reads five pickles every time, and in a fresh process the pickle
 * reader is not yet compiled. A stale or unreadable cache entry is ignored and rewritten.
 */
function cachedParse(bytes: Buffer, fileName: string, onlyModel?: string): ScissionSystem {
  const root = process.env.KERF_CACHE_DIR ?? join(homedir(), '.cache', 'kerf');
  if (root === 'off') return parseScissionBenchmark(bytes, fileName, onlyModel);
  const key = createHash('sha256').update(bytes).digest('hex').slice(0, 32);
  const file = join(root, 'scission', `${key}.json`);
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as { v: number; fileName: string; tier: ScissionSystem['tier']; name: string; models: [string, ScissionSystem['models'] extends Map<string, infer V> ? V : never][] };
    if (j.v === 1 && j.fileName === fileName) return { tier: j.tier, name: j.name, models: new Map(j.models) } as ScissionSystem;
  } catch { /* miss */ }
  const sys = parseScissionBenchmark(bytes, fileName);
  try {
    mkdirSync(join(root, 'scission'), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ v: 1, fileName, tier: sys.tier, name: sys.name, models: [...sys.models] }));
    renameSync(tmp, file);
  } catch { /* a read-only home still answers the query */ }
  return sys;
}

/**
 * Load every `*-*.dat` of a Scission benchmark folder, in name order; with `onlyModel`,
 * convert just that model to a profile (the others are listed by name).
 */
export function loadScissionFolder(dir: string, onlyModel?: string): ScissionSystemProfiles[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw kerfError('KERF_ERR_FILE', `${dir}: no such benchmark folder`);
  const systems: ScissionSystemProfiles[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!scissionFileSystem(f)) continue;
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(dir, f));
    } catch (e) {
      throw kerfError('KERF_ERR_FILE', `${join(dir, f)}: ${(e as Error).message}`);
    }
    const sys = cachedParse(bytes, f, onlyModel);
    const models = [...sys.models.keys()];
    if (onlyModel !== undefined) {
      const only = sys.models.get(onlyModel);
      sys.models = new Map(only ? [[onlyModel, only]] : []);
    }
    const profiles = new Map<string, Profile>();
    for (const p of scissionToProfiles(sys)) profiles.set(p.model.name, p);
    systems.push({ tier: sys.tier, name: sys.name, profiles, models });
  }
  return systems;
}

export async function run(argv: string[]): Promise<number | void> {
  const parsed = parse(joinNegativeValues(argv, OPTIONS), OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: v, positionals } = parsed;
  if (positionals.length !== 3) throw kerfError('KERF_ERR_USAGE', `expected <benchmark_folder> <network_stats.csv> <model>\n${HELP.trimEnd()}`);
  const [folder, netFile, model] = positionals as [string, string, string];
  const systems = loadScissionFolder(folder, model.toLowerCase());
  if (systems.length === 0) {
    process.stdout.write('[+] No .dat benchmark files stored in benchmark_data. Exiting...\n');
    return 0;
  }
  const netPath = existsSync(netFile) ? netFile : join(folder, netFile);
  let text: string;
  try {
    text = readFileSync(netPath, 'utf8');
  } catch {
    throw kerfError('KERF_ERR_FILE', `${netFile}: network file not found (looked in . and ${folder})`);
  }
  const network = parseNetworkCsv(text, netPath); // Scission reads it as CSV whatever its name
  const lines = scissionPredict(systems, network, {
    model,
    resultCount: num(v['result-count'], '--result-count', true),
    inputMB: num(v.input, '-i/--input'),
    device: v.device,
    edge: v.edge,
    cloud: v.cloud,
    deviceUpload: v['device-upload'],
    edgeUpload: v['edge-upload'],
    deviceTime: v['device-time'],
    edgeTime: v['edge-time'],
    cloudTime: v['cloud-time'],
  });
  process.stdout.write(lines.join('\n') + '\n');
}
