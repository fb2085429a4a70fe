import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { kerfError } from '../errors.js';
import { parse, parseInputShapes, parseIntList } from './args.js';

const HELP = `usage: kerf up plan.json [--model m.onnx] [options]
       kerf up placement.json [--model m.onnx] [--reference-cpus C] [--cpus NODE=C ...] [options]
       kerf up --model m.onnx --cuts C1,C2 [--links '10mbit/20ms,100mbit/5ms'] [options]

Start the device gateway and one worker per further tier as child processes on this machine,
with emulated links between tiers, wait until the pipeline is ready, print the endpoint, and
stop everything on Ctrl-C or SIGTERM (children also exit if this process dies).

From a plan (kerf plan -o plan.json): its cuts, its tiers and its network (rate = bandwidth,
one-way delay = RTT/2). The model is --model, else <plan's model>.onnx beside plan.json.

From a placement (kerf place -o placement.json): one worker per stage in its order, the gateway
at the entry node (running stage 0 when the entry is stage 0's node), the cluster's links
emulated, and every worker held to its node's CPU share with a cgroup quota
(/sys/fs/cgroup/cpu/kerf-<pid>-<tier>; removed on exit). A node of speed s gets
s × --reference-cpus cores; --cpus NODE=C sets one directly. Without writable cgroups the
workers run with 1 thread and a notice says the shares are not enforced.

options:
  --model FILE           the model (.onnx)
  --cuts C1,C2           cut ids of the tier boundaries (see kerf inspect): gateway runs part 0,
                         one worker per further part
  --links L1,L2          per hop, gateway first: RATE/DELAY[/JITTER] (e.g. 10mbit/20ms) or
                         'direct'; overrides the plan's network
  --codec C|auto|C1,C2   compress what crosses each hop (gateway first; one codec: every hop):
                         none, lz4, zstd[-L], shuffle+zstd, fp16[+zstd], int8[-ch][+zstd];
                         C/R: replies in R (default: C's lossless part);
                         auto (default with a plan): the plan's choice per hop (docs/codec.md)
  --input-shape N=DxD    concrete input shape (repeatable) for models with dynamic dims
  --name NAME            model name in URLs (default: file name without .onnx)
  --host HOST            address to bind (default 127.0.0.1)
  --port PORT            gateway HTTP port (default: any free port)
  --threads N            onnxruntime threads per tier (default 1)
  --reference-cpus C     cores of the system the placement's times were profiled on (default 1)
  --cpus NODE=C          hold NODE's process to C cores (repeatable; also gives the entry's
                         gateway a share)
  --cpu-period-us P      CFS period of the quotas (default 100000)
  --no-cpu-limit         do not use cgroups (tiers get whatever CPU they can)
  --switch STRATEGY      how POST /v1/partition (kerf repartition) switches splits live:
                         pause-resume, standby, on-demand (default) or hot-swap
  --standby C1,C2        with --switch standby: the split kept loaded beside the active one
  --adapt MODE           off (default), bandwidth or load-aware: the gateway repartitions by
                         itself (use --switch hot-swap); --profiles DIR holds <tier>.profile.json
                         per tier; --adapt-period S, --min-gain F, --min-dwell S (docs/adapt.md)
  --json                 print one JSON line when ready (endpoint, pids, links)
  -h, --help             this help

example:
  kerf up --model resnet18.onnx --cuts 2,28 --links 50mbit/10ms,20mbit/30ms
  curl -s localhost:PORT/v2/models/resnet18`;

const OPTIONS = {
  model: { type: 'string' }, cuts: { type: 'string' }, links: { type: 'string' }, codec: { type: 'string' }, 'input-shape': { type: 'string', multiple: true },
  name: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' },
  'reference-cpus': { type: 'string' }, cpus: { type: 'string', multiple: true }, 'cpu-period-us': { type: 'string' }, 'no-cpu-limit': { type: 'boolean' },
  switch: { type: 'string' }, standby: { type: 'string' },
  adapt: { type: 'string' }, profiles: { type: 'string' }, 'adapt-period': { type: 'string' }, 'min-gain': { type: 'string' }, 'min-dwell': { type: 'string' },
} as const;

