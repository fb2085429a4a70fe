/**
 * `kerf bench rollout`: a 3-tier deployment on the local substrate (hosts gw, a, b on this
 * machine) under a closed-loop load rolls onto a second version of the model (same
 * architecture, other weights: the zoo's seeds) and back. Reports per rollout the gateway's
 * downtime, p99 of the requests overlapping the rollout ÷ steady p99, peak extra resident
 * memory per host over its steady state (MB and % of that host's share of the model), and
 * failed / lost / wrong / old-after-switch answers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kerfError } from '../../errors.js';
import { parse } from '../args.js';
import { table } from '../format.js';
import { Load, quantile, sleep } from './load.js';

const HELP = `usage: kerf bench rollout [--arch mobilenet_v2] [--clients 8] [--steady-s 3] [--json]

Build two versions of a zoo architecture (seeds 1 and 2), deploy v1 over 3 tiers on this
machine's substrate, drive a closed loop of --clients requests, roll out v2, then back to v1.
Per rollout: downtime inside the gateway, p99 of requests overlapping the rollout ÷ steady p99,
peak extra resident memory per host (MB, and % of the host's steady resident memory, what
serving its share of the model costs it; --json also gives % of its part's weights), failed, lost, wrong answers, and answers of the old version to requests sent after
the rollout returned.

options:
  --arch NAME     zoo architecture (default mobilenet_v2; see kerf zoo list)
  --clients N     requests kept in flight (default 8)
  --steady-s S    seconds of steady load before each rollout (default 3)
  --json          one JSON line per rollout
  -h, --help      this help`;

const OPTIONS = { arch: { type: 'string' }, clients: { type: 'string' }, 'steady-s': { type: 'string' }, json: { type: 'boolean' } } as const;

export interface RolloutBenchRow {
  model: string;
  rollout: string;
  downtimeMs: number;
  durationMs: number;
  /** the longest the gateway's event loop was blocked during the rollout (preparing the new model's graph) */
  gatewayStallMs: number;
  p99SteadyMs: number;
  p99RolloutMs: number;
  p99Ratio: number;
  /** per host: peak extra RSS during the rollout over the steady RSS, MB, as % of the host's steady
   * RSS (what serving its share of the model costs it) and as % of its part's weights */
  extra: { host: string; extraMB: number; rssPct: number; weightsPct: number; steadyMB: number }[];
  requests: number;
  failed: number;
  lost: number;
  wrong: number;
  oldAfterSwitch: number;
  /** beside or stage by stage, and why (chosen from the hosts' memory) */
  way: string;
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP, false);
  if (!p) return 0;
  const v = p.values;
  const clients = Number(v.clients ?? 8), steadyS = Number(v['steady-s'] ?? 3);
  if (!(clients >= 1) || !(steadyS > 0)) throw kerfError('KERF_ERR_USAGE', '--clients and --steady-s must be positive');
  const { zooModel } = await import('../../zoo/index.js');
  const { prepareModel } = await import('../../engine/prepare.js');
  const { LocalSubstrate } = await import('../../cluster/local.js');
  const { deploy } = await import('../../cluster/deploy.js');
  const { rollout } = await import('../../serve/switch-client.js');
  const { blockCuts } = await import('../../graph/cuts.js');
  const { segmentBounds, segmentPart } = await import('../../serve/segment.js');
  const arch = v.arch ?? 'mobilenet_v2';
  const dir = mkdtempSync(join(tmpdir(), 'kerf-bench-rollout-'));
  const files = [join(dir, `${arch}-v1.onnx`), join(dir, `${arch}-v2.onnx`)];
  files.forEach((f, i) => writeFileSync(f, zooModel(arch, { seed: i + 1 })));
  const preps = [await prepareModel(files[0]!), await prepareModel(files[1]!)];
  const ids = blockCuts(preps[0]!.analysis, 'single').map((c) => c.id);
  const cuts = [ids[Math.floor(ids.length / 3)]!, ids[Math.floor((2 * ids.length) / 3)]!];
  const weights = [0, 1, 2].map((k) => {
    const part = segmentPart(preps[0]!, segmentBounds(preps[0]!, { cuts, blocks: [k, k] }));
    return (part.proto.graph?.initializer ?? []).reduce((a, t) => a + (t.rawData?.byteLength ?? 0) + (t.floatData?.length ?? 0) * 4, 0);
  });
  const token = `bench-rollout-${process.pid}`;
  const sub = new LocalSubstrate({ hosts: ['gw', 'a', 'b'] });
  const hosts = ['gw', 'a', 'b'];
  const d = await deploy(sub, { model: files[0]!, cuts, hostOf: hosts, parts: 'whole', token, name: arch });
  const rows: RolloutBenchRow[] = [];
  try {
    await sleep(500);
    for (const [i, target] of [[1, { model: files[1]! }], [0, { back: true as const }]] as const) {
      const load = await Load.start(d.url, arch, preps, clients);
      await sleep(steadyS * 1000);
      const base = d.memory().map((m) => m.rss);
      let peak = [...base];
      const sampler = setInterval(() => { d.memory().forEach((m, k) => { peak[k] = Math.max(peak[k] ?? 0, m.rss); }); }, 20);
      const t0 = performance.now();
      const rep = await rollout(d.url, target, token);
      const t1 = performance.now();
      clearInterval(sampler);
      d.memory().forEach((m, k) => { peak[k] = Math.max(peak[k] ?? 0, m.rss); });
      await sleep(1000);
      const res = await load.stop();
      const steady = res.done.filter((x) => x.end < t0 && x.start > t0 - steadyS * 1000 + 500).map((x) => x.end - x.start);
      const over = res.done.filter((x) => x.end >= t0 && x.start <= t1).map((x) => x.end - x.start);
      const old = res.done.filter((x) => x.start > t1 && x.version !== i).length;
      const p99s = quantile(steady, 0.99), p99r = quantile(over, 0.99);
      const row: RolloutBenchRow = {
        model: arch, rollout: i === 1 ? 'v1 → v2' : 'v2 → v1 (--back)', downtimeMs: rep.downtimeMs, durationMs: t1 - t0, gatewayStallMs: rep.gatewayStallMs ?? NaN,
        p99SteadyMs: p99s, p99RolloutMs: p99r, p99Ratio: p99r / p99s,
        extra: hosts.map((host, k) => {
          const x = Math.max(0, peak[k]! - base[k]!);
          return { host, extraMB: x / 2 ** 20, rssPct: (100 * x) / base[k]!, weightsPct: (100 * x) / weights[k]!, steadyMB: base[k]! / 2 ** 20 };
        }),
        requests: res.sent, failed: res.failed, lost: res.lost, wrong: res.wrong + res.duplicated, oldAfterSwitch: old,
        way: rep.rollout?.way ? `${rep.rollout.way.way}: ${rep.rollout.way.reason}` : 'unknown',
      };
      peak = [];
      rows.push(row);
      if (v.json) process.stdout.write(JSON.stringify(row) + '\n');
    }
  } finally {
    await d.close();
    await sub.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (!v.json) {
    const f = (x: number, n = 1): string => x.toFixed(n);
    process.stdout.write(table(['rollout', 'downtime ms', 'duration ms', 'gateway stall ms', 'p99 steady ms', 'p99 rollout ms', 'ratio', 'peak extra memory per host: MB (% of its steady RSS)', 'requests', 'failed', 'lost', 'wrong', 'old after'],
      rows.map((r) => [r.rollout, f(r.downtimeMs, 4), f(r.durationMs, 0), f(r.gatewayStallMs, 0), f(r.p99SteadyMs), f(r.p99RolloutMs), f(r.p99Ratio, 2), r.extra.map((e) => `${e.host} +${f(e.extraMB)} (${f(e.rssPct, 0)}% of ${f(e.steadyMB, 0)})`).join(', '),
        String(r.requests), String(r.failed), String(r.lost), String(r.wrong), String(r.oldAfterSwitch)])) + '\n');
    for (const r of rows) {
      process.stdout.write(`${r.rollout}: ${r.way}\n`);
      process.stdout.write(`${r.rollout}: downtime < 1 ms ${r.downtimeMs < 1 ? 'met' : 'MISSED'}; p99 ratio ≤ 1.5 ${r.p99Ratio <= 1.5 ? 'met' : 'MISSED'}\n`);
    }
  }
  return rows.every((r) => r.failed === 0 && r.lost === 0 && r.wrong === 0 && r.oldAfterSwitch === 0) ? 0 : 1;
}
