/**
 * Time every block of a model on this machine. Two methods:
 * - `trace` (default): onnxruntime's per-node profiler over whole-model runs; a block's time is
 *   the sum of its nodes' kernel times. One session however many blocks.
 * - `sessions`: one onnxruntime session per block (the sub-model `kerf split` would write), each
 *   run on its real input, which the blocks before it produced from a seeded input. Each run's
 *   fixed cost (measured on a one-node model in the same rounds) is taken off every block: it is
 *   paid once per segment, not once per block, and the cost model adds it per segment
 *   (`callOverheadS`, src/plan/cost.ts). Left in, 49 blocks of MNASNet summed to 1.47× the whole.
 * Either way the whole model is also timed unsplit, in the same rounds, so block sums and the
 * whole are measured under the same conditions, and a block's time is its mean over the rounds
 * of median total (`typicalRounds`): per-block medians do not add up when pauses (other
 * processes, a CPU quota's throttling) land in a different block each round, and the planner
 * adds them. A profile whose blocks plus one run's overhead do not come within `tolerance` of
 * the whole is measured again, then refused (KERF_ERR_PROFILE), never written.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { kerfError } from '../errors.js';
import { blockCuts, blocksOf, type Block, type Granularity } from '../graph/cuts.js';
import { loadModel } from '../graph/load.js';
import { parseModel, type Model } from '../graph/model.js';
import { normalisedModel, rebuildModel, serializeModel, splitModel } from '../graph/slice.js';
import { prepareModel, type Prepared } from '../engine/prepare.js';
import { Session, ortVersion, type HostTensor, type Optimization } from '../engine/ort.js';
import { randomInputs } from '../engine/shapes.js';
import { OffLoopSession } from '../engine/compute.js';
import { ModelBuilder } from '../graph/builder.js';
import { normalisedBytes } from '../engine/verify.js';
import { HIGH_SPREAD, latencyStats, rss, systemInfo } from './measure.js';
import { parseOrtTrace, type TraceRun } from './trace.js';
import { PROFILE_SCHEMA, type BlockCodec, type BlockProfile, type Profile, type SystemInfo } from './types.js';
import { parseCodec } from '../codec/index.js';
import { measureCodec, type CodecSample } from '../codec/measure.js';
import { dtypeSize } from '../graph/dtypes.js';

export type ProfileMethod = 'sessions' | 'trace';

/** Options of `profileModel`. */
export interface ProfileOptions {
  /** name of the system measured (the profile's `system.name`) */
  system: string;
  tier?: 'device' | 'edge' | 'cloud';
  /** intra-op threads of every session (default 1) */
  threads?: number;
  /** block boundaries: Scission's single-tensor cuts (default) or every cut */
  granularity?: Granularity;
  /** timed runs of each block and of the whole model (default 10) */
  repeats?: number;
  /** untimed runs before timing (default 2; the first also produces each block's real input) */
  warmup?: number;
  /** concrete shapes of dynamic inputs */
  inputShapes?: Record<string, number[]>;
  /** add a per-node breakdown from onnxruntime's profiler to every block */
  nodes?: boolean;
  /** seed of the random input (default 0) */
  seed?: number;
  /** how block times are taken (default trace) */
  method?: ProfileMethod;
  /** how far (blocks + one run's overhead) / whole may be from 1 before the profile is measured
   * again and then refused (default 0.1) */
  tolerance?: number;
  /** measurements before refusing a profile whose blocks do not add up (default 3) */
  attempts?: number;
  /** hold the timing to this share of one core (cgroup v1 CFS quota, Linux): blocks are measured
   * at full speed, then the whole model under the quota, and blocks scale by the slowdown seen */
  cpus?: number;
  /** cgroup v1 cpu hierarchy for `cpus` (default /sys/fs/cgroup/cpu) */
  cpuRoot?: string;
  /** onnxruntime graph optimisation of every session (default 'disabled', as `kerf split` runs parts) */
  optimization?: Optimization;
  /** topological order cut ids refer to (default auto) */
  order?: 'auto' | 'file' | 'depth' | 'greedy';
  /** model name in the profile (default: file name without .onnx, or the model's graph name) */
  name?: string;
  /** called after each round of runs */
  onProgress?: (done: number, total: number, label: string) => void;
  /** codecs to measure on every block's crossing tensors (ratio, encode and decode time; docs/codec.md) */
  codecs?: readonly string[];
  /** extra facts about the machine (an agent adds nothing; kept for callers that know more) */
  systemExtra?: Partial<SystemInfo>;
}

