import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { kerfError } from '../errors.js';
import {
  deviceBytes, PLACE_MODELS, place, placeModelFromProfiles, placePareto, validateCluster, zooPlaceModel,
  type Cluster, type Placement, type PlaceModel, type PlaceOptions, type PlaceModelName, type SolverName,
} from '../plan/place/index.js';
import type { Profile } from '../profile/types.js';
import { parse } from './args.js';

const HELP = `usage: kerf place <model> --cluster c.yaml [--profile p.json ...] [options]

Place a model across a cluster of edge nodes as an N-stage pipeline that maximises
throughput (minimises the slowest stage or link). <model> is the ONNX file the profile
was made from, or a built-in name (${Object.keys(PLACE_MODELS).join(', ')}) costed from its
architecture at --gflops when no profile is given.

options:
  --cluster FILE        cluster file, kerf.cluster/v1 (YAML or JSON)            (required)
  --profile FILE        profile from \`kerf profile\` (repeat: nodes naming a system use its profile)
  --max-stages K        at most K stages (default: number of nodes)
  --objective NAME      throughput (compute and links, default) | comm (links only)
  --solver NAME         auto (exact up to 12 nodes, default) | exact | scalable | greedy | random
  --time-limit S        seconds the exact solver may take before returning its best with the
                        proven gap (default 10)
  --margin X            memory margin on weights + activations (default 1.1)
  --overhead-mb M       runtime memory per stage, MB (default 88: a measured Node.js + onnxruntime
                        worker; plus the session overhead the profile measured, when it did)
  --gflops G            node speed for built-in models, GFLOP/s (default 8)
  --seed N              seed of the random baseline (default 1)
  --codecs SET          codecs a hop may use where the profiles measured them (kerf profile
                        --codecs): none (default) | lossless | lossy | LIST; the cheapest per hop
                        (encode + bytes ÷ bandwidth + decode), the result's return lossless only
  --pareto              also print and write (field "pareto") every placement no other beats on
                        latency, bottleneck and bytes leaving the entry, each codec of --codecs
                        tried on the entry's hop (exact, by enumeration; needs an entry)
  --json                print the placement as JSON
  -o, --output FILE     write the placement (kerf.placement/v1) to FILE
`;

const OPTIONS = {
  cluster: { type: 'string' },
  profile: { type: 'string', multiple: true },
  'max-stages': { type: 'string' },
  objective: { type: 'string' },
  solver: { type: 'string' },
  'time-limit': { type: 'string' },
  margin: { type: 'string' },
  'overhead-mb': { type: 'string' },
  gflops: { type: 'string' },
  seed: { type: 'string' },
  codecs: { type: 'string' },
  pareto: { type: 'boolean' },
  json: { type: 'boolean' },
  output: { type: 'string', short: 'o' },
} as const;

