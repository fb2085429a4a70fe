import { kerfError } from '../../errors.js';
import {
  anchorCluster, place, placementLowerBound, zooPlaceModel,
  type Objective, type Placement, type PlaceModel, type PlaceModelName,
} from '../../plan/place/index.js';
import { parse } from '../args.js';

const HELP = `usage: kerf bench place [options]

Cluster placement on the anchor paper's instances: nodes uniform in a 150×150 square,
bandwidth log2(1 + 283230/d²) Mbit/s between every two nodes at distance d, node memory
64/128/256/512 MB (or mixed), node 0 the entry. Reports per setting kerf (the scalable
solver), greedy, random, the lower bound, the exact optimum where it can be had, solve times.

options:
  --models LIST       resnet50,mobilenetv2,inception (default all)
  --nodes LIST        default 5,10,15,20,50
  --memory LIST       MB values and/or 'mixed' (default 64,128,256,512,mixed)
  --trials N          seeded instances per setting (default 5)
  --seed N            base seed (default 1)
  --gflops G          node speed, GFLOP/s (default 8, a Raspberry-Pi-4-class node)
  --source S          graph (default): the zoo's ONNX models analysed by kerf's graph code
                      (blocks between single-tensor cuts, FLOPs, weights, crossing bytes);
                      table: the hand-computed per-layer tables of src/plan/place/models.ts
  --objective NAME    throughput (default) | comm (links only, the anchor's objective)
  --exact-nodes N     run the exact solver up to N nodes (default 20; at most 52)
  --exact-limit S     seconds the exact solver may take per instance (default 10)
  --no-entry          no entry node: input and output transfers are not counted (the anchor's model)
  --json              print every instance as JSON lines instead of the table
`;

const OPTIONS = {
  models: { type: 'string' },
  nodes: { type: 'string' },
  memory: { type: 'string' },
  trials: { type: 'string' },
  seed: { type: 'string' },
  gflops: { type: 'string' },
  source: { type: 'string' },
  objective: { type: 'string' },
  'exact-nodes': { type: 'string' },
  'exact-limit': { type: 'string' },
  json: { type: 'boolean' },
  'no-entry': { type: 'boolean' },
} as const;

/** One instance's results: bottlenecks in seconds (null: none found), times in seconds. */
export interface PlaceBenchRow {
  model: string;
  nodes: number;
  memory: number | 'mixed';
  trial: number;
  seed: number;
  lowerBound: number;
  /** the best proven bound: the lower bound, raised by the exact solver's proof */
  bound: number;
  kerf: number | null;
  greedy: number | null;
  random: number | null;
  exact: number | null;
  exactOptimal: boolean;
  stages: number;
  seconds: { lowerBound: number; kerf: number; greedy: number; random: number; exact: number | null };
}

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
}

function attempt(f: () => Placement): Placement | null {
  try {
    return f();
  } catch (e) {
    if ((e as { code?: string }).code === 'KERF_ERR_PLACE') return null;
    throw e;
  }
}

function list(v: string | undefined, def: string): string[] {
  return (v ?? def).split(',').map((s) => s.trim()).filter(Boolean);
}