export const PROFILE_DEFAULTS = Object.freeze({ repeats: 10, warmup: 2, threads: 1, granularity: 'single' as Granularity, seed: 0 });

/** A model to profile: a file path, ONNX bytes, or a parsed Model. */
export type ProfileSource = string | Uint8Array | Model;

function checkOptions(o: ProfileOptions): void {
  const int = (v: number | undefined, flag: string, min: number) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw kerfError('KERF_ERR_USAGE', `${flag} ${v}: expected an integer ≥ ${min}`);
  };
  int(o.repeats, 'repeats', 1); int(o.warmup, 'warmup', 1); int(o.threads, 'threads', 1);
  if (!o.system || typeof o.system !== 'string') throw kerfError('KERF_ERR_USAGE', 'a system name is required (--system NAME)');
  if (o.tier !== undefined && !['device', 'edge', 'cloud'].includes(o.tier)) throw kerfError('KERF_ERR_USAGE', `tier '${o.tier}': expected device, edge or cloud`);
  if (o.granularity !== undefined && o.granularity !== 'single' && o.granularity !== 'all') throw kerfError('KERF_ERR_USAGE', `granularity '${o.granularity}': expected single or all`);
  if (o.method !== undefined && o.method !== 'sessions' && o.method !== 'trace') throw kerfError('KERF_ERR_USAGE', `method '${o.method}': expected sessions or trace`);
  if (o.tolerance !== undefined && !(o.tolerance > 0 && Number.isFinite(o.tolerance))) throw kerfError('KERF_ERR_USAGE', `tolerance ${o.tolerance}: expected a positive number (0.1 = 10%)`);
  int(o.attempts, 'attempts', 1);
  if (o.cpus !== undefined && !(o.cpus >= 0.01 && o.cpus <= 1)) throw kerfError('KERF_ERR_USAGE', `cpus ${o.cpus}: expected a share of one core between 0.01 and 1`);
}

/** Default of `ProfileOptions.tolerance`: blocks plus one run's overhead within 10% of the whole. */
export const BLOCK_SUM_TOLERANCE = 0.1;
/** Below this gap (seconds) blocks and whole agree whatever the ratio: timer and profiler noise. */
const ABSOLUTE_SLACK_S = 0.25e-3;

/**
 * Indices of the rounds whose total (the sum over blocks, plus the whole model's run of the same
 * round when given) is nearest the median total: the middle half, at least one. Means over these rounds add up to a typical total, which
 * per-block medians do not when each round's pauses land in a different block.
 */
export function typicalRounds(blockSamples: readonly (readonly number[])[], wholeSamples: readonly number[] = []): number[] {
  const R = blockSamples[0]?.length ?? 0;
  const totals = Array.from({ length: R }, (_, r) => ({ r, t: blockSamples.reduce((s, b) => s + b[r]!, 0) + (wholeSamples[r] ?? 0) })).sort((a, b) => a.t - b.t);
  const keep = Math.max(1, Math.ceil(R / 2));
  const from = Math.floor((R - keep) / 2);
  return totals.slice(from, from + keep).map((x) => x.r).sort((a, b) => a - b);
}

/** Latency statistics of a block whose `median` is its mean over the typical rounds (see above). */
function blockLatency(samples: readonly number[], rounds: readonly number[]) {
  const st = latencyStats(samples);
  const typical = rounds.reduce((s, r) => s + samples[r]!, 0) / rounds.length;
  return { ...st, median: typical, spread: typical > 0 ? (st.p90 - st.min) / typical : 0 };
}