function num(v: string | undefined, flag: string, min: number, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < min || (integer && !Number.isInteger(x))) {
    throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected ${integer ? 'an integer' : 'a number'} >= ${min}`);
  }
  return x;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${file}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Read and validate a cluster file (YAML or JSON). */
export async function loadCluster(file: string): Promise<Cluster> {
  const text = readText(file, 'the cluster file');
  const { parse: parseYaml } = await import('yaml');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw kerfError('KERF_ERR_PLACE', `${file}: not valid YAML or JSON (${(e as Error).message.split('\n')[0]})`);
  }
  return validateCluster(doc, file);
}

function loadProfile(file: string): Profile {
  const text = readText(file, 'the profile');
  let p: Profile;
  try {
    p = JSON.parse(text) as Profile;
  } catch (e) {
    throw kerfError('KERF_ERR_PROFILE', `${file}: not valid JSON (${(e as Error).message})`);
  }
  if (p?.schema !== 'kerf.profile/v1') throw kerfError('KERF_ERR_PROFILE', `${file}: field 'schema' must be 'kerf.profile/v1'`);
  if (!Array.isArray(p.blocks) || p.blocks.length === 0) throw kerfError('KERF_ERR_PROFILE', `${file}: field 'blocks' must be a non-empty list`);
  if (typeof p.system?.name !== 'string') throw kerfError('KERF_ERR_PROFILE', `${file}: field 'system.name' is missing`);
  return p;
}

export function loadModel(modelArg: string, profiles: string[] | undefined, gflops: number | undefined): PlaceModel {
  if (!profiles || profiles.length === 0) {
    if (modelArg in PLACE_MODELS) return zooPlaceModel(modelArg as PlaceModelName, gflops ?? 8);
    throw kerfError('KERF_ERR_USAGE', `--profile is required for '${modelArg}' (or name a built-in model: ${Object.keys(PLACE_MODELS).join(', ')})`);
  }
  const ps = profiles.map(loadProfile);
  if (existsSync(modelArg)) {
    const sha = ps[0]!.model.sha256;
    if (sha) {
      const got = createHash('sha256').update(readFileSync(modelArg)).digest('hex');
      if (got !== sha) throw kerfError('KERF_ERR_PROFILE', `${profiles[0]}: profiled a model with sha256 ${sha.slice(0, 12)}…, but ${modelArg} has ${got.slice(0, 12)}…`);
    }
  } else if (!(modelArg in PLACE_MODELS) && modelArg !== ps[0]!.model.name) {
    throw kerfError('KERF_ERR_FILE', `${modelArg}: no such model file`);
  }
  return placeModelFromProfiles(ps);
}

const ms = (s: number): string => (s === Infinity ? 'inf' : s >= 10 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(1)} ms`);
const mb = (b: number): string => (b / 2 ** 20).toFixed(1);

/** The codec of the link from → to ('none' when raw), with its ratio, as plans show it. */
function codecOf(p: Placement, from: string, to: string | null): string {
  const l = p.links.find((x) => x.from === from && x.to === to);
  if (!l) return '-';
  return l.codec ? `${l.codec}${l.lossy ? ' (lossy)' : ''} ${l.ratio!.toFixed(2)}×` : 'none';
}

