/**
 * `kerf bench adapt`: live evaluation of the adapt controller. A device → edge → cloud pipeline
 * on this machine (tiers held to CPU shares by cgroups, emulated links), a bandwidth trace on
 * the device → edge link and a load trace on the edge (its CPU quota rewritten live: other
 * tenants taking the edge's CPU). The same trace and the same open-loop request schedule run
 * under: static best-at-start, bandwidth-only, load-aware, and the per-phase oracle (the best
 * fixed split of each phase, found by running every candidate split in that phase).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kerfError } from '../../errors.js';
import { parse } from '../args.js';
import { table } from '../format.js';
import { prepareModel } from '../../engine/prepare.js';
import { randomInputs } from '../../engine/shapes.js';
import { profileModel } from '../../profile/profile.js';
import type { Profile } from '../../profile/types.js';
import { up, type UpHandle } from '../../serve/up.js';
import { OipClient } from '../../serve/client.js';
import { repartition, setSwitchStrategy } from '../../serve/switch-client.js';
import { bestFeasible, liveCostModel, type AdaptEvent, type WarmStatus } from '../../adapt/live.js';
import type { AdaptConditions } from '../../adapt/decide.js';

const HELP = `usage: kerf bench adapt [--model m.onnx] [--phase-s 12] [--rate 3] [--oracle-s 4] [--json]

Device → edge → cloud on this machine (cgroup CPU shares, emulated links); four phases of
bandwidth (device → edge) × edge load (its CPU quota); the same open-loop request schedule under
static best-at-start, --adapt bandwidth, --adapt load-aware and the per-phase oracle. Reports
mean and p95 end-to-end latency per phase and overall, failed requests, and switches.

options:
  --model FILE      default ../shared/models/resnet18.onnx
  --phase-s S       seconds per phase (default 12; longer phases weigh transitions less)
  --rate R          requests per second, open loop (default 3)
  --oracle-s S      seconds per candidate split and phase for the oracle (default 4)
  --policies LIST   subset of static,bandwidth,load-aware,oracle (default all)
  --start CUTS      the split every policy starts on, e.g. 2,46 (default: the profiled best for phase A)
  --json            one JSON document instead of tables`;

const OPTIONS = {
  model: { type: 'string' }, 'phase-s': { type: 'string' }, rate: { type: 'string' }, 'oracle-s': { type: 'string' }, policies: { type: 'string' }, start: { type: 'string' }, json: { type: 'boolean' },
} as const;

interface Phase { name: string; rateMbit: number; edgeCpus: number }

/** Tier shares (cores) and links: a slow device; an edge and a cloud of a core each, the cloud one more hop away. */
const SHARES = { device: 0.25, edge: 1.0, cloud: 1.0 };
const PERIOD_US = 10_000;
const LINK0 = { delayMs: 2 };
const LINK1 = { rateMbit: 100, delayMs: 5 };
const PHASES: Phase[] = [
  { name: 'A 50 Mbit/s, edge idle', rateMbit: 50, edgeCpus: 1.0 },
  { name: 'B 50 Mbit/s, edge loaded', rateMbit: 50, edgeCpus: 0.12 },
  { name: 'C 10 Mbit/s, edge loaded', rateMbit: 10, edgeCpus: 0.12 },
  { name: 'D 10 Mbit/s, edge idle', rateMbit: 10, edgeCpus: 1.0 },
];

interface Sample { phase: number; seconds: number; ok: boolean; error?: string }
interface Row { errors: string[]; policy: string; phases: { mean: number; p95: number; n: number; failed: number; cuts?: string }[]; mean: number; p95: number; failed: number; switches: number }

function stats(xs: number[]): { mean: number; p95: number } {
  if (!xs.length) return { mean: NaN, p95: NaN };
  const s = [...xs].sort((a, b) => a - b);
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, p95: s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]! };
}

function scaled(base: Profile, tier: 'device' | 'edge' | 'cloud', cpus: number): Profile {
  const f = 1 / cpus;
  return {
    ...base, system: { ...base.system, name: tier, tier },
    blocks: base.blocks.map((b) => ({ ...b, latency: { ...b.latency, median: b.latency.median * f, p90: b.latency.p90 * f, min: b.latency.min * f } })),
    ...(base.callOverheadS !== undefined ? { callOverheadS: base.callOverheadS * f } : {}),
  };
}