/** Profile a model on this machine: every block and the whole model, timed and sized. */
export async function profileModel(source: ProfileSource, opts: ProfileOptions): Promise<Profile> {
  checkOptions(opts);
  const repeats = opts.repeats ?? PROFILE_DEFAULTS.repeats;
  const warmup = opts.warmup ?? PROFILE_DEFAULTS.warmup;
  const threads = opts.threads ?? PROFILE_DEFAULTS.threads;
  const granularity = opts.granularity ?? PROFILE_DEFAULTS.granularity;
  const seed = opts.seed ?? PROFILE_DEFAULTS.seed;
  const method: ProfileMethod = opts.method ?? 'trace';
  const tolerance = opts.tolerance ?? BLOCK_SUM_TOLERANCE;
  const attempts = opts.attempts ?? 3;
  const optimization = opts.optimization ?? 'disabled';

  let model: Model;
  let sha256: string | undefined;
  let file: string | undefined;
  if (typeof source === 'string') {
    const m = loadModel(source, opts.name ? { name: opts.name } : {});
    model = m; sha256 = m.sha256; file = source;
  } else if (source instanceof Uint8Array) {
    sha256 = createHash('sha256').update(source).digest('hex');
    model = parseModel(source, { name: opts.name ?? 'model', source: opts.name ?? 'model' });
  } else model = source;
  const name = opts.name ?? (file ? basename(file).replace(/\.onnx$/i, '') : model.name);

  const prep = await prepareModel(model, { ...(opts.inputShapes ? { inputShapes: opts.inputShapes } : {}), order: opts.order ?? 'auto' });
  const cutIds = blockCuts(prep.analysis, granularity).map((c) => c.id);
  const blocks = blocksOf(prep.model, prep.analysis, cutIds);
  const feeds = randomInputs(prep.model, prep.inputShapes, seed);
  const codecs = (opts.codecs ?? []).map((c) => parseCodec(c, 'profile codec').name).filter((c) => c !== 'none');
  const ctx: RunContext = { prep, blocks, cutIds, feeds, repeats, warmup, threads, optimization, codecs, ...(opts.onProgress ? { progress: opts.onProgress } : {}) };

  // Measure; blocks that do not add up to the whole are measured again, then refused.
  let measured: Measured | undefined;
  let rounds: number[] = [];
  let runOv = 0, sum = 0, wholeTypical = 0, whole = latencyStats([0]);
  const ratios: number[] = [];
  for (let attempt = 1; ; attempt++) {
    runOv = await runOverhead(threads, optimization);
    measured = method === 'sessions' ? await bySessions(ctx, runOv) : await byTrace(ctx);
    // The trace has no block outputs to measure codecs on: each block runs once on its own for them.
    if (ctx.codecs.length && !measured.codecs) measured.codecs = await crossingCodecs(ctx);
    // Blocks and the whole from the same typical rounds: each round's runs follow each other, so
    // they share the machine's conditions, which drift between rounds on a busy machine.
    rounds = typicalRounds(measured.blockSamples, measured.wholeSamples);
    sum = measured.blockSamples.reduce((s, b) => s + rounds.reduce((t, r) => t + b[r]!, 0) / rounds.length, 0);
    wholeTypical = rounds.reduce((t, r) => t + measured!.wholeSamples[r]!, 0) / rounds.length;
    whole = { ...latencyStats(measured.wholeSamples), median: wholeTypical };
    const ratio = (sum + runOv) / wholeTypical;
    ratios.push(ratio);
    // A gap under a quarter millisecond is the timer's and the profiler's own (µs per node).
    if (Math.abs(ratio - 1) <= tolerance || Math.abs(sum + runOv - wholeTypical) < ABSOLUTE_SLACK_S) break;
    if (attempt >= attempts) {
      throw kerfError('KERF_ERR_PROFILE', `${name}: the blocks do not add up to the whole model: (block sum ${(sum * 1e3).toFixed(2)} ms + one run's overhead ` +
        `${(runOv * 1e3).toFixed(3)} ms) / whole ${(wholeTypical * 1e3).toFixed(2)} ms = ${ratios.map((x) => x.toFixed(3)).join(', then ')} in ${attempts} measurements ` +
        `(allowed 1 ± ${tolerance}); the machine is too busy or its speed drifts: profile on a quieter machine, with more --repeats, or pass --tolerance`);
    }
    opts.onProgress?.(0, warmup + repeats, `blocks/whole ${ratio.toFixed(2)}: measuring again`);
  }
  let nodeTimes = measured.nodeTimes;
  if (opts.nodes && !nodeTimes) nodeTimes = await nodeBreakdown(ctx);

  // Under a CPU share: the blocks were timed at full speed (where they add up); the whole
  // model is now timed under the quota, and every time scales by the slowdown it shows.
  let slow = 1, quota: { share: number; periodUs: number; slowdown: number; cpuS: number } | undefined;
  let callOverheadS = await callOverhead(threads);
  if (opts.cpus !== undefined && opts.cpus < 1) {
    const q = await underQuota(ctx, opts.cpus, opts.cpuRoot, threads);
    slow = q.whole.median / wholeTypical;
    whole = q.whole;
    wholeTypical = q.whole.median;
    // As the blocks: a median of short runs under a quota is either unthrottled or a whole
    // period's wait; what a request pays on average is the full-speed cost times the slowdown.
    if (callOverheadS !== null) callOverheadS *= slow;
    quota = { share: opts.cpus, periodUs: q.periodUs, slowdown: slow, cpuS: q.cpuS };
  }

  const out: BlockProfile[] = blocks.map((b, k) => {
    const l = blockLatency(measured!.blockSamples[k]!, rounds);
    const latency = slow === 1 ? l : { ...l, median: l.median * slow, p90: l.p90 * slow, min: l.min * slow };
    const bp: BlockProfile = {
      index: b.index, firstLayer: b.first, lastLayer: b.last,
      ...(b.cutId !== undefined ? { cutId: b.cutId } : {}),
      outputTensors: b.outputTensors,
      latency,
      outputBytes: measured.outputBytes?.[k] ?? b.outputBytes,
      paramBytes: b.paramBytes,
      flops: b.flops,
      ...(measured.memory?.[k] !== undefined ? { memoryBytes: measured.memory[k] } : {}),
      ...(latency.spread > HIGH_SPREAD ? { highSpread: true } : {}),
      ...(measured.codecs?.[k] ? { codecs: measured.codecs[k] } : {}),
    };
    if (nodeTimes) {
      bp.nodes = b.nodes.map((n) => ({ name: n, opType: nodeTimes!.ops.get(n) ?? opTypeOf(prep.model, n), seconds: nodeTimes!.seconds.get(n) ?? 0 }));
    }
    return bp;
  });
  const system = { ...systemInfo(opts.system, opts.tier, threads), ...(opts.systemExtra ?? {}) };
  return {
    schema: PROFILE_SCHEMA,
    model: {
      name,
      ...(file ? { file } : {}),
      ...(sha256 ? { sha256 } : {}),
      inputBytes: prep.analysis.totals.inputBytes,
      inputShapes: prep.inputShapes,
    },
    system,
    granularity,
    source: 'kerf',
    blocks: out,
    whole: { latency: whole, cpuS: latencyStats(measured.wholeCpu).median, ...(measured.wholeMemory !== undefined ? { memoryBytes: measured.wholeMemory } : {}) },
    blockSumOverWhole: (sum * slow) / wholeTypical,
    ...(callOverheadS !== null ? { callOverheadS } : {}),
    settings: {
      repeats, warmup, threads, optimization, method, seed, runtime: `onnxruntime-node ${ortVersion}`,
      ...(quota ? { cpuQuota: { share: quota.share, periodUs: quota.periodUs, slowdown: quota.slowdown, cpuS: quota.cpuS } } : {}),
    },
    createdAt: new Date().toISOString(),
  };
}

