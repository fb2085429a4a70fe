/**
 * `kerf bench pipeline`: N-stage pipelines of a real model on this machine, each stage a
 * worker held to a fraction of a core, against what the placement predicts (1 ÷ bottleneck).
 *
 * The placement is fed per-block times for a node of that fraction: the blocks are profiled on
 * a whole core, then scaled by a calibration factor measured on the whole model (a session run
 * back to back in a child process, first unthrottled, then inside a cgroup with the node's
 * quota). Profiling blocks directly under the quota would not work: a CFS quota hands out CPU
 * in bursts (e.g. 25 ms every 100 ms), so a block shorter than the burst runs at full speed
 * unless it happens to hit the throttle, and medians come out several times too fast.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { cpus as osCpus, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { kerfError } from '../../errors.js';
import { parse, parseInputShapes } from '../args.js';
import type { Profile } from '../../profile/types.js';
import type { Placement } from '../../plan/place/types.js';
import type { CpuGroup as CpuGroupT } from '../../serve/cpu.js';
import { encodeInferRequest } from '../../serve/oip.js';

const HELP = `usage: kerf bench pipeline [options]

Throughput of N-stage pipelines (one worker per stage, each held to --cpus cores by a cgroup
quota, links emulated, gateway at an entry node) against the placement's prediction
(1 ÷ bottleneck), for every N in --stages; then N=4 against N=1 (targets: every N ≥ 0.85×
predicted; 4 nodes ≥ 3× one node). Block times: a whole-core profile scaled by a measured
quota factor (see docs/cluster-runtime.md).

options:
  --model M              ONNX file or zoo name (default resnet18, from src/zoo, BatchNorm folded)
  --input-shape N=DxD    concrete input shape for dynamic dims
  --stages A..B|LIST     pipeline lengths (default 1..8)
  --cpus C               cores per node (default 0.25)
  --machine-share F      all nodes together get at most F × this machine's cores (default 0.8):
                         above that a node gets F × cores ÷ N, so the gateway, link emulators
                         and load generator keep the rest and quotas are real
  --granularity G        blocks placement may cut at: all (default) or single
  --bandwidth MBPS       every link's bandwidth, Mbit/s (default 1000)
  --rtt MS               every link's round-trip time, ms (default 1)
  --seconds S            measuring window per N (default 10)
  --warmup S             load before measuring (default 3)
  --in-flight K          requests kept in flight (default 2N + 2)
  --cpu-period-us P      CFS period (default 100000)
  --json                 one JSON line per N and a summary line
`;

const OPTIONS = {
  model: { type: 'string' }, 'input-shape': { type: 'string', multiple: true }, stages: { type: 'string' }, cpus: { type: 'string' },
  granularity: { type: 'string' }, 'machine-share': { type: 'string' }, bandwidth: { type: 'string' }, rtt: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' },
  'in-flight': { type: 'string' }, 'cpu-period-us': { type: 'string' }, json: { type: 'boolean' },
} as const;

/** One pipeline length's result. */
export interface PipelineRow {
  n: number;
  /** stages the placement used (it may use fewer than n nodes) */
  stages: number;
  cuts: number[];
  bottleneck: { seconds: number; kind: string; where: string };
  predicted: number;
  achieved: number;
  ratio: number;
  completed: number;
  failed: number;
  inFlight: number;
  latencyP50: number;
  /** cores each node got (--cpus, or less to keep the machine from being oversubscribed) */
  nodeCpus: number;
  /** the placement's stage time spent on wire CPU at its bottleneck stage, seconds */
  wireSeconds: number;
  /** per process: CPU used over the window ÷ its share (1 = saturated), resident memory, limit */
  processes: { name: string; role: string; cpus?: number; utilisation: number | null; rss: number; peak: number; limit?: number; predictedMemory?: number }[];
  /** CPU the benchmark process itself used over the window (load generator and link emulators), cores */
  benchCpu: number;
  /** cores the whole machine was busy over the window (other users' work included), of `machineCores` */
  machineBusy: number;
  machineCores: number;
  /** 1 ÷ bottleneck of the same placement without wire CPU (what the cost model predicted
   * before it counted it) */
  predictedNoWire: number;
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineJiffies(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

function num(v: string | undefined, flag: string, def: number, min = 0): number {
  if (v === undefined) return def;
  const x = Number(v);
  if (!Number.isFinite(x) || x <= min) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected a number > ${min}`);
  return x;
}

function stagesOpt(v: string | undefined): number[] {
  const s = v ?? '1..8';
  const m = /^(\d+)\.\.(\d+)$/.exec(s);
  const out = m ? Array.from({ length: Math.max(0, Number(m[2]) - Number(m[1]) + 1) }, (_, i) => Number(m[1]) + i) : s.split(',').map((x) => Number(x.trim()));
  if (out.length === 0 || out.some((x) => !Number.isInteger(x) || x < 1 || x > 12)) throw kerfError('KERF_ERR_USAGE', `--stages '${s}': expected A..B or a list of integers 1..12`);
  return out;
}

/** Seconds per run of the whole model in a child process, optionally inside a CPU quota. */
async function calibrate(model: string, shapes: Record<string, number[]>, cpus: number | null, periodUs: number, seconds: number): Promise<number> {
  const engine = new URL('../../engine/index.js', import.meta.url).href;
  const code = `
    const { Session, prepareModel, normalisedBytes, randomInputs } = await import(${JSON.stringify(engine)});
    const prep = await prepareModel(${JSON.stringify(model)}, { inputShapes: ${JSON.stringify(shapes)} });
    const s = await Session.create(normalisedBytes(prep), { threads: 1 });
    const feeds = randomInputs(prep.model, prep.inputShapes, 1);
    for (let i = 0; i < 2; i++) await s.run(feeds);
    process.stdout.write('ready\\n');
    await new Promise((r) => process.stdin.once('data', r));
    const t0 = performance.now(); let n = 0;
    while (performance.now() - t0 < ${seconds * 1000} || n < 3) { await s.run(feeds); n++; }
    process.stdout.write(JSON.stringify({ perRun: (performance.now() - t0) / 1000 / n }) + '\\n');
    await s.close(); process.exit(0);`;
  const { CpuGroup } = await import('../../serve/cpu.js');
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  let group: CpuGroupT | null = null;
  try {
    let out = '', err = '';
    proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    const result = await new Promise<number>((resolve, reject) => {
      proc.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('ready\n') && !out.includes('go')) {
          out = out.replace('ready\n', 'go');
          // Throttle only the timed runs: loading is not what is calibrated.
          (async () => {
            if (cpus !== null) {
              group = await CpuGroup.create('calibrate', cpus, { periodUs });
              await group.add(proc.pid!);
            }
            proc.stdin!.write('go\n');
          })().catch(reject);
        }
        const m = /\{"perRun":([0-9.e-]+)\}/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      proc.once('exit', (c) => reject(kerfError('KERF_ERR_ENGINE', `calibration run exited (${c}): ${err.trim().split('\n').pop() ?? ''}`)));
    });
    return result;
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    }
    await (group as CpuGroupT | null)?.remove();
  }
}

/** Keep `inFlight` binary OIP requests going for warmup + seconds; count those finishing in the window. */
async function load(url: string, name: string, body: Buffer, headerLength: number, inFlight: number, warmupS: number, seconds: number,
  onWindow: (phase: 'start' | 'end') => void): Promise<{ completed: number; failed: number; p50: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
  const path = `/v2/models/${name}/infer`;
  const { hostname, port } = new URL(url);
  const t0 = performance.now();
  const start = t0 + warmupS * 1000;
  const end = start + seconds * 1000;
  let completed = 0, failed = 0, windowOpen = false;
  const lat: number[] = [];
  const one = (): Promise<void> => new Promise((resolve) => {
    const s = performance.now();
    const req = http.request({ hostname, port, path, method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, 'inference-header-content-length': headerLength } }, (res) => {
      res.resume();
      res.on('end', () => {
        const t = performance.now();
        if (t >= start && t < end) {
          if (res.statusCode === 200) { completed++; lat.push(t - s); } else failed++;
        }
        resolve();
      });
    });
    req.on('error', () => { failed++; resolve(); });
    req.end(body);
  });
  const timer = setTimeout(() => { windowOpen = true; onWindow('start'); }, warmupS * 1000);
  const endTimer = setTimeout(() => { onWindow('end'); }, (warmupS + seconds) * 1000);
  await Promise.all(Array.from({ length: inFlight }, async () => { while (performance.now() < end) await one(); }));
  clearTimeout(timer); clearTimeout(endTimer);
  if (!windowOpen) onWindow('start');
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { completed, failed, p50: lat.length ? lat[Math.floor(lat.length / 2)]! / 1000 : NaN };
}

export async function run(argv: string[]): Promise<number | void> {
  const parsed = parse(argv, OPTIONS, HELP, false);
  if (!parsed) return 0;
  const v = parsed.values;
  const stages = stagesOpt(v.stages);
  const cpus = num(v.cpus, '--cpus', 0.25);
  const machineShare = num(v['machine-share'], '--machine-share', 0.8);
  const granularity = v.granularity ?? 'all';
  if (granularity !== 'all' && granularity !== 'single') throw kerfError('KERF_ERR_USAGE', `--granularity '${granularity}': expected all or single`);
  const bandwidth = num(v.bandwidth, '--bandwidth', 1000);
  const rtt = v.rtt !== undefined ? num(v.rtt, '--rtt', 0, -1e-12) : 1;
  const seconds = num(v.seconds, '--seconds', 10);
  const warmup = v.warmup !== undefined ? num(v.warmup, '--warmup', 0, -1e-12) : 3;
  const periodUs = num(v['cpu-period-us'], '--cpu-period-us', 100_000);
  const fixedInFlight = v['in-flight'] !== undefined ? Math.round(num(v['in-flight'], '--in-flight', 0)) : null;
  const shapes = parseInputShapes(v['input-shape']);
  const json = v.json ?? false;
  const say = (s: string): void => { if (!json) process.stdout.write(s + '\n'); };
  const note = (s: string): void => { process.stderr.write(`kerf bench pipeline: ${s}\n`); };

  const { cpuQuotaUnavailable, processCpuSeconds } = await import('../../serve/cpu.js');
  const { up, placementToUp } = await import('../../serve/up.js');
  const { profileModel } = await import('../../profile/index.js');
  const { place, placeModelFromProfiles, validateCluster, DEFAULT_WIRE_CPU_MS_PER_MB } = await import('../../plan/place/index.js');
  const { prepareModel, randomInputs } = await import('../../engine/index.js');
  const noCgroup = cpuQuotaUnavailable();
  if (noCgroup) note(`WARNING: ${noCgroup}; workers cannot be held to ${cpus} core and the predictions below will not hold`);

  const dir = mkdtempSync(join(tmpdir(), 'kerf-bench-pipeline-'));
  try {
    const modelArg = v.model ?? 'resnet18';
    let file: string;
    if (existsSync(modelArg)) file = modelArg;
    else {
      const { zooModel, zooNames } = await import('../../zoo/index.js');
      if (!zooNames().includes(modelArg)) throw kerfError('KERF_ERR_USAGE', `--model '${modelArg}': no such file and not a zoo model (${zooNames().join(', ')})`);
      file = join(dir, `${modelArg}.onnx`);
      writeFileSync(file, zooModel(modelArg, { batchNorm: 'folded' }));
    }
    const modelName = basename(file).replace(/\.onnx$/i, '');

    // 1. Per-block times on a whole core, and the factor a quota of `cpus` costs.
    note(`profiling ${modelName} (granularity ${granularity}) on one whole core`);
    const prof: Profile = await profileModel(file, { system: 'core', threads: 1, granularity, repeats: 10, inputShapes: shapes });
    // Absolute scale from the quota'd run, relative block costs from the profile: a busy machine
    // inflates the profile's whole and block medians alike, so the ratio survives it.
    const whole = prof.whole!.latency.median;
    const blockSum = prof.blocks.reduce((a, b) => a + b.latency.median, 0);
    const cores = osCpus().length;
    // Nodes together stay within machineShare of the machine: the rest is for the gateway, the
    // link emulators and the load generator (8 × 0.25 core would be all of a 2-core machine).
    const shareOf = (n: number): number => Math.round(Math.min(cpus, (machineShare * cores) / n) * 1000) / 1000;
    say(`kerf bench pipeline: ${modelName}, ${prof.blocks.length} blocks (${granularity}), nodes of ${cpus} core, at most ${machineShare} × ${cores} cores for all nodes (cgroup quota, period ${periodUs / 1000} ms), links ${bandwidth} Mbit/s, rtt ${rtt} ms`);
    /** per node share: the quota'd whole model (seconds) and the factor on the whole-core profile */
    const calib = new Map<number, { tq: number; factor: number; pm: ReturnType<typeof placeModelFromProfiles> }>();
    const calibrated = async (share: number): Promise<{ tq: number; factor: number; pm: ReturnType<typeof placeModelFromProfiles> }> => {
      let c = calib.get(share);
      if (c) return c;
      note(`calibrating: the whole model back to back under a quota of ${share} core`);
      const tq = noCgroup ? whole : await calibrate(file, shapes, share, periodUs, Math.max(4, Math.min(10, seconds)));
      // A one-stage pipeline's compute is the sum of its blocks: make that what the whole model takes under the quota.
      const factor = tq / blockSum;
      const scaled: Profile = {
        ...prof, system: { ...prof.system, name: `${share}-core` },
        blocks: prof.blocks.map((b) => ({ ...b, latency: { ...b.latency, median: b.latency.median * factor } })),
      };
      say(`profile on a whole core: blocks sum ${(blockSum * 1000).toFixed(1)} ms, whole model ${(whole * 1000).toFixed(1)} ms; ` +
        `whole model under ${share} core ${(tq * 1000).toFixed(1)} ms: factor ${factor.toFixed(3)} (ideal ${(1 / share).toFixed(2)}; factor = quota'd whole ÷ block sum)`);
      c = { tq, factor, pm: placeModelFromProfiles([scaled]) };
      calib.set(share, c);
      return c;
    };

    // 2. Per N: place on N equal nodes behind an entry that holds nothing, run, load, compare.
    const prep = await prepareModel(file, { inputShapes: shapes });
    const feeds = randomInputs(prep.model, prep.inputShapes, 7);
    const { head, data } = encodeInferRequest(Object.entries(feeds).map(([name, t]) => ({ name, dtype: t.dtype, dims: t.dims, data: t.data as ArrayBufferView })), { binaryOutput: true });
    const body = Buffer.concat([head, ...data]);

    for (const n of stages) await calibrated(shareOf(n));
    if (!json) {
      say('');
      say(['N'.padStart(2), 'stg'.padStart(3), 'bottleneck'.padStart(18), 'predicted'.padStart(10), 'achieved'.padStart(9), 'ratio'.padStart(6),
        'cpus'.padStart(5), 'wire ms'.padStart(7), 'no wire'.padStart(8), 'ratio'.padStart(6), 'p50 ms'.padStart(7), 'util min-max'.padStart(13), 'RSS MB max'.padStart(11), 'pred MB'.padStart(8), 'limit'.padStart(6),
        'bench CPU'.padStart(9), 'busy'.padStart(5)].join(' '));
    }
    const rows: PipelineRow[] = [];
    /** wire CPU, seconds per byte received or sent on a whole core (measured at N=1) */
    let wire: number | null = null;
    // Workers free the whole model once sliced; glibc returns freed memory to the system sooner
    // with a low trim threshold (the children inherit it; two arenas they get anyway:
    // WORKER_MALLOC_ENV), and glibc's first mmap threshold with it (for the gateway, whose own,
    // GATEWAY_MALLOC_ENV, keeps memory for speed).
    process.env.MALLOC_TRIM_THRESHOLD_ ??= '131072';
    process.env.MALLOC_MMAP_THRESHOLD_ ??= '131072';
    for (const n of stages) {
      const share = shareOf(n);
      const { tq, factor, pm } = await calibrated(share);
      const nodes = [{ name: 'gw', memoryMB: 1 }, ...Array.from({ length: n }, (_, i) => ({ name: `n${i + 1}`, memoryMB: 512 }))];
      const links = [];
      for (let a = 0; a < nodes.length; a++) for (let b = a + 1; b < nodes.length; b++) links.push({ from: nodes[a]!.name, to: nodes[b]!.name, bandwidthMbps: bandwidth, rttMs: rtt });
      // The placement counts each stage's wire CPU: the documented whole-core cost per MB,
      // slowed by the quota like compute. (The N=1 measurement is reported, not fed back: one
      // run on a shared machine is too noisy to steer the others.)
      const wireMs = DEFAULT_WIRE_CPU_MS_PER_MB * factor;
      const cluster = validateCluster({ schema: 'kerf.cluster/v1', entry: 'gw', nodes, links, wireCpuMsPerMB: wireMs }, `bench cluster (${n} nodes)`);
      const p: Placement = place(pm, cluster, { maxStages: n });
      const opts = placementToUp(p, file, { referenceCpus: share });
      const inFlight = fixedInFlight ?? 2 * n + 2;
      const h = await up({ ...opts, inputShapes: prep.inputShapes, cpu: { periodUs }, workerArgs: ['--queue', String(Math.max(64, inFlight * 2)), '--release-model'], readyTimeoutMs: 120_000 });
      try {
        const cpu0 = new Map<number, number>();
        let cpuEnd = new Map<number, number>();
        let bench0 = process.cpuUsage();
        let benchUsed = 0;
        let m0 = machineJiffies();
        let busy = NaN;
        const r = await load(h.url, h.name, body, head.length, inFlight, warmup, seconds, (phase) => {
          if (phase === 'start') {
            for (const q of h.processes) cpu0.set(q.pid, processCpuSeconds(q.pid) ?? NaN);
            bench0 = process.cpuUsage();
            m0 = machineJiffies();
          } else {
            const m1 = machineJiffies();
            busy = ((m1.busy - m0.busy) / (m1.total - m0.total)) * cores;
            cpuEnd = new Map(h.processes.map((q) => [q.pid, processCpuSeconds(q.pid) ?? NaN]));
            const u = process.cpuUsage(bench0);
            benchUsed = (u.user + u.system) / 1e6 / seconds;
          }
        });
        const mem = h.memory();
        const achieved = r.completed / seconds;
        const cpuUsed = (pid: number): number => (cpuEnd.get(pid)! - cpu0.get(pid)!);
        if (n === 1 && p.stages.length === 1 && r.completed > 0) {
          // The one worker's CPU per request beyond the model itself (tq × cpus core-seconds) is
          // what receiving the input and sending the output cost it.
          const w = h.processes.find((q) => q.role === 'worker');
          if (w) wire = Math.max(0, (cpuUsed(w.pid) / r.completed - tq * share) / (p.stages[0]!.inputBytes + p.stages[0]!.outputBytes));
        }
        const predictedNoWire = 1 / Math.max(...p.stages.map((s) => s.computeSeconds), ...p.links.map((l) => l.seconds));
        const bnStage = p.stages.reduce((a, b) => (b.computeSeconds + b.wireSeconds > a.computeSeconds + a.wireSeconds ? b : a));
        const row: PipelineRow = {
          n, stages: p.stages.length, cuts: opts.cuts, bottleneck: p.bottleneck, predicted: p.throughput, achieved, ratio: achieved / p.throughput,
          completed: r.completed, failed: r.failed, inFlight, latencyP50: r.p50, nodeCpus: share, wireSeconds: bnStage.wireSeconds,
          processes: h.processes.map((q) => {
            const m = mem.find((x) => x.pid === q.pid);
            const used = (cpuEnd.get(q.pid)! - cpu0.get(q.pid)!) / seconds;
            const st = p.stages.find((s) => s.node === q.name);
            return {
              name: q.name, role: q.role, ...(q.cpus !== undefined ? { cpus: q.cpus } : {}),
              utilisation: Number.isFinite(used) ? (q.cpus !== undefined ? used / q.cpus : used) : null,
              rss: m?.rss ?? NaN, peak: m?.peak ?? NaN, ...(q.memoryLimitBytes !== undefined ? { limit: q.memoryLimitBytes } : {}),
              ...(st ? { predictedMemory: st.memoryBytes } : {}),
            };
          }),
          benchCpu: benchUsed, machineBusy: busy, machineCores: cores, predictedNoWire,
        };
        rows.push(row);
        if (json) process.stdout.write(JSON.stringify(row) + '\n');
        else {
          const w = row.processes.filter((q) => q.role === 'worker' || q.cpus !== undefined);
          const utils = w.map((q) => q.utilisation ?? NaN);
          const mb = (b: number): string => (b / 2 ** 20).toFixed(0);
          say([String(n).padStart(2), String(row.stages).padStart(3),
            `${(p.bottleneck.seconds * 1000).toFixed(1)} ms ${p.bottleneck.kind}`.padStart(18),
            row.predicted.toFixed(2).padStart(10), achieved.toFixed(2).padStart(9), row.ratio.toFixed(3).padStart(6),
            share.toFixed(3).padStart(5), `${(bnStage.wireSeconds * 1000).toFixed(1)}`.padStart(7), predictedNoWire.toFixed(2).padStart(8), (achieved / predictedNoWire).toFixed(3).padStart(6),
            (r.p50 * 1000).toFixed(0).padStart(7), `${Math.min(...utils).toFixed(2)}-${Math.max(...utils).toFixed(2)}`.padStart(13),
            mb(Math.max(...w.map((q) => q.rss))).padStart(11), mb(Math.max(...w.map((q) => q.predictedMemory ?? 0))).padStart(8),
            mb(Math.max(...w.map((q) => q.limit ?? 0))).padStart(6), row.benchCpu.toFixed(2).padStart(9), busy.toFixed(2).padStart(5)].join(' ') + (r.failed ? ` (${r.failed} failed)` : ''));
        }
      } finally {
        await h.close();
      }
    }
    const one = rows.find((r) => r.n === 1);
    const four = rows.find((r) => r.n === 4);
    const minRatio = Math.min(...rows.map((r) => r.ratio));
    const speedup = one && four ? four.achieved / one.achieved : null;
    const memOk = rows.every((r) => r.processes.every((q) => q.limit === undefined || q.rss <= q.limit));
    const summary = {
      model: modelName, cpus, machineShare, factors: Object.fromEntries([...calib].map(([k, c]) => [k, c.factor])), minRatio, speedup4v1: speedup, predictedSpeedup4v1: one && four ? four.predicted / one.predicted : null,
      memoryWithinLimits: memOk, targets: { ratio: 0.85, speedup: 3 }, wireSecondsPerMB: wire !== null ? wire * 2 ** 20 : null,
    };
    if (json) process.stdout.write(JSON.stringify({ summary }) + '\n');
    else {
      say('');
      say(`achieved ÷ predicted: min ${minRatio.toFixed(3)} (target ≥ 0.85) ${minRatio >= 0.85 ? 'met' : 'MISSED'}`);
      if (speedup !== null) say(`4 nodes ÷ 1 node: ${speedup.toFixed(2)}× achieved, ${summary.predictedSpeedup4v1!.toFixed(2)}× predicted (target ≥ 3×) ${speedup >= 3 ? 'met' : 'MISSED'}`);
      if (wire !== null) say(`wire CPU measured at N=1: ${(wire * 2 ** 20 * 1000).toFixed(2)} ms per MB received or sent on a whole core (the placements count the default ${DEFAULT_WIRE_CPU_MS_PER_MB}) ('wire ms': at the bottleneck stage; 'no wire': the prediction without it)`);
      say(`resident memory of every stage within its node's memoryMB: ${memOk ? 'yes' : 'NO'}`);
    }
    return minRatio >= 0.85 && (speedup === null || speedup >= 3) && memOk ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

