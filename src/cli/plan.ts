import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { kerfError } from '../errors.js';
import { criteriaFromFlags } from '../plan/criteria.js';
import { formatPlanTable, planDocument } from '../plan/document.js';
import { parseNetwork } from '../plan/network-yaml.js';
import { problemFromProfiles } from '../plan/problem.js';
import { rankPlacements, systemsMissingFromNetwork } from '../plan/search.js';
import type { PlanObjective } from '../plan/types.js';
import type { Profile } from '../profile/types.js';
import { parse } from './args.js';
import { joinNegativeValues, SCISSION_OPTIONS } from './scission.js';

const HELP = `usage: kerf plan <model | model.onnx> --profiles DIR --network FILE [criteria] [-o plan.json]

Rank placements of the model's blocks across device, edge and cloud from the profiles
<model>.<system>.profile.json in DIR (tier from each profile's system.tier) and a network
file (YAML/JSON links {from, to, rttMs, bandwidthMbps}, or Scission's network_stats.csv).
Prints a ranked table and writes the plan (kerf.plan/v1) for kerf split and serving. Given
the .onnx file, the plan records its path relative to the plan file and its sha256, so
kerf up plan.json works from any folder and refuses a different file at that path.

  --profiles DIR          profiles directory (required)
  --network FILE          network file (required)
  -o, --out FILE          plan file to write (default plan.json)
  --json                  print the plan document instead of the table
  --objective latency|throughput   rank by end-to-end latency (default) or pipeline bottleneck
  --return-result         charge the result's trip back along the chain to the device (each
                          hop's rtt stays paid once: half out, half back)
  --pareto                also print and write (plan.json "pareto") the placements no other
                          beats on latency, bottleneck and bytes leaving the device, every
                          codec of --codecs tried on the device's hop
  --result-count N        placements to rank (default 5)
  -i, --input MB          input size sent when the device runs nothing (default: profile, else 0.15)
  --load SYSTEM=F         multiply SYSTEM's compute times by F (repeatable)
  --privacy N             at least N blocks run on the device
  --max-memory TIER=MB    memory limit of a tier's blocks (repeatable)
  --codecs SET            compress hops where it pays: none (default), lossless, lossy (also
                          fp16/int8: changes answers) or a list such as zstd-1,lz4; each hop
                          priced encode + bytes ÷ bandwidth + decode from the profiles'
                          measurements (kerf profile --codecs; docs/codec.md)
Scission's criteria:
  -d/-e/-c LIST           per tier: N, !N (layer N there or not), NAME, !NAME, -1 (unused), !-1 (used)
  --device-upload MB, --edge-upload MB
  --device-time, --edge-time, --cloud-time  seconds or x% of the total compute
`;

const OPTIONS = {
  profiles: { type: 'string' },
  network: { type: 'string' },
  out: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  objective: { type: 'string' },
  'return-result': { type: 'boolean' },
  load: { type: 'string', multiple: true },
  privacy: { type: 'string' },
  'max-memory': { type: 'string', multiple: true },
  codecs: { type: 'string' },
  pareto: { type: 'boolean' },
  ...SCISSION_OPTIONS,
} as const;