interface RunContext {
  prep: Prepared; blocks: Block[]; cutIds: number[]; feeds: Record<string, HostTensor>;
  repeats: number; warmup: number; threads: number; optimization: Optimization;
  codecs: string[];
  progress?: (done: number, total: number, label: string) => void;
}

interface NodeTimes { seconds: Map<string, number>; ops: Map<string, string> }

interface Measured {
  blockSamples: number[][];
  wholeSamples: number[];
  /** CPU seconds (this process, all threads) of each timed whole-model run */
  wholeCpu: number[];
  outputBytes?: number[];
  memory?: number[];
  wholeMemory?: number;
  nodeTimes?: NodeTimes;
  /** per block, per codec: its effect on the block's crossing tensors */
  codecs?: Record<string, BlockCodec>[];
}

const now = (): number => performance.now() / 1000;
/** CPU seconds this process used since `c0` (a process.cpuUsage() reading). */
const cpuSince = (c0: NodeJS.CpuUsage): number => { const d = process.cpuUsage(c0); return (d.user + d.system) / 1e6; };

function tensorBytesOf(t: HostTensor): number {
  return Array.isArray(t.data) ? t.data.reduce((s, v) => s + Buffer.byteLength(v), 0) : t.data.byteLength;
}

async function bySessions(ctx: RunContext, runOverheadS: number): Promise<Measured> {
  const { prep, cutIds, feeds, repeats, warmup, threads, optimization } = ctx;
  const split = splitModel(prep.model, prep.analysis, cutIds);
  const sessions: Session[] = [];
  let whole: Session | undefined;
  const total = warmup + repeats;
  try {
    // Round 0: create each block's session and run it once on what the blocks before it made.
    const inputs: Record<string, HostTensor>[] = [];
    const outputNames = split.parts.map((p) => p.outputs.map((t) => t.name));
    const memory: number[] = [], outputBytes: number[] = [];
    const codecs: Record<string, BlockCodec>[] = [];
    let live: Record<string, HostTensor> = { ...feeds };
    for (const p of split.parts) {
      const mine = blockInputs(prep, p, live);
      inputs.push(mine);
      const r0 = rss();
      const s = await Session.create(serializeModel(p.proto), { threads, optimization, label: `${prep.model.source} block ${p.index}` });
      sessions.push(s);
      const out = await s.run(mine, outputNames[p.index]!);
      const grown = rss() - r0;
      const next = crossing(p, live, out);
      outputBytes.push(Object.values(next).reduce((sum, t) => sum + tensorBytesOf(t), 0));
      // RSS growth undercounts when the allocator reuses memory freed earlier; a session holds at
      // least its weights and its input and output tensors.
      const floor = ctx.blocks[p.index]!.paramBytes + Object.values(mine).reduce((sum, t) => sum + tensorBytesOf(t), 0) +
        Object.values(out).reduce((sum, t) => sum + tensorBytesOf(t), 0);
      memory.push(Math.max(grown, floor));
      if (ctx.codecs.length) codecs.push(codecsOn(Object.values(next), ctx.codecs, Math.min(repeats, 5)));
      live = next;
    }
    const r0 = rss();
    whole = await Session.create(wholeBytes(prep.model), { threads, optimization, label: `${prep.model.source} (whole)` });
    const modelOutputs = prep.model.outputs.map((o) => o.name);
    const wout = await whole.run(feeds, modelOutputs);
    const wholeMemory = Math.max(rss() - r0, prep.analysis.totals.paramBytes + prep.analysis.totals.inputBytes +
      Object.values(wout).reduce((sum, t) => sum + tensorBytesOf(t), 0));
    ctx.progress?.(1, total, 'warm-up');

    // Timed rounds interleave blocks and the whole model, so drift in the machine's speed
    // (other processes, thermal state) touches all of them alike.
    const blockSamples: number[][] = sessions.map(() => []);
    const wholeSamples: number[] = [], wholeCpu: number[] = [];
    for (let round = 1; round < total; round++) {
      const timed = round >= warmup;
      for (let k = 0; k < sessions.length; k++) {
        const t0 = now();
        await sessions[k]!.run(inputs[k]!, outputNames[k]!);
        // a run's fixed cost is paid once per segment, not per block: the cost model adds it
        if (timed) blockSamples[k]!.push(Math.max(0, now() - t0 - runOverheadS));
      }
      const c0 = process.cpuUsage();
      const t0 = now();
      await whole.run(feeds, modelOutputs);
      if (timed) { wholeSamples.push(now() - t0); wholeCpu.push(cpuSince(c0)); }
      ctx.progress?.(round + 1, total, timed ? `timing ${round - warmup + 1}/${repeats}` : 'warm-up');
    }
    return { blockSamples, wholeSamples, wholeCpu, outputBytes, memory, wholeMemory, ...(ctx.codecs.length ? { codecs } : {}) };
  } finally {
    await Promise.all([...sessions, ...(whole ? [whole] : [])].map((s) => s.close()));
  }
}