function intOpt(v: string | undefined, flag: string, def: number, min: number): number {
  if (v === undefined) return def;
  const x = Number(v);
  if (!Number.isInteger(x) || x < min) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected an integer >= ${min}`);
  return x;
}

/** Zoo architecture of each benchmark model. */
const ZOO_NAMES: Record<PlaceModelName, string> = { resnet50: 'resnet50', mobilenetv2: 'mobilenet_v2', inception: 'googlenet' };

/**
 * A benchmark model from the zoo's ONNX graph (BatchNorm folded, as exported): blocks between
 * single-tensor cuts with kerf's FLOPs, weight bytes and crossing bytes; seconds = FLOPs ÷ GFLOP/s
 * (FLOPs count Conv and Gemm only, so pooling and adds are free here).
 */
export async function graphPlaceModel(model: PlaceModelName, gflops: number): Promise<PlaceModel> {
  const { zooModel } = await import('../../zoo/index.js');
  const { parseModel } = await import('../../graph/model.js');
  const { blockCuts, blocksOf } = await import('../../graph/cuts.js');
  const { prepareModel } = await import('../../engine/prepare.js');
  const name = ZOO_NAMES[model];
  const prep = await prepareModel(parseModel(zooModel(name, { batchNorm: 'folded' }), { name, source: `zoo:${name}` }));
  const cuts = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const blocks = blocksOf(prep.model, prep.analysis, cuts).map((b) => ({
    seconds: b.flops / (gflops * 1e9), outputBytes: b.outputBytes, paramBytes: b.paramBytes, flops: b.flops, ...(b.cutId !== undefined ? { cutId: b.cutId } : {}),
  }));
  return { name: model, inputBytes: prep.analysis.totals.inputBytes, blocks };
}

/** Run one instance with every solver (on `pm` when given, else the model's table). */
export function benchInstance(
  model: PlaceModelName, nodes: number, memory: number | 'mixed', trial: number, seed: number,
  o: { gflops: number; objective: Objective; exactNodes: number; exactLimit: number; entry: boolean },
  pm?: PlaceModel,
): PlaceBenchRow | null {
  const m = pm ?? zooPlaceModel(model, o.gflops);
  const c = anchorCluster({ nodes, seed, memoryMB: memory, entry: o.entry });
  const [lb, tLb] = timed(() => placementLowerBound(m, c, { objective: o.objective }));
  if (lb === Infinity) return null;
  const opts = { objective: o.objective, lowerBound: lb };
  const [k, tK] = timed(() => attempt(() => place(m, c, { ...opts, solver: 'scalable' })));
  const [g, tG] = timed(() => attempt(() => place(m, c, { ...opts, solver: 'greedy' })));
  const [r, tR] = timed(() => attempt(() => place(m, c, { ...opts, solver: 'random', seed: seed ^ 0x5bd1e995 })));
  let e: Placement | null = null;
  let tE: number | null = null;
  if (nodes <= o.exactNodes) {
    const deadline = performance.now() + o.exactLimit * 1000;
    [e, tE] = timed(() => attempt(() => place(m, c, { ...opts, solver: 'exact', shouldStop: () => performance.now() > deadline })));
  }
  const bn = (p: Placement | null): number | null => (p ? p.bottleneck.seconds : null);
  return {
    model, nodes, memory, trial, seed, lowerBound: lb,
    bound: Math.max(lb, e ? e.lowerBound : lb),
    kerf: bn(k), greedy: bn(g), random: bn(r), exact: e?.optimal ? e.bottleneck.seconds : null, exactOptimal: e?.optimal ?? false,
    stages: k?.stages.length ?? 0,
    seconds: { lowerBound: tLb, kerf: tK + tLb, greedy: tG, random: tR, exact: tE === null ? null : tE + tLb },
  };
}

const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
/** a / b, with 0 / 0 = 1 (links-only objective: a model on one node has no bottleneck) */
const ratio = (a: number, b: number): number => (a === b ? 1 : a / b);
const fmt = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

/** Summary figures over all rows (also used by tests of the benchmark). */
export function summarise(rows: PlaceBenchRow[]): {
  instances: number; kerfVsBound: number; kerfVsLowerBound: number; worseThanGreedy: number; worseThanRandom: number;
  greedyOverKerf: number; randomOverKerf: number; kerfVsExact: number; exactInstances: number; kerfMissing: number;
  maxKerfSeconds: number;
} {
  const ok = rows.filter((r) => r.kerf !== null);
  const tol = (a: number, b: number): boolean => a > b * (1 + 1e-9);
  return {
    instances: rows.length,
    kerfMissing: rows.length - ok.length,
    kerfVsBound: mean(ok.map((r) => ratio(r.kerf!, r.bound))),
    kerfVsLowerBound: mean(ok.map((r) => ratio(r.kerf!, r.lowerBound))),
    worseThanGreedy: ok.filter((r) => r.greedy !== null && tol(r.kerf!, r.greedy)).length + rows.filter((r) => r.kerf === null && r.greedy !== null).length,
    worseThanRandom: ok.filter((r) => r.random !== null && tol(r.kerf!, r.random)).length + rows.filter((r) => r.kerf === null && r.random !== null).length,
    greedyOverKerf: mean(ok.filter((r) => r.greedy !== null).map((r) => ratio(r.greedy!, r.kerf!))),
    randomOverKerf: mean(ok.filter((r) => r.random !== null).map((r) => ratio(r.random!, r.kerf!))),
    kerfVsExact: mean(ok.filter((r) => r.exact !== null).map((r) => ratio(r.kerf!, r.exact!))),
    exactInstances: ok.filter((r) => r.exact !== null).length,
    maxKerfSeconds: Math.max(0, ...rows.map((r) => r.seconds.kerf)),
  };
}

export async function run(argv: string[]): Promise<number | void> {
  const parsed = parse(argv, OPTIONS, HELP, false);
  if (!parsed) return 0;
  const v = parsed.values;
  const models = list(v.models, 'resnet50,mobilenetv2,inception') as PlaceModelName[];
  for (const m of models) if (!['resnet50', 'mobilenetv2', 'inception'].includes(m)) throw kerfError('KERF_ERR_USAGE', `--models: unknown model '${m}'`);
  const nodes = list(v.nodes, '5,10,15,20,50').map((s) => intOpt(s, '--nodes', 0, 1));
  const memory = list(v.memory, '64,128,256,512,mixed').map((s) => (s === 'mixed' ? 'mixed' as const : intOpt(s, '--memory', 0, 1)));
  const trials = intOpt(v.trials, '--trials', 5, 1);
  const seed0 = intOpt(v.seed, '--seed', 1, 0);
  const gflops = v.gflops !== undefined ? Number(v.gflops) : 8;
  if (!(gflops > 0)) throw kerfError('KERF_ERR_USAGE', `--gflops '${v.gflops}': expected a positive number`);
  const objective = (v.objective ?? 'throughput') as Objective;
  if (objective !== 'throughput' && objective !== 'comm') throw kerfError('KERF_ERR_USAGE', `--objective '${objective}': expected throughput or comm`);
  const exactNodes = Math.min(52, intOpt(v['exact-nodes'], '--exact-nodes', 20, 0));
  const exactLimit = v['exact-limit'] !== undefined ? Number(v['exact-limit']) : 10;
  const o = { gflops, objective, exactNodes, exactLimit, entry: !v['no-entry'] };
  const source = v.source ?? 'graph';
  if (source !== 'graph' && source !== 'table') throw kerfError('KERF_ERR_USAGE', `--source '${source}': expected graph or table`);
  const pms = new Map<PlaceModelName, PlaceModel>();
  for (const m of models) pms.set(m, source === 'graph' ? await graphPlaceModel(m, gflops) : zooPlaceModel(m, gflops));
  const rows: PlaceBenchRow[] = [];
  const out = process.stdout;
  if (!v.json) {
    const desc = models.map((m) => `${m} ${pms.get(m)!.blocks.length} blocks`).join(', ');
    out.write(`kerf bench place: models from ${source === 'graph' ? "the zoo's ONNX graphs" : 'the per-layer tables'} (${desc}); objective ${objective}, ${o.entry ? 'entry n0' : 'no entry'}, ${gflops} GFLOP/s nodes, ${trials} trials per setting, exact up to ${exactNodes} nodes (${exactLimit} s limit)\n`);
    out.write('bottlenecks are means over feasible trials, ms; ratios are means of per-instance ratios\n\n');
    out.write(['model'.padEnd(11), 'N'.padStart(3), 'memMB'.padStart(6), 'ok'.padStart(3), 'kerf'.padStart(9), 'greedy'.padStart(9), 'random'.padStart(9),
      'bound'.padStart(9), 'exact'.padStart(9), 'k/bound'.padStart(8), 'k/exact'.padStart(8), 'g/k'.padStart(6), 'r/k'.padStart(6),
      'stg'.padStart(4), 'kerf ms'.padStart(8), 'exact ms'.padStart(9)].join(' ') + '\n');
  }
  for (const model of models) {
    for (const N of nodes) {
      for (const mem of memory) {
        const set: PlaceBenchRow[] = [];
        for (let t = 0; t < trials; t++) {
          const seed = seed0 * 1_000_003 + N * 7919 + (mem === 'mixed' ? 1 : mem) * 31 + t * 104_729;
          const row = benchInstance(model, N, mem, t, seed, o, pms.get(model));
          if (!row) continue;
          set.push(row);
          if (v.json) out.write(JSON.stringify(row) + '\n');
        }
        rows.push(...set);
        if (v.json) continue;
        const ms = (xs: (number | null)[]): string => {
          const ys = xs.filter((x): x is number => x !== null);
          return ys.length === xs.length && ys.length > 0 ? fmt(mean(ys) * 1000, 1) : ys.length ? `${fmt(mean(ys) * 1000, 1)}*` : '-';
        };
        const ok = set.filter((r) => r.kerf !== null);
        const ex = ok.filter((r) => r.exact !== null);
        out.write([
          model.padEnd(11), String(N).padStart(3), String(mem).padStart(6), `${set.length}`.padStart(3),
          ms(set.map((r) => r.kerf)).padStart(9), ms(set.map((r) => r.greedy)).padStart(9), ms(set.map((r) => r.random)).padStart(9),
          ms(set.map((r) => r.bound)).padStart(9), (ex.length ? ms(set.map((r) => r.exact)) : '-').padStart(9),
          fmt(mean(ok.map((r) => ratio(r.kerf!, r.bound)))).padStart(8),
          (ex.length ? fmt(mean(ex.map((r) => ratio(r.kerf!, r.exact!)))) : '-').padStart(8),
          fmt(mean(ok.filter((r) => r.greedy !== null).map((r) => ratio(r.greedy!, r.kerf!))), 2).padStart(6),
          fmt(mean(ok.filter((r) => r.random !== null).map((r) => ratio(r.random!, r.kerf!))), 2).padStart(6),
          fmt(mean(ok.map((r) => r.stages)), 1).padStart(4),
          fmt(mean(set.map((r) => r.seconds.kerf * 1000)), 0).padStart(8),
          (ex.length ? fmt(mean(set.filter((r) => r.seconds.exact !== null).map((r) => r.seconds.exact! * 1000)), 0) : '-').padStart(9),
        ].join(' ') + '\n');
      }
    }
  }
  const s = summarise(rows);
  const line = `summary: ${s.instances} feasible instances; kerf / best proven bound ${fmt(s.kerfVsBound, 4)} (target <= 1.05; anchor 1.092), ` +
    `kerf / relaxation bound ${fmt(s.kerfVsLowerBound, 4)}; kerf worse than greedy on ${s.worseThanGreedy}, than random on ${s.worseThanRandom}; ` +
    `greedy / kerf ${fmt(s.greedyOverKerf, 3)}, random / kerf ${fmt(s.randomOverKerf, 3)}; kerf / exact optimum ${fmt(s.kerfVsExact, 4)} on ${s.exactInstances} instances; ` +
    `slowest kerf solve ${fmt(s.maxKerfSeconds, 3)} s\n`;
  if (v.json) out.write(JSON.stringify({ summary: s }) + '\n');
  else out.write('\n' + line);
  return s.worseThanGreedy + s.worseThanRandom + s.kerfMissing > 0 ? 1 : 0;
}
