/**
 * Time every block of a model on this machine. Two methods:
 * - `sessions`: one onnxruntime session per block (the sub-model `kerf split` would write), each
 *   run on its real input, which the blocks before it produced from a seeded input. Measures what
 *   a deployed split pays, per-run overhead included. Default at single granularity.
 * - `trace`: onnxruntime's per-node profiler over whole-model runs; a block's time is the sum of
 *   its nodes' kernel times. One session however many blocks: default at `all` granularity.
 * Either way the whole model is also timed unsplit, in the same rounds, so block sums and the
 * whole are measured under the same conditions.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
  /** how block times are taken (default: sessions at single granularity, trace at all) */
  method?: ProfileMethod;
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
}

/** Profile a model on this machine: every block and the whole model, timed and sized. */
export async function profileModel(source: ProfileSource, opts: ProfileOptions): Promise<Profile> {
  checkOptions(opts);
  const repeats = opts.repeats ?? PROFILE_DEFAULTS.repeats;
  const warmup = opts.warmup ?? PROFILE_DEFAULTS.warmup;
  const threads = opts.threads ?? PROFILE_DEFAULTS.threads;
  const granularity = opts.granularity ?? PROFILE_DEFAULTS.granularity;
  const seed = opts.seed ?? PROFILE_DEFAULTS.seed;
  const method: ProfileMethod = opts.method ?? (granularity === 'all' ? 'trace' : 'sessions');
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

  const measured = method === 'sessions' ? await bySessions(ctx) : await byTrace(ctx);
  let nodeTimes = measured.nodeTimes;
  if (opts.nodes && !nodeTimes) nodeTimes = await nodeBreakdown(ctx);

  const out: BlockProfile[] = blocks.map((b, k) => {
    const latency = latencyStats(measured.blockSamples[k]!);
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
  const whole = latencyStats(measured.wholeSamples);
  const sum = out.reduce((s, b) => s + b.latency.median, 0);
  const callOverheadS = await callOverhead(threads);
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
    whole: { latency: whole, ...(measured.wholeMemory !== undefined ? { memoryBytes: measured.wholeMemory } : {}) },
    blockSumOverWhole: sum / whole.median,
    ...(callOverheadS !== null ? { callOverheadS } : {}),
    settings: { repeats, warmup, threads, optimization, method, seed, runtime: `onnxruntime-node ${ortVersion}` },
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
  outputBytes?: number[];
  memory?: number[];
  wholeMemory?: number;
  nodeTimes?: NodeTimes;
  /** per block, per codec: its effect on the block's crossing tensors */
  codecs?: Record<string, BlockCodec>[];
}

const now = (): number => performance.now() / 1000;

function tensorBytesOf(t: HostTensor): number {
  return Array.isArray(t.data) ? t.data.reduce((s, v) => s + Buffer.byteLength(v), 0) : t.data.byteLength;
}

async function bySessions(ctx: RunContext): Promise<Measured> {
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
      const mine: Record<string, HostTensor> = {};
      for (const t of p.inputs) {
        const v = live[t.name];
        if (!v) throw kerfError('KERF_ERR_CUT', `${prep.model.source}: block ${p.index} needs tensor '${t.name}', which no earlier block made`);
        mine[t.name] = v;
      }
      inputs.push(mine);
      const r0 = rss();
      const s = await Session.create(serializeModel(p.proto), { threads, optimization, label: `${prep.model.source} block ${p.index}` });
      sessions.push(s);
      const out = await s.run(mine, outputNames[p.index]!);
      const grown = rss() - r0;
      const next: Record<string, HostTensor> = {};
      for (const t of p.carry) next[t.name] = live[t.name]!;
      for (const t of p.outputs) next[t.name] = out[t.name]!;
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
    const wholeSamples: number[] = [];
    for (let round = 1; round < total; round++) {
      const timed = round >= warmup;
      for (let k = 0; k < sessions.length; k++) {
        const t0 = now();
        await sessions[k]!.run(inputs[k]!, outputNames[k]!);
        if (timed) blockSamples[k]!.push(now() - t0);
      }
      const t0 = now();
      await whole.run(feeds, modelOutputs);
      if (timed) wholeSamples.push(now() - t0);
      ctx.progress?.(round + 1, total, timed ? `timing ${round - warmup + 1}/${repeats}` : 'warm-up');
    }
    return { blockSamples, wholeSamples, outputBytes, memory, wholeMemory, ...(ctx.codecs.length ? { codecs } : {}) };
  } finally {
    await Promise.all([...sessions, ...(whole ? [whole] : [])].map((s) => s.close()));
  }
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
    // Each profiled run is followed by one plain run of the whole model: the trace gives the
    // blocks, the plain runs the unsplit figure without the profiler's overhead.
    trace = await tracedRuns(ctx, total, async (i) => {
      const t0 = now();
      await whole.run(feeds, outs);
      if (i >= warmup) wholeSamples.push(now() - t0);
      ctx.progress?.(i + 1, total, i >= warmup ? `timing ${i - warmup + 1}/${repeats}` : 'warm-up');
    });
    const timed = trace.slice(warmup);
    const blockSamples = blocks.map((b) => timed.map((r) => b.nodes.reduce((s, n) => s + (r.nodes.get(n) ?? 0), 0)));
    return { blockSamples, wholeSamples, wholeMemory, nodeTimes: medianNodeTimes(timed) };
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