type SplitPart = ReturnType<typeof splitModel>['parts'][number];

/** Block `p`'s inputs from the tensors the blocks before it made (`live`). */
function blockInputs(prep: Prepared, p: SplitPart, live: Record<string, HostTensor>): Record<string, HostTensor> {
  const mine: Record<string, HostTensor> = {};
  for (const t of p.inputs) {
    const v = live[t.name];
    if (!v) throw kerfError('KERF_ERR_CUT', `${prep.model.source}: block ${p.index} needs tensor '${t.name}', which no earlier block made`);
    mine[t.name] = v;
  }
  return mine;
}

/** What crosses block `p`'s end: the tensors it carries on from `live` and its outputs `out`. */
function crossing(p: SplitPart, live: Record<string, HostTensor>, out: Record<string, HostTensor>): Record<string, HostTensor> {
  const next: Record<string, HostTensor> = {};
  for (const t of p.carry) next[t.name] = live[t.name]!;
  for (const t of p.outputs) next[t.name] = out[t.name]!;
  return next;
}

/**
 * Codecs on every cut's crossing tensors, for a method that sees no block outputs (trace): each
 * block's session is created, run once on what the blocks before it made, and closed.
 */
async function crossingCodecs(ctx: RunContext): Promise<Record<string, BlockCodec>[]> {
  const { prep, cutIds, feeds, threads, optimization } = ctx;
  const split = splitModel(prep.model, prep.analysis, cutIds);
  const out: Record<string, BlockCodec>[] = [];
  let live: Record<string, HostTensor> = { ...feeds };
  for (const p of split.parts) {
    const mine = blockInputs(prep, p, live);
    const s = await Session.create(serializeModel(p.proto), { threads, optimization, label: `${prep.model.source} block ${p.index} (codecs)` });
    let res: Record<string, HostTensor>;
    try { res = await s.run(mine, p.outputs.map((t) => t.name)); } finally { await s.close(); }
    const next = crossing(p, live, res);
    out.push(codecsOn(Object.values(next), ctx.codecs, Math.min(ctx.repeats, 5)));
    live = next;
  }
  return out;
}