/** A table of a placement front: latency, bottleneck, bytes leaving the entry and its codec, stages. */
export function formatPlaceFront(front: readonly Placement[]): string {
  const rows = [['#', 'latency', 'bottleneck', 'req/s', 'entry sends', 'entry hop codec', 'stages']];
  front.forEach((p, i) => {
    const first = p.links.find((l) => l.kind !== 'return' && l.from === p.entry);
    rows.push([String(i + 1), ms(p.latency), ms(p.bottleneck.seconds), p.throughput === Infinity ? 'inf' : p.throughput.toFixed(1), `${(deviceBytes(p) / 1000).toFixed(1)} kB`,
      first ? codecOf(p, first.from, first.to) : '-', p.stages.map((s) => `${s.node} ${s.blocks.first}-${s.blocks.last}`).join(' → ')]);
  });
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => '  ' + r.map((x, c) => x.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

/** Human-readable report of a placement. */
export function formatPlacement(p: Placement): string {
  const lines: string[] = [];
  lines.push(`${p.model.name}: ${p.stages.length} stage${p.stages.length > 1 ? 's' : ''}, entry ${p.entry ?? '(none)'}, objective ${p.objective}, solver ${p.solver}${p.optimal ? ' (proven optimal)' : ''}`);
  const rows = [['stage', 'node', 'blocks', 'cuts', 'memory MB', 'compute', 'stage time', 'send', 'to', 'codec']];
  for (const s of p.stages) {
    rows.push([
      String(s.index), s.node, `${s.blocks.first}-${s.blocks.last}`, `${s.cutIn ?? 'in'}→${s.cutOut ?? 'out'}`,
      `${mb(s.memoryBytes)}/${mb(s.memoryLimitBytes)}`, ms(s.computeSeconds), ms(s.computeSeconds + (s.overheadSeconds ?? 0) + s.wireSeconds), s.sendTo && s.sendTo !== s.node ? ms(s.sendSeconds) : '-', s.sendTo ?? '-',
      codecOf(p, s.node, s.sendTo),
    ]);
  }
  const first = p.links.find((l) => l.bytes === p.model.inputBytes && l.to === p.stages[0]!.node && l.from === p.entry);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) lines.push('  ' + r.map((x, c) => x.padEnd(widths[c]!)).join('  ').trimEnd());
  if (p.gateway) lines.push(`  gateway on ${p.gateway.node}: ${ms(p.gateway.seconds)}`);
  if (first) lines.push(`  input ${p.entry} → ${first.to}: ${ms(first.seconds)}`);
  lines.push(`bottleneck ${ms(p.bottleneck.seconds)} (${p.bottleneck.kind}: ${p.bottleneck.where}) → ${p.throughput === Infinity ? 'unbounded' : p.throughput.toFixed(2)} req/s; latency ${ms(p.latency)}`);
  lines.push(`lower bound ${ms(p.lowerBound)}, gap ${(p.gap * 100).toFixed(1)}%${p.solveSeconds !== undefined ? `; solved in ${p.solveSeconds.toFixed(3)} s` : ''}`);
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number | void> {
  const parsed = parse(argv, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: v, positionals } = parsed;
  if (positionals.length !== 1) throw kerfError('KERF_ERR_USAGE', `expected one model\n${HELP.trimEnd()}`);
  if (!v.cluster) throw kerfError('KERF_ERR_USAGE', `--cluster is required\n${HELP.trimEnd()}`);
  const objective = v.objective ?? 'throughput';
  if (objective !== 'throughput' && objective !== 'comm') throw kerfError('KERF_ERR_USAGE', `--objective '${objective}': expected throughput or comm`);
  const solver = (v.solver ?? 'auto') as SolverName;
  if (!['auto', 'exact', 'scalable', 'greedy', 'random'].includes(solver)) {
    throw kerfError('KERF_ERR_USAGE', `--solver '${solver}': expected auto, exact, scalable, greedy or random`);
  }
  const timeLimit = num(v['time-limit'], '--time-limit', 0) ?? 10;
  const margin = num(v.margin, '--margin', 1);
  const overheadMB = num(v['overhead-mb'], '--overhead-mb', 0);
  const maxStages = num(v['max-stages'], '--max-stages', 1, true);
  const seed = num(v.seed, '--seed', 0, true);
  const gflops = num(v.gflops, '--gflops', 1e-6);
  const cluster = await loadCluster(v.cluster);
  const model = loadModel(positionals[0]!, v.profile, gflops);
  let codecs = {};
  if (v.codecs !== undefined) {
    const { codecOptions } = await import('./plan.js');
    codecs = await codecOptions(v.codecs, Object.values(model.codecs ?? {}).map((c) => ({ codecs: c })));
  }
  const t0 = performance.now();
  const deadline = t0 + timeLimit * 1000;
  const common: PlaceOptions = {
    objective: objective as PlaceOptions['objective'], ...codecs,
    ...(maxStages !== undefined ? { maxStages } : {}),
    memory: { ...(margin !== undefined ? { margin } : {}), ...(overheadMB !== undefined ? { overheadMB } : {}) },
  };
  const best = place(model, cluster, { ...common, solver, shouldStop: () => performance.now() > deadline, ...(seed !== undefined ? { seed } : {}) });
  const solveSeconds = (performance.now() - t0) / 1000;
  const pareto = v.pareto ? placePareto(model, cluster, common).front : undefined;
  const p: Placement = { ...best, solveSeconds, ...(pareto ? { pareto } : {}) };
  const json = JSON.stringify(p, null, 2) + '\n';
  if (v.output) {
    try {
      writeFileSync(v.output, json);
    } catch (e) {
      throw kerfError('KERF_ERR_FILE', `${v.output}: cannot write the placement (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  if (v.json) process.stdout.write(json);
  else {
    process.stdout.write(`${formatPlacement(p)}\n`);
    if (pareto) process.stdout.write(`Pareto front: ${pareto.length} placement${pareto.length === 1 ? '' : 's'} no other beats on latency, bottleneck and bytes leaving ${p.entry}\n${formatPlaceFront(pareto)}\n`);
    if (v.output) process.stdout.write(`wrote ${v.output}\n`);
  }
  if (!p.optimal && p.solver === 'exact') process.stderr.write(`kerf: time limit reached; best found is within ${(p.gap * 100).toFixed(1)}% of the proven bound\n`);
}