/** `--codecs`: the codecs hops may use, from what the profiles measured. */
export async function codecOptions(text: string, systems: readonly { codecs?: import('../plan/codec-cost.js').SystemCodecs | undefined }[]): Promise<{ codecs: string[]; lossyCodecs: string[] }> {
  const { measuredCodecs } = await import('../plan/codec-cost.js');
  const { parseCodec } = await import('../codec/index.js');
  const measured = measuredCodecs(systems as readonly { codecs?: import('../plan/codec-cost.js').SystemCodecs }[]);
  const s = text.trim().toLowerCase();
  let names: string[];
  if (s === 'none') names = [];
  else if (s === 'lossless' || s === 'lossy') {
    names = measured.filter((m) => s === 'lossy' || !m.lossy).map((m) => m.name);
    if (names.length === 0) throw kerfError('KERF_ERR_USAGE', `--codecs ${s}: the profiles measured no ${s === 'lossy' ? '' : 'lossless '}codec; profile with kerf profile --codecs ${s}`);
  } else {
    names = s.split(',').map((c) => parseCodec(c.trim(), '--codecs entry').name).filter((c) => c !== 'none');
    for (const n of names) {
      if (!measured.some((m) => m.name === n)) throw kerfError('KERF_ERR_USAGE', `--codecs: no profile measured codec '${n}' (measured: ${measured.map((m) => m.name).join(', ') || 'none'}); profile with kerf profile --codecs ${n}`);
    }
  }
  return { codecs: names, lossyCodecs: measured.filter((m) => m.lossy).map((m) => m.name) };
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/** The profiles `<model>.<system>.profile.json` in `dir`, parsed. */
export function loadModelProfiles(dir: string, model: string): { profiles: Profile[]; files: string[] } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw kerfError('KERF_ERR_FILE', `${dir}: no such profiles directory`);
  const all = readdirSync(dir).filter((f) => f.endsWith('.profile.json')).sort();
  const files = all.filter((f) => f.startsWith(`${model}.`) && f.length > model.length + '.profile.json'.length + 1);
  if (files.length === 0) {
    const models = [...new Set(all.map((f) => f.split('.')[0]))].join(', ');
    throw kerfError('KERF_ERR_PROFILE', `unknown model '${model}': no ${model}.<system>.profile.json in ${dir}${models ? ` (profiles there are of: ${models})` : ''}`);
  }
  const profiles = files.map((f) => {
    const path = join(dir, f);
    try {
      return JSON.parse(readText(path)) as Profile;
    } catch (e) {
      if ((e as { code?: string }).code) throw e;
      throw kerfError('KERF_ERR_PROFILE', `${path}: not valid JSON (${(e as Error).message})`);
    }
  });
  return { profiles, files: files.map((f) => join(dir, f)) };
}

function keyValues(list: string[] | undefined, flag: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const kv of list ?? []) {
    const i = kv.lastIndexOf('=');
    const v = Number(kv.slice(i + 1));
    if (i <= 0 || kv.slice(i + 1).trim() === '' || !Number.isFinite(v) || v <= 0) {
      throw kerfError('KERF_ERR_USAGE', `${flag} '${kv}': expected SYSTEM=FACTOR with FACTOR > 0`);
    }
    out[kv.slice(0, i)] = v;
  }
  return out;
}