/** Each codec's ratio and encode/decode seconds on one cut's crossing tensors. */
function codecsOn(tensors: HostTensor[], names: readonly string[], runs: number): Record<string, BlockCodec> {
  const samples: CodecSample[] = tensors.map((t) => {
    const bytes = Array.isArray(t.data) ? stringBlock(t.data) : new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    return { dtype: t.dtype, dims: t.dims, elementBytes: dtypeSize(t.dtype), bytes };
  });
  const out: Record<string, BlockCodec> = {};
  for (const n of names) {
    const m = measureCodec(n, samples, runs);
    out[m.codec] = { ratio: m.ratio, encodeS: m.encodeS, decodeS: m.decodeS, ...(m.lossy ? { lossy: true } : {}) };
  }
  return out;
}

/** Strings as the wire carries them: u32 lengths, then the UTF-8 bytes. */
function stringBlock(strs: string[]): Uint8Array {
  const parts = strs.map((s) => Buffer.from(s, 'utf8'));
  const out = Buffer.alloc(4 * parts.length + parts.reduce((a, b) => a + b.length, 0));
  let o = 4 * parts.length;
  parts.forEach((p, i) => { out.writeUInt32LE(p.length, 4 * i); p.copy(out, o); o += p.length; });
  return out;
}

/**
 * What a serving process spends per request and part beyond the blocks' own time: the median
 * of runs of a one-node model through the compute thread, as a worker runs its segment (the
 * hand-over both ways and onnxruntime's fixed cost per run). Null when it cannot be measured.
 */
export async function callOverhead(threads: number, runs = 31): Promise<number | null> {
  const b = new ModelBuilder({ name: 'overhead' });
  b.input('x', 'float32', [1]);
  b.node('Identity', ['x'], ['y']);
  b.output('y', 'float32', [1]);
  let s: OffLoopSession | null = null;
  try {
    s = await OffLoopSession.create(b.toBytes(), { threads, label: 'per-call overhead' });
    const x: HostTensor = { dtype: 'float32', dims: [1], data: new Float32Array(1) };
    for (let i = 0; i < 5; i++) await s.run({ x });
    const t: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await s.run({ x });
      t.push((performance.now() - t0) / 1000);
    }
    return latencyStats(t).median;
  } catch {
    return null;
  } finally {
    await s?.close();
  }
}

/** A one-node model (Identity on one float): what a run costs beyond its kernels. */
function trivialModel(): Uint8Array {
  const b = new ModelBuilder({ name: 'overhead' });
  b.input('x', 'float32', [1]);
  b.node('Identity', ['x'], ['y']);
  b.output('y', 'float32', [1]);
  return b.toBytes();
}

/**
 * What one run of a session costs beyond its kernels, called in this thread as the profile
 * times blocks and the whole model: the median of runs of a one-node model.
 */