function positive(v: string, flag: string): number {
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected a positive number`);
  return x;
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP);
  if (!p) return 0;
  const v = p.values;
  const { planToUp, placementToUp } = await import('../serve/up.js');
  const { parseRate, parseDuration } = await import('../link/index.js');
  type Opts = import('../serve/up.js').UpOptions;
  let opts: Opts;
  if (p.positionals.length > 1) throw kerfError('KERF_ERR_USAGE', `expected at most one plan.json\n${HELP}`);
  if (p.positionals.length === 1) {
    const file = p.positionals[0]!;
    let plan: unknown;
    try { plan = JSON.parse(await readFile(file, 'utf8')); } catch (e) {
      throw kerfError('KERF_ERR_FILE', `${file}: cannot read the plan (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (v.cuts !== undefined) throw kerfError('KERF_ERR_USAGE', `--cuts conflicts with ${file} (it gives the cuts)`);
    if ((plan as { schema?: unknown })?.schema === 'kerf.placement/v1') {
      const doc = plan as Parameters<typeof placementToUp>[0];
      const model = v.model ?? join(dirname(file), `${doc.model?.name}.onnx`);
      if (!existsSync(model)) throw kerfError('KERF_ERR_FILE', `${file}: model file ${model} not found; pass --model m.onnx`);
      const cpus: Record<string, number> = {};
      for (const c of v.cpus ?? []) {
        const m = /^([^=]+)=(.+)$/.exec(c);
        if (!m) throw kerfError('KERF_ERR_USAGE', `--cpus '${c}': expected NODE=CORES, e.g. pi1=0.25`);
        cpus[m[1]!] = positive(m[2]!, `--cpus ${m[1]}`);
      }
      opts = placementToUp(doc, model, { ...(v['reference-cpus'] !== undefined ? { referenceCpus: positive(v['reference-cpus'], '--reference-cpus') } : {}), cpus });
      // A stage stands for a small node: it keeps only its segment (the memory model counts no
      // more) and glibc returns freed memory instead of keeping an arena per thread.
      opts.workerArgs = [...(opts.workerArgs ?? []), '--release-model'];
      process.env.MALLOC_ARENA_MAX ??= '2';
      process.env.MALLOC_TRIM_THRESHOLD_ ??= '131072';
      const { checkPlacementModel } = await import('../serve/up.js');
      await checkPlacementModel(doc, model, parseInputShapes(v['input-shape']), file);
    } else {
      const doc = plan as Parameters<typeof planToUp>[0];
      if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.cuts) || !Array.isArray(doc.tiers)) {
        throw kerfError('KERF_ERR_PLAN', `${file}: neither a kerf plan ("schema": "kerf.plan/v1") nor a placement ("kerf.placement/v1")`);
      }
      const model = v.model ?? join(dirname(file), `${doc.model}.onnx`);
      if (!existsSync(model)) throw kerfError('KERF_ERR_FILE', `${file}: model file ${model} not found; pass --model m.onnx`);
      opts = planToUp(doc, model);
    }
  } else {
    if (!v.model || v.cuts === undefined) throw kerfError('KERF_ERR_USAGE', `give a plan.json, or --model and --cuts\n${HELP}`);
    opts = { model: v.model, cuts: parseIntList(v.cuts, '--cuts') };
  }
  if (v.links !== undefined) {
    opts.links = v.links.split(',').map((s, i) => {
      const t = s.trim();
      if (t === 'direct' || t === '-' || t === '') return null;
      const [rate, delay, jitter, more] = t.split('/');
      if (more !== undefined || !rate) throw kerfError('KERF_ERR_USAGE', `--links hop ${i} '${t}': expected RATE/DELAY[/JITTER], e.g. 10mbit/20ms`);
      return {
        rateBps: parseRate(rate, `--links hop ${i} rate`),
        delayMs: delay ? parseDuration(delay, `--links hop ${i} delay`) : 0,
        jitterMs: jitter ? parseDuration(jitter, `--links hop ${i} jitter`) : 0,
      };
    });
    if (opts.links.length > opts.cuts.length + 1) throw kerfError('KERF_ERR_USAGE', `--links: ${opts.links.length} hops given, the pipeline has at most ${opts.cuts.length + (opts.local === false ? 1 : 0)}`);
  }
  if (v.codec !== undefined && v.codec.trim().toLowerCase() !== 'auto') {
    const { parseHopCodec } = await import('../codec/index.js');
    const hops = opts.cuts.length + (opts.local === false ? 1 : 0);
    const list = v.codec.split(',').map((c, i) => parseHopCodec(c.trim(), `--codec hop ${i}`).name);
    if (list.length !== 1 && list.length !== hops) throw kerfError('KERF_ERR_USAGE', `--codec: ${list.length} codecs given, the pipeline has ${hops} hop(s) (give one for all, or one per hop)`);
    opts.codecs = list.length === 1 ? Array.from({ length: hops }, () => list[0]!) : list;
  } else if (v.codec !== undefined && p.positionals.length === 0) {
    throw kerfError('KERF_ERR_USAGE', '--codec auto takes the codecs of a plan.json; without one, name the codecs (e.g. --codec zstd-1)');
  }
  if ((v.cpus?.length || v['reference-cpus'] !== undefined) && (p.positionals.length === 0 || opts.tiers?.every((t) => t.cpus === undefined))) {
    throw kerfError('KERF_ERR_USAGE', '--cpus and --reference-cpus apply to a placement.json');
  }
  if (v['cpu-period-us'] !== undefined || v['no-cpu-limit']) {
    opts.cpu = { ...(v['cpu-period-us'] !== undefined ? { periodUs: positive(v['cpu-period-us'], '--cpu-period-us') } : {}), ...(v['no-cpu-limit'] ? { disabled: true } : {}) };
  }
  const shapes = parseInputShapes(v['input-shape']);
  if (Object.keys(shapes).length) opts.inputShapes = shapes;
  if (v.name) opts.name = v.name;
  if (v.host) opts.host = v.host;
  if (v.port !== undefined) {
    const port = Number(v.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw kerfError('KERF_ERR_USAGE', `--port '${v.port}': expected 0..65535`);
    opts.port = port;
  }
  if (v.threads !== undefined) {
    const t = Number(v.threads);
    if (!Number.isInteger(t) || t < 1) throw kerfError('KERF_ERR_USAGE', `--threads '${v.threads}': expected an integer ≥ 1`);
    opts.workerArgs = ['--threads', String(t)];
  }
  if (v.adapt !== undefined && v.adapt !== 'off') {
    // The gateway's controller: tier names and links as this command starts them (workers ignore these flags).
    if (!v.profiles) throw kerfError('KERF_ERR_USAGE', '--adapt needs --profiles DIR (one <tier>.profile.json per tier)');
    const names = opts.tiers?.map((t) => t.name) ?? ['device', 'edge', 'cloud', 'tier3', 'tier4'].slice(0, opts.cuts.length + 1);
    const hops = (opts.links ?? []).map((l) => l && l.rateBps !== undefined ? `${l.rateBps}bit/${l.delayMs ?? 0}ms` : 'direct');
    opts.workerArgs = [...(opts.workerArgs ?? []), '--adapt', v.adapt, '--profiles', v.profiles, '--adapt-tiers', names.join(','),
      ...(hops.length ? ['--adapt-links', hops.join(',')] : []),
      ...(v['adapt-period'] ? ['--adapt-period', v['adapt-period']] : []), ...(v['min-gain'] ? ['--min-gain', v['min-gain']] : []),
      ...(v['min-dwell'] ? ['--min-dwell', v['min-dwell']] : [])];
  }
  const quiet = v.json ?? false;
  opts.log = (line) => { if (!quiet) process.stderr.write(`kerf up: ${line}\n`); };
  // Signals during start-up must also stop the children started so far.
  let stopRequested = false;
  const early = (): void => { stopRequested = true; };
  process.once('SIGINT', early);
  process.once('SIGTERM', early);
  // One controller for one machine and many: the local substrate runs tiers as child processes.
  const { LocalSubstrate } = await import('../cluster/local.js');
  const { deploy } = await import('../cluster/deploy.js');
  const substrate = new LocalSubstrate({ ...(opts.host ? { host: opts.host } : {}), log: opts.log, ...(opts.cpu ? { cpu: opts.cpu } : {}) });
  const h = await deploy(substrate, opts).catch(async (e: unknown) => { await substrate.close(); throw e; });
  if (v.switch !== undefined || v.standby !== undefined) {
    const { setSwitchStrategy } = await import('../serve/switch-client.js');
    await setSwitchStrategy(h.url, (v.switch ?? 'standby') as never, v.standby !== undefined ? { standby: parseIntList(v.standby, '--standby') } : {})
      .catch(async (e: unknown) => { await h.close(); throw e; });
  }
  process.off('SIGINT', early);
  process.off('SIGTERM', early);
  if (v.json) {
    if (h.cpu.notice) process.stderr.write(`kerf up: ${h.cpu.notice}\n`);
    process.stdout.write(JSON.stringify({
      event: 'ready', url: h.url, model: h.name, infer: `${h.url}/v2/models/${h.name}/infer`,
      processes: h.processes, cpu: h.cpu, memory: h.memory(), links: h.links.map((l) => ({ from: l.from, to: l.to, listen: `${l.link.address.host}:${l.link.address.port}`, config: { ...l.link.config, rateBps: Number.isFinite(l.link.config.rateBps) ? l.link.config.rateBps : null } })),
    }) + '\n');
  } else {
    process.stdout.write(`kerf up: ${h.name} ready at ${h.url}/v2/models/${h.name}/infer (${h.processes.map((c) => `${c.name} pid ${c.pid}${c.cpus !== undefined ? ` ${+c.cpus.toFixed(3)} CPU` : ''}`).join(', ')}); Ctrl-C stops\n`);

  }
  if (!stopRequested) {
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  await h.close();
  await substrate.close();
  if (!quiet) process.stderr.write('kerf up: stopped\n');
  return 0;
}