export async function run(argv: string[]): Promise<number | void> {
  const parsed = parse(joinNegativeValues(argv, OPTIONS), OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: v, positionals } = parsed;
  if (positionals.length !== 1) throw kerfError('KERF_ERR_USAGE', `expected one <model>\n${HELP.trimEnd()}`);
  if (!v.profiles) throw kerfError('KERF_ERR_USAGE', `--profiles DIR is required\n${HELP.trimEnd()}`);
  if (!v.network) throw kerfError('KERF_ERR_USAGE', `--network FILE is required\n${HELP.trimEnd()}`);
  const arg = positionals[0]!;
  const isFile = /\.onnx$/i.test(arg);
  const model = isFile ? basename(arg).replace(/\.onnx$/i, '') : arg;
  const objective = (v.objective ?? 'latency') as PlanObjective;
  if (objective !== 'latency' && objective !== 'throughput') throw kerfError('KERF_ERR_USAGE', `--objective '${v.objective}': expected latency or throughput`);
  const k = v['result-count'] === undefined ? 5 : Number(v['result-count']);
  if (!Number.isInteger(k) || k < 1) throw kerfError('KERF_ERR_USAGE', `--result-count '${v['result-count']}': expected a positive integer`);
  const inputMB = v.input === undefined ? undefined : Number(v.input);
  if (inputMB !== undefined && !(Number.isFinite(inputMB) && inputMB >= 0)) throw kerfError('KERF_ERR_USAGE', `-i/--input '${v.input}': expected megabytes`);

  const { profiles, files } = loadModelProfiles(v.profiles, model);
  const out = v.out ?? 'plan.json';
  // Recorded in the plan so it works from any folder and refuses another file at that path.
  let modelPath: string | undefined;
  let modelSha256: string | undefined;
  if (isFile) {
    if (!existsSync(arg)) throw kerfError('KERF_ERR_FILE', `${arg}: no such model file (give the .onnx file, or the model's name to plan from the profiles alone)`);
    const sha = createHash('sha256').update(readFileSync(arg)).digest('hex');
    profiles.forEach((p, i) => {
      if (p.model?.sha256 && p.model.sha256 !== sha) throw kerfError('KERF_ERR_PROFILE', `${files[i]}: profiles another file than ${arg} (sha256 differs)`);
    });
    modelSha256 = sha;
    modelPath = relative(dirname(resolve(out)), resolve(arg)).split(sep).join('/');
  } else {
    const shas = new Set(profiles.map((p) => p.model?.sha256));
    if (shas.size === 1 && [...shas][0]) modelSha256 = [...shas][0];
  }
  const problem = problemFromProfiles(profiles, model, {
    inputBytes: inputMB === undefined ? undefined : inputMB * 1000 * 1000,
    load: keyValues(v.load, '--load'),
    labels: files,
  });
  const network = parseNetwork(readText(v.network), v.network);
  const missing = systemsMissingFromNetwork(problem, network);
  if (missing.length) {
    throw kerfError('KERF_ERR_NETWORK_FILE', `${v.network}: no link mentions ${missing.map((m) => `${m.tier} system '${m.name}'`).join(', ')}`);
  }
  if (network.format === 'yaml') {
    // kerf's own network file describes these systems: a link from a system no profile defines is a typo.
    const profiled = new Set([...problem.device, ...problem.edge, ...problem.cloud].map((s) => s.name));
    network.links.forEach((l, i) => {
      for (const end of ['from', 'to'] as const) {
        if (!profiled.has(l[end])) {
          throw kerfError('KERF_ERR_NETWORK_FILE', `${v.network}: links[${i}].${end} '${l[end]}' is no profiled system (profiles of ${model} in ${v.profiles} are of: ${[...profiled].join(', ')})`);
        }
      }
    });
  }
  const criteria = criteriaFromFlags({
    device: v.device, edge: v.edge, cloud: v.cloud,
    deviceUpload: v['device-upload'], edgeUpload: v['edge-upload'],
    deviceTime: v['device-time'], edgeTime: v['edge-time'], cloudTime: v['cloud-time'],
    privacy: v.privacy, maxMemory: v['max-memory'],
  });
  const opts = { objective, topK: k, returnResult: v['return-result'] ?? false, ...(v.codecs !== undefined ? await codecOptions(v.codecs, [...problem.device, ...problem.edge, ...problem.cloud]) : {}) };
  const ranked = rankPlacements(problem, network, criteria, opts);
  if (ranked.length === 0) {
    process.stdout.write('No results for the specified configuration\n');
    return 1;
  }
  const given: Record<string, unknown> = {};
  for (const key of ['device', 'edge', 'cloud', 'device-upload', 'edge-upload', 'device-time', 'edge-time', 'cloud-time', 'privacy', 'max-memory', 'load', 'codecs'] as const) {
    if (v[key] !== undefined) given[key] = v[key];
  }
  const pareto = v.pareto ? (await import('../plan/pareto.js')).planPareto(problem, network, criteria, opts) : undefined;
  const doc = planDocument(ranked, network, {
    model, modelPath, modelSha256, objective, returnResult: opts.returnResult, inputBytes: problem.inputBytes, networkSource: v.network, criteria: given, pareto,
  });
  try {
    writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
  } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${out}: ${(e as Error).message}`);
  }
  if (v.json) process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  else {
    process.stdout.write(`${model}: ${problem.blocks} blocks, ${problem.device.length} device, ${problem.edge.length} edge, ${problem.cloud.length} cloud systems; objective ${objective}\n`);
    process.stdout.write(formatPlanTable(ranked, objective) + '\n');
    if (pareto) {
      const { formatParetoTable } = await import('../plan/pareto.js');
      process.stdout.write(`Pareto front: ${pareto.length} placement${pareto.length === 1 ? '' : 's'} no other beats on latency, bottleneck and bytes leaving the device\n${formatParetoTable(pareto)}\n`);
    }
    process.stdout.write(`plan written to ${out}\n`);
  }
}