export async function runOverhead(threads: number, optimization: Optimization, runs = 31): Promise<number> {
  const s = await Session.create(trivialModel(), { threads, optimization, label: 'per-run overhead' });
  try {
    const x: HostTensor = { dtype: 'float32', dims: [1], data: new Float32Array(1) };
    for (let i = 0; i < 5; i++) await s.run({ x });
    const t: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = now();
      await s.run({ x });
      t.push(now() - t0);
    }
    return latencyStats(t).median;
  } finally {
    await s.close();
  }
}

/**
 * Time the whole model with this process held to `share` of a core
 * by a cgroup CFS quota, then give the CPU back. The period is short (10 ms, or long enough
 * that the quota stays above the kernel's 1 ms minimum) so throttling is fine-grained.
 */
async function underQuota(ctx: RunContext, share: number, root: string | undefined, threads: number): Promise<{ whole: ReturnType<typeof latencyStats>; cpuS: number; periodUs: number }> {
  const { CpuGroup, cpuQuotaUnavailable, cpuPeriodForShare, currentCpuGroup, moveToCpuGroup, CGROUP_CPU_ROOT } = await import('../serve/cpu.js');
  const why = cpuQuotaUnavailable(root);
  if (why !== null) throw kerfError('KERF_ERR_CONFIG', `cannot hold the profiling to ${share} of a core: ${why}`);
  const periodUs = cpuPeriodForShare(share);
  const group = await CpuGroup.create(`profile-${process.pid}`, share, { ...(root ? { root } : {}), periodUs });
  const home = currentCpuGroup(root ?? CGROUP_CPU_ROOT);
  const whole = await Session.create(wholeBytes(ctx.prep.model), { threads, optimization: ctx.optimization, label: `${ctx.prep.model.source} (whole, under a CPU quota)` });
  const unpin = threads === 1 ? pinToOneCpu(process.pid) : null;
  try {
    await group.add(process.pid);
    const outs = ctx.prep.model.outputs.map((o) => o.name);
    const t: number[] = [], cpu: number[] = [];
    for (let i = 0; i < ctx.warmup + ctx.repeats; i++) {
      const t0 = now(), c0 = process.cpuUsage();
      await whole.run(ctx.feeds, outs);
      if (i >= ctx.warmup) { t.push(now() - t0); cpu.push(cpuSince(c0)); }
    }
    return { whole: latencyStats(t), cpuS: latencyStats(cpu).median, periodUs };
  } finally {
    await moveToCpuGroup(home, process.pid).catch(() => undefined);
    unpin?.();
    await whole.close();
    await group.remove(2000).catch(() => undefined);
  }
}

/**
 * Pin every thread of process `pid` to the last CPU it may use (Linux, `taskset`) for the runs
 * under a CPU quota; returns what restores the affinity it had, or null when it cannot pin. A
 * thread that moves between CPUs strands the quota's runtime on the CPU it left. What it changed
 * here (docs/profile.md): `kerf demo`'s device profile at 5 % of a core read a slowdown of 19.9–27.8
 * pinned, 16.7–22.2 unpinned, and the demo's configurations stayed within 0.8–1.25× of their
 * predictions in 6 of 8 runs pinned, 2 of 5 unpinned.
 */
export function pinToOneCpu(pid: number): (() => void) | null {
  if (process.platform !== 'linux') return null;
  // "pid N's current affinity list: 0-1,4": pin to the last CPU it may use, give the list back after.
  const was = spawnSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' });
  const list = /:\s*([0-9,-]+)\s*$/.exec(was.stdout ?? '')?.[1];
  const cpu = list?.split(',').pop()?.split('-').pop();
  if (was.status !== 0 || !list || !cpu) return null;
  if (spawnSync('taskset', ['-a', '-c', '-p', cpu, String(pid)], { stdio: 'ignore' }).status !== 0) return null;
  return () => { spawnSync('taskset', ['-a', '-c', '-p', list, String(pid)], { stdio: 'ignore' }); };
}

/** The whole model's bytes for one session: the file as read, unless weights had to be inlined. */
export function wholeBytes(model: Model): Uint8Array {
  return normalisedBytes({ model });
}

/** The whole model with kerf's node names written into it, so onnxruntime's trace names nodes as kerf does. */
function namedWholeModel(model: Model): Uint8Array {
  const g = model.proto.graph!;
  return serializeModel(rebuildModel(model, {
    nodes: model.nodes.map((n) => ({ ...n.proto, name: n.name })),
    initializers: [...model.initializers.values()],
    inputs: g.input.filter((v) => !model.initializers.has(v.name)),
    outputs: [...g.output],
  }));
}

