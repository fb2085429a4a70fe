import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kerfError } from '../errors.js';
import { parse, parseInputShapes, requireOne } from './args.js';
import { fmtBytes, fmtSeconds, Progress, table } from './format.js';
import type { Model } from '../graph/model.js';
import type { Profile } from '../profile/types.js';
import type { ProfileOptions } from '../profile/profile.js';

const HELP = `usage: kerf profile <model.onnx | zoo:NAME> --system NAME --tier device|edge|cloud|none [options]

Time every block of the model on this machine (or on a remote \`kerf agent\`) and write
<model>.<system>.profile.json. Block times come from onnxruntime's per-node profile of
whole-model runs (or one session per block, --method sessions); the whole model is timed
unsplit in the same rounds, and a profile whose blocks do not add up to it (within
--tolerance) is measured again, then refused.
  --system NAME          name of the system measured (required unless --remote)
  --tier T               device, edge or cloud: where kerf plan may place this system (required;
                         none: a profile for kerf place, which takes nodes from a cluster file)
  --cpus F               hold the timing to F of one core (cgroup v1 CFS quota, as kerf up does for
                         tiers), to emulate a slower system on this one; blocks are timed at full
                         speed and scaled by the whole model's slowdown under the quota
  --threads N            intra-op threads of every session (default 1)
  --granularity G        blocks between single-tensor cuts (default, as Scission) or between all cuts
  --repeats R            timed runs of each block and of the whole model (default 10)
  --warmup W             untimed runs first (default 2)
  --input-shape N=DxD…   concrete shape of a dynamic input (repeatable)
  --nodes                add a per-node breakdown from onnxruntime's profiler
  --method M             trace (default: onnxruntime's per-node profile of whole-model runs) or
                         sessions (one session per block, each run's fixed cost taken off)
  --tolerance F          how far (blocks + one run's overhead) / whole may be from 1 (default 0.1)
  --optimization O       onnxruntime graph optimisation: disabled (default), basic, extended, all
  --seed S               seed of the random input (default 0)
  --codecs LIST          also measure codecs on every cut's crossing tensors: ratio, encode and
                         decode time here (lossless, lossy or names, e.g. zstd-1,int8+zstd-1)
  -o, --out DIR          where to write the profile (default .; with --json, only if given)
  --json                 print the profile as JSON on stdout, no table or progress bar
  --remote URL           profile on a \`kerf agent\` (e.g. http://pi4.local:7700)
  --token T              the agent's token (or env KERF_AGENT_TOKEN)`;

const OPTIONS = {
  system: { type: 'string' }, tier: { type: 'string' }, threads: { type: 'string' }, granularity: { type: 'string' },
  repeats: { type: 'string' }, warmup: { type: 'string' }, 'input-shape': { type: 'string', multiple: true },
  nodes: { type: 'boolean' }, method: { type: 'string' }, optimization: { type: 'string' }, seed: { type: 'string' },
  order: { type: 'string' }, out: { type: 'string', short: 'o' }, json: { type: 'boolean' },
  remote: { type: 'string' }, token: { type: 'string' }, codecs: { type: 'string' }, cpus: { type: 'string' }, tolerance: { type: 'string' },
} as const;