async function setEdge(h: UpHandle, cpus: number): Promise<void> {
  const edge = h.processes.find((p) => p.name === 'edge');
  if (!edge?.cgroup) throw kerfError('KERF_ERR_CONFIG', 'bench adapt: the edge worker has no cgroup (CPU quotas unavailable here)');
  await writeFile(join(edge.cgroup, 'cpu.cfs_quota_us'), String(Math.round(cpus * PERIOD_US)));
}

async function apply(h: UpHandle, p: Phase): Promise<void> {
  h.links[0]!.link.update({ rateBps: p.rateMbit * 1e6 });
  await setEdge(h, p.edgeCpus);
}

/** Fire requests at `rate` per second for `seconds` (same schedule for every policy); wait for all. */
async function drive(client: OipClient, inputs: Parameters<OipClient['infer']>[0], rate: number, seconds: number, phase: number, out: Sample[]): Promise<void> {
  const n = Math.round(rate * seconds);
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const sentS = performance.now() / 1000;
    pending.push(client.infer(inputs).then((o) => {
      out.push({ phase, seconds: o.seconds, ok: o.status === 200, ...(o.status === 200 ? {} : { error: `t=${(sentS - t0 / 1000).toFixed(2)} s HTTP ${o.status} ${o.error?.code ?? ''}: ${o.error?.message ?? ''}` }) });
    }, (e: unknown) => { out.push({ phase, seconds: NaN, ok: false, error: `t=${(sentS - t0 / 1000).toFixed(2)} s ${(e as Error)?.message ?? String(e)}` }); }));
  }
  await Promise.all(pending);
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP);
  if (!p) return 0;
  const v = p.values;
  const here = dirname(fileURLToPath(import.meta.url));
  const modelPath = v.model ?? resolve(here, '..', '..', '..', '..', '..', 'shared', 'models', 'resnet18.onnx');
  if (!existsSync(modelPath)) throw kerfError('KERF_ERR_FILE', `${modelPath}: no such model; pass --model m.onnx`);
  const num = (s: string | undefined, flag: string, def: number): number => {
    if (s === undefined) return def;
    const x = Number(s);
    if (!(x > 0)) throw kerfError('KERF_ERR_USAGE', `${flag} '${s}': expected a positive number`);
    return x;
  };
  const phaseS = num(v['phase-s'], '--phase-s', 12), rate = num(v.rate, '--rate', 3), oracleS = num(v['oracle-s'], '--oracle-s', 4);
  const say = (s: string): void => { if (!v.json) process.stderr.write(`bench adapt: ${s}\n`); };
  const t00 = performance.now();

  say(`profiling ${modelPath} on one core (single-tensor blocks)`);
  const base = await profileModel(modelPath, { system: 'core', granularity: 'single', repeats: 5, warmup: 2 });
  const profiles = [scaled(base, 'device', SHARES.device), scaled(base, 'edge', SHARES.edge), scaled(base, 'cloud', SHARES.cloud)];
  const dir = await mkdtemp(join(tmpdir(), 'kerf-adapt-'));
  for (const pr of profiles) await writeFile(join(dir, `${pr.system.name}.profile.json`), JSON.stringify(pr));
  const { model, cutOf } = liveCostModel(profiles);
  const truth = (ph: Phase): AdaptConditions => ({
    links: [{ bytesPerS: ph.rateMbit * 1e6 / 8, rttS: 2 * LINK0.delayMs / 1000 }, { bytesPerS: LINK1.rateMbit * 1e6 / 8, rttS: 2 * LINK1.delayMs / 1000 }],
    tiers: [{ factor: 1, queueS: 0 }, { factor: SHARES.edge / ph.edgeCpus, queueS: 0 }, { factor: 1, queueS: 0 }],
  });
  const cutsOf = (b: number[]): number[] => b.map((x) => cutOf[x]!);
  let start = cutsOf(bestFeasible(model, truth(PHASES[0]!)).boundaries);
  say(`${model.blocks} blocks; best at start (phase A, profiled): cuts ${start.join(',')}`);
  if (v.start !== undefined) {
    const want = v.start.split(',').map((x) => Number(x.trim()));
    const ends = new Set(cutOf.filter((c) => c >= 0));
    if (want.length !== 2 || want.some((c) => !ends.has(c)) || !(want[0]! < want[1]!)) {
      throw kerfError('KERF_ERR_USAGE', `--start '${v.start}': expected two increasing cut ids among the profiled block ends (${[...ends].join(',')})`);
    }
    start = want;
    say(`starting every policy on cuts ${start.join(',')} (--start)`);
  }

  const prep = await prepareModel(modelPath);
  const inputs = randomInputs(prep.model, prep.inputShapes, 1);
  const launch = async (extra: string[], cuts: number[] = start): Promise<UpHandle> => {
    const h = await up({
      model: modelPath, cuts,
      tiers: [{ name: 'device', cpus: SHARES.device }, { name: 'edge', cpus: SHARES.edge }, { name: 'cloud', cpus: SHARES.cloud }],
      links: [{ rateBps: PHASES[0]!.rateMbit * 1e6, delayMs: LINK0.delayMs }, { rateBps: LINK1.rateMbit * 1e6, delayMs: LINK1.delayMs }],
      cpu: { periodUs: PERIOD_US }, workerArgs: extra, log: () => {},
    });
    if (h.cpu.mode !== 'cgroup') { await h.close(); throw kerfError('KERF_ERR_CONFIG', `bench adapt needs cgroup CPU quotas: ${h.cpu.notice ?? 'not available'}`); }
    await setSwitchStrategy(h.url, 'hot-swap', {}, h.token);
    return h;
  };
  const warm = async (client: OipClient): Promise<void> => { for (let i = 0; i < 4; i++) await client.infer(inputs); };
  /** The controller loads the likely splits' chunks on every tier once hot-swap is on: wait for it (bounded), so every policy starts from a settled deployment. */
  const warmed = async (h: UpHandle): Promise<WarmStatus | null> => {
    for (let i = 0; i < 600; i++) {
      const w = ((await (await fetch(`${h.url}/v1/conditions`)).json()) as { warm?: WarmStatus }).warm;
      if (!w || w.state === 'off' || w.state === 'done' || w.state === 'failed') return w ?? null;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw kerfError('KERF_ERR_TIMEOUT', 'bench adapt: the controller did not finish warming the likely splits within 150 s');
  };
  const warmReports: Record<string, WarmStatus> = {};

  const rows: Row[] = [];
  const allEvents: Record<string, AdaptEvent[]> = {};
  const candidates = new Map<string, number[]>([[start.join(','), start]]);
  for (const ph of PHASES) {
    // without queueing, with M/M/1 queueing, and with the bench's own periodic arrivals
    for (const q of [{ ratePerS: 0 }, { ratePerS: rate }, { ratePerS: rate, arrivalScv: 0 }]) { const c = cutsOf(bestFeasible(model, { ...truth(ph), ...q }).boundaries); candidates.set(c.join(','), c); }
  }
  const KNOWN = ['static', 'bandwidth', 'load-aware', 'oracle'];
  const want = new Set((v.policies ?? KNOWN.join(',')).split(',').map((x) => x.trim()));
  for (const w of want) if (!KNOWN.includes(w)) throw kerfError('KERF_ERR_USAGE', `--policies: '${w}' is not one of ${KNOWN.join(', ')}`);
  const policies = ([
    ['static best-at-start', [], 'static'],
    ['bandwidth-only', ['--adapt', 'bandwidth'], 'bandwidth'],
    ['load-aware', ['--adapt', 'load-aware'], 'load-aware'],
  ] as [string, string[], string][]).filter((x) => want.has(x[2]));
  const common = ['--profiles', dir, '--adapt-tiers', 'device,edge,cloud', '--adapt-links', `${PHASES[0]!.rateMbit}mbit/${LINK0.delayMs}ms,${LINK1.rateMbit}mbit/${LINK1.delayMs}ms`, '--min-dwell', '3'];
  try {
    for (const [name, args] of policies) {
      say(`${name}: starting`);
      const h = await launch(args.length ? [...args, ...common] : []);
      const client = new OipClient(h.url, h.name);
      try {
        await apply(h, PHASES[0]!);
        if (args.length) {
          const w = await warmed(h);
          if (w) {
            warmReports[name] = w;
            const t = w.report?.tiers.map((x) => `${x.tier} ${x.chunksLoaded ?? 0} chunks ${((x.loadedBytes ?? 0) / 1e6).toFixed(1)} MB`).join(', ');
            say(`${name}: warm ${w.state}, ${w.candidates.length} splits${w.report ? ` in ${(w.report.durationMs / 1000).toFixed(1)} s (${t})` : ''}${w.error ? `: ${w.error}` : ''}`);
          }
        }
        await warm(client);
        const samples: Sample[] = [];
        const starts: number[] = [];
        for (let i = 0; i < PHASES.length; i++) {
          starts.push(Date.now());
          await apply(h, PHASES[i]!);
          await drive(client, inputs, rate, phaseS, i, samples);
        }
        let events: AdaptEvent[] = [];
        if (args.length) {
          const r = await fetch(`${h.url}/v1/conditions`);
          events = ((await r.json()) as { events: AdaptEvent[] }).events;
          for (const e of events) {
            candidates.set(e.toCuts.join(','), e.toCuts);
            const t = Date.parse(e.at);
            let i = -1;
            starts.forEach((s0, k) => { if (s0 <= t) i = k; });
            if (i >= 0) (e as AdaptEvent & { when?: string }).when = `phase ${PHASES[i]!.name.split(' ')[0]} +${((t - starts[i]!) / 1000).toFixed(1)} s`;
          }
        }
        allEvents[name] = events;
        rows.push(summarise(name, samples, events.length));
        say(`${name}: mean ${(rows.at(-1)!.mean * 1000).toFixed(1)} ms, ${events.length} switches`);
      } finally {
        client.close();
        await h.close();
      }
    }
    // Oracle, in two steps. Screening: in each phase every candidate split runs alone from a
    // drained state; the best mean picks the phase's split. Then the oracle itself: one fresh
    // deployment through the same continuous trace, switching (hot-swap, chunks loaded) to each
    // phase's split the moment the phase begins. It knows the future, so it pays no detection;
    // it pays what any policy on that trace pays (the previous phase's backlog, the switch). Its
    // requests are new ones: the screening's best mean, chosen as the minimum of several noisy
    // means, is biased low and is reported beside it, not used as the target.
    if (want.has('oracle')) {
      say(`oracle: screening ${candidates.size} candidate splits × ${PHASES.length} phases`);
      const best: { samples: Sample[]; cuts: string }[] = [];
      const h = await launch([]);
      const client = new OipClient(h.url, h.name);
      try {
        await warm(client);
        for (let i = 0; i < PHASES.length; i++) {
          await apply(h, PHASES[i]!);
          let top: { samples: Sample[]; cuts: string; mean: number } | null = null;
          for (const [key, cuts] of candidates) {
            await repartition(h.url, { cuts }, h.token);
            for (let w = 0; w < 2; w++) await client.infer(inputs);
            const s: Sample[] = [];
            await drive(client, inputs, rate, oracleS, i, s);
            const m = stats(s.filter((x) => x.ok).map((x) => x.seconds)).mean;
            if (!top || m < top.mean) top = { samples: s, cuts: key, mean: m };
          }
          best.push(top!);
        }
      } finally {
        client.close();
        await h.close();
      }
      const screen = summarise('oracle screening (best drained run per phase)', best.flatMap((b) => b.samples), 0);
      screen.phases.forEach((ph, i) => { ph.cuts = best[i]!.cuts; });
      const plan = best.map((b) => candidates.get(b.cuts)!);
      say(`oracle: the trace on ${plan.map((c) => `[${c.join(',')}]`).join(' → ')}, switching at each phase's start`);
      const h2 = await launch([], plan[0]!);
      const client2 = new OipClient(h2.url, h2.name);
      try {
        await apply(h2, PHASES[0]!);
        // Load every split's chunks once (hot-swap keeps them), then back to phase A's split.
        for (const cuts of [...plan.slice(1), plan[0]!]) await repartition(h2.url, { cuts }, h2.token);
        await warm(client2);
        const samples: Sample[] = [];
        let cur = plan[0]!.join(','), switches = 0;
        for (let i = 0; i < PHASES.length; i++) {
          await apply(h2, PHASES[i]!);
          const to = plan[i]!;
          // Settled into a value at once: a switch failing while the phase's requests run is
          // reported after them, not as an unhandled rejection in the middle.
          const sw = to.join(',') === cur ? null : repartition(h2.url, { cuts: to }, h2.token).then(() => null, (e: unknown) => e);
          if (sw) { cur = to.join(','); switches++; }
          await drive(client2, inputs, rate, phaseS, i, samples);
          const failed = await sw;
          if (failed) throw failed;
        }
        const row = summarise('per-phase oracle', samples, switches);
        row.phases.forEach((ph, i) => { ph.cuts = plan[i]!.join(','); });
        rows.push(row, screen);
      } finally {
        client2.close();
        await h2.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const bw = rows.find((r) => r.policy === 'bandwidth-only'), la = rows.find((r) => r.policy === 'load-aware'), or = rows.find((r) => r.policy === 'per-phase oracle');
  const sc = rows.find((r) => r.policy.startsWith('oracle screening'));
  const vsBw = la && bw ? 1 - la.mean / bw.mean : NaN, vsOracle = la && or ? la.mean / or.mean - 1 : NaN, vsScreening = la && sc ? la.mean / sc.mean - 1 : NaN;
  const doc = {
    model: modelPath, blocks: model.blocks, shares: SHARES, links: { deviceEdge: LINK0, edgeCloud: LINK1 }, phases: PHASES, phaseS, rate, oracleS,
    start, rows, events: allEvents, warm: warmReports, loadAwareVsBandwidth: vsBw, loadAwareVsOracle: vsOracle, loadAwareVsScreening: vsScreening, wallS: (performance.now() - t00) / 1000,
  };
  if (v.json) { process.stdout.write(JSON.stringify(doc) + '\n'); return 0; }
  const ms = (x: number): string => (x * 1000).toFixed(1);
  const head = ['policy', ...PHASES.map((ph) => `${ph.name} mean/p95 ms`), 'overall mean/p95 ms', 'failed', 'switches'];
  process.stdout.write(table(head, rows.map((r) => [r.policy, ...r.phases.map((ph) => `${ms(ph.mean)}/${ms(ph.p95)}${ph.cuts ? ` [${ph.cuts}]` : ''}`), `${ms(r.mean)}/${ms(r.p95)}`, String(r.failed), String(r.switches)])) + '\n');
  process.stdout.write(`load-aware mean vs bandwidth-only: ${(vsBw * 100).toFixed(1)}% lower (target ≥ 14%); vs per-phase oracle: ${(vsOracle * 100).toFixed(1)}% higher (target ≤ 10%; vs the screening's best drained runs ${(vsScreening * 100).toFixed(1)}%); wall ${doc.wallS.toFixed(0)} s\n`);
  for (const r of rows) for (const e of r.errors) process.stdout.write(`  failed (${r.policy}): ${e}\n`);
  for (const [name, evs] of Object.entries(allEvents)) {
    for (const e of evs) {
      const sw = e.switchReport ? ` (switch prepared in ${e.switchReport.prepareMs.toFixed(0)} ms from ${e.switchReport.prepared}, took ${e.switchReport.durationMs.toFixed(0)} ms, downtime ${e.switchReport.downtimeMs.toFixed(3)} ms)` : e.error ? ` (switch failed: ${e.error})` : '';
      process.stdout.write(`  ${name}: ${(e as AdaptEvent & { when?: string }).when ?? ''} [${e.fromCuts}] → [${e.toCuts}] ${e.reason}${sw}\n`);
    }
  }
  return 0;
}

function summarise(policy: string, samples: Sample[], switches: number): Row {
  const phases = PHASES.map((_, i) => {
    const s = samples.filter((x) => x.phase === i);
    const st = stats(s.filter((x) => x.ok).map((x) => x.seconds));
    return { ...st, n: s.length, failed: s.filter((x) => !x.ok).length };
  });
  // Overall = the mean over phases of equal length, so the oracle's shorter runs weigh the same.
  const ok = samples.filter((x) => x.ok).map((x) => x.seconds);
  return { errors: samples.filter((x) => !x.ok).map((x) => `phase ${PHASES[x.phase]!.name.split(' ')[0]} ${x.error ?? ''}`), policy, phases, mean: phases.reduce((a, p) => a + p.mean, 0) / phases.length, p95: stats(ok).p95, failed: samples.filter((x) => !x.ok).length, switches };
}