/** Runs a profiled whole-model session `runs` times (interleaved with `between`), returns the trace's runs. */
async function tracedRuns(ctx: RunContext, runs: number, between?: (i: number) => Promise<void>): Promise<TraceRun[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-trace-'));
  let s: Session | undefined;
  try {
    s = await Session.create(namedWholeModel(ctx.prep.model), {
      threads: ctx.threads, optimization: ctx.optimization, profiling: true, profilePrefix: join(dir, 'ort'), label: `${ctx.prep.model.source} (profiled)`,
    });
    const outs = ctx.prep.model.outputs.map((o) => o.name);
    for (let i = 0; i < runs; i++) {
      await s.run(ctx.feeds, outs);
      if (between) await between(i);
    }
    s.endProfiling();
    const file = readdirSync(dir).find((f) => f.startsWith('ort') && f.endsWith('.json'));
    if (!file) throw kerfError('KERF_ERR_ENGINE', `${ctx.prep.model.source}: onnxruntime wrote no profile in ${dir}`);
    const trace = parseOrtTrace(JSON.parse(readFileSync(join(dir, file), 'utf8')), file);
    if (trace.length !== runs) throw kerfError('KERF_ERR_ENGINE', `${ctx.prep.model.source}: onnxruntime's profile holds ${trace.length} runs, expected ${runs}`);
    return trace;
  } finally {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function medianNodeTimes(runs: TraceRun[]): NodeTimes {
  const per = new Map<string, number[]>();
  const ops = new Map<string, string>();
  for (const r of runs) {
    for (const [n, sec] of r.nodes) { let a = per.get(n); if (!a) per.set(n, a = []); a.push(sec); }
    for (const [n, op] of r.ops) ops.set(n, op);
  }
  const seconds = new Map<string, number>();
  for (const [n, a] of per) seconds.set(n, latencyStats(a).median);
  return { seconds, ops };
}

async function byTrace(ctx: RunContext): Promise<Measured> {
  const { prep, blocks, feeds, repeats, warmup, threads, optimization } = ctx;
  const total = warmup + repeats;
  const r0 = rss();
  const whole = await Session.create(wholeBytes(prep.model), { threads, optimization, label: `${prep.model.source} (whole)` });
  const outs = prep.model.outputs.map((o) => o.name);
  const wholeSamples: number[] = [];
  let trace: TraceRun[];
  try {
    const wout = await whole.run(feeds, outs);
    const wholeMemory = Math.max(rss() - r0, prep.analysis.totals.paramBytes + prep.analysis.totals.inputBytes +
      Object.values(wout).reduce((sum, t) => sum + tensorBytesOf(t), 0));
    // The whole model's time is each traced run's own wall time (onnxruntime's model_run): the
    // blocks and the whole come from the very same runs, so a pause from another process lands
    // in both (a plain run beside each traced one disagreed by ±30–80% on a machine at load 8).
    // The profiler adds a few µs per node. Each traced run is followed by a plain run, for the
    // CPU time of one run without the profiler.
    const wholeCpu: number[] = [];
    trace = await tracedRuns(ctx, total, async (i) => {
      const c0 = process.cpuUsage();
      await whole.run(feeds, outs);
      if (i >= warmup) wholeCpu.push(cpuSince(c0));
      ctx.progress?.(i + 1, total, i >= warmup ? `timing ${i - warmup + 1}/${repeats}` : 'warm-up');
    });
    const timed = trace.slice(warmup);
    for (const r of timed) wholeSamples.push(r.seconds);
    const blockSamples = blocks.map((b) => timed.map((r) => b.nodes.reduce((s, n) => s + (r.nodes.get(n) ?? 0), 0)));
    return { blockSamples, wholeSamples, wholeCpu, wholeMemory, nodeTimes: medianNodeTimes(timed) };
  } finally {
    await whole.close();
  }
}

async function nodeBreakdown(ctx: RunContext): Promise<NodeTimes> {
  const runs = Math.max(3, Math.min(ctx.repeats, 5));
  const trace = await tracedRuns(ctx, 1 + runs);
  return medianNodeTimes(trace.slice(1));
}

function opTypeOf(model: Model, name: string): string {
  return model.nodes.find((n) => n.name === name)?.opType ?? '';
}