function int(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw kerfError('KERF_ERR_USAGE', `--${flag} '${v}': expected a whole number ≥ ${min}`);
  return Number(v);
}

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, OPTIONS, HELP);
  if (!a) return 0;
  const src = requireOne(a.positionals, 'model (file.onnx or zoo:NAME)', HELP);
  const v = a.values;
  const remote = v.remote;
  if (!v.system && !remote) throw kerfError('KERF_ERR_USAGE', `--system NAME is required (the name this machine has in your plans)\n${HELP}`);
  if (v.tier === undefined) throw kerfError('KERF_ERR_USAGE', "--tier is required: device, edge or cloud (the tier kerf plan may place this system on), or none for a profile only kerf place reads");
  if (!['device', 'edge', 'cloud', 'none'].includes(v.tier)) throw kerfError('KERF_ERR_USAGE', `--tier '${v.tier}': expected device, edge, cloud or none`);
  const share = (flag: 'cpus' | 'tolerance', lo: number, hi: number, what: string): number | undefined => {
    const x = v[flag];
    if (x === undefined) return undefined;
    const n = Number(x);
    if (x.trim() === '' || !(n >= lo && n <= hi)) throw kerfError('KERF_ERR_USAGE', `--${flag} '${x}': expected ${what}`);
    return n;
  };
  const cpus = share('cpus', 0.01, 1, 'a share of one core between 0.01 and 1');
  const tolerance = share('tolerance', 0.001, 100, 'a positive fraction (0.1 = 10%)');
  if (cpus !== undefined && remote) throw kerfError('KERF_ERR_USAGE', '--cpus holds this machine\'s profiling to a CPU share; it cannot be used with --remote');
  if (v.granularity && v.granularity !== 'single' && v.granularity !== 'all') throw kerfError('KERF_ERR_USAGE', `--granularity '${v.granularity}': expected single or all`);
  if (v.method && v.method !== 'sessions' && v.method !== 'trace') throw kerfError('KERF_ERR_USAGE', `--method '${v.method}': expected sessions or trace`);
  if (v.optimization && !['disabled', 'basic', 'extended', 'all'].includes(v.optimization)) throw kerfError('KERF_ERR_USAGE', `--optimization '${v.optimization}': expected disabled, basic, extended or all`);
  if (v.order && !['auto', 'file', 'depth', 'greedy'].includes(v.order)) throw kerfError('KERF_ERR_USAGE', `--order '${v.order}': expected auto, file, depth or greedy`);
  const common = {
    ...(v.tier !== 'none' ? { tier: v.tier as 'device' } : {}),
    ...(tolerance !== undefined ? { tolerance } : {}),
    ...(v.granularity ? { granularity: v.granularity as 'single' } : {}),
    ...(v.method ? { method: v.method as 'sessions' } : {}),
    ...(v.optimization ? { optimization: v.optimization as 'disabled' } : {}),
    ...(v.order ? { order: v.order as 'auto' } : {}),
    ...(v.nodes ? { nodes: true } : {}),
  };
  if (v.codecs !== undefined) {
    const { codecSet } = await import('../codec/index.js');
    (common as Record<string, unknown>).codecs = codecSet(v.codecs).map((c) => c.name).filter((c) => c !== 'none');
  }
  const nums = { repeats: int(v.repeats, 'repeats', 1), warmup: int(v.warmup, 'warmup', 1), threads: int(v.threads, 'threads', 1), seed: int(v.seed, 'seed', 0) };
  for (const [k, x] of Object.entries(nums)) if (x !== undefined) (common as Record<string, unknown>)[k] = x;
  const inputShapes = parseInputShapes(v['input-shape']);
  if (Object.keys(inputShapes).length) (common as Record<string, unknown>).inputShapes = inputShapes;

  const isZoo = src.startsWith('zoo:');
  const { basename } = await import('node:path');
  const name = isZoo ? src.slice(4) : basename(src).replace(/\.onnx$/i, '');
  let profile: Profile;
  if (remote) {
    const token = v.token ?? process.env.KERF_AGENT_TOKEN;
    if (!token) throw kerfError('KERF_ERR_USAGE', '--remote needs --token T (or env KERF_AGENT_TOKEN): the token the agent printed');
    const bytes = isZoo ? await zooBytes(name) : await fileBytes(src);
    const { profileRemote } = await import('../profile/agent.js');
    if (!v.json && process.stderr.isTTY) process.stderr.write(`profiling on ${remote} (${fmtBytes(bytes.byteLength)} uploaded)…\n`);
    profile = await profileRemote(remote, token, bytes, { ...common, ...(v.system ? { system: v.system } : {}), name });
    if (!isZoo) profile = { ...profile, model: { ...profile.model, file: src } };
  } else {
    const { profileModel } = await import('../profile/profile.js');
    const progress = new Progress(Boolean(v.json));
    let source: string | Model = src;
    if (isZoo) {
      const { parseModel } = await import('../graph/model.js');
      source = parseModel(await zooBytes(name), { name, source: src });
    }
    const opts: ProfileOptions = { ...common, ...(cpus !== undefined ? { cpus } : {}), system: v.system!, name, onProgress: (d, t, l) => progress.update(d, t, l) };
    try { profile = await profileModel(source, opts); } finally { progress.done(); }
  }

  const file = join(v.out ?? '.', `${profile.model.name}.${profile.system.name}.profile.json`);
  const write = !v.json || v.out !== undefined;
  if (write) {
    try {
      mkdirSync(v.out ?? '.', { recursive: true });
      writeFileSync(file + '.tmp', JSON.stringify(profile, null, 2) + '\n');
      renameSync(file + '.tmp', file);
    } catch (e) {
      throw kerfError('KERF_ERR_FILE', `${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  if (v.json) {
    process.stdout.write(JSON.stringify(profile, null, 2) + '\n');
    return 0;
  }
  process.stdout.write(summary(profile) + `\nwrote ${file}\n`);
  return 0;
}

async function zooBytes(name: string): Promise<Uint8Array> {
  const { zooModel } = await import('../zoo/index.js');
  return zooModel(name);
}

/** The model as one self-contained file: weights in external data files are inlined. */
async function fileBytes(file: string): Promise<Uint8Array> {
  const { loadModel } = await import('../graph/load.js');
  const { wholeBytes } = await import('../profile/profile.js');
  return wholeBytes(loadModel(file));
}

export function summary(p: Profile): string {
  const s = p.system;
  const out: string[] = [];
  out.push(`${p.model.name} on ${s.name}${s.tier ? ` (${s.tier})` : ''}: ${s.cpu ?? '?'}, ${s.cores ?? '?'} cores, ${fmtBytes(s.memoryBytes ?? NaN)}, ${s.threads ?? 1} thread(s)`);
  out.push(`${p.blocks.length} blocks at ${p.granularity} granularity; ${p.settings?.repeats ?? '?'} timed runs after ${p.settings?.warmup ?? '?'} warm-up (${p.settings?.method ?? '?'})`);
  out.push('');
  out.push(table(['block', 'layers', 'cut', 'median', 'p90', 'min', 'spread', 'output', 'params', 'memory'],
    p.blocks.map((b) => [b.index, b.firstLayer === b.lastLayer ? String(b.firstLayer) : `${b.firstLayer}-${b.lastLayer}`, b.cutId ?? '-',
      fmtSeconds(b.latency.median), fmtSeconds(b.latency.p90), fmtSeconds(b.latency.min), `${(b.latency.spread * 100).toFixed(0)}%${b.highSpread ? ' !' : ''}`,
      fmtBytes(b.outputBytes), fmtBytes(b.paramBytes), b.memoryBytes !== undefined ? fmtBytes(b.memoryBytes) : '-'])));
  out.push('');
  const sum = p.blocks.reduce((x, b) => x + b.latency.median, 0);
  if (p.whole) out.push(`whole model: median ${fmtSeconds(p.whole.latency.median)} (p90 ${fmtSeconds(p.whole.latency.p90)}); sum of blocks ${fmtSeconds(sum)}; block-sum/whole ${p.blockSumOverWhole?.toFixed(3)}`);
  const high = p.blocks.filter((b) => b.highSpread).length;
  if (high) out.push(`! ${high} block(s) with spread above 30%: the machine was busy or the block is tiny; re-run with more --repeats`);
  return out.join('\n');
}
