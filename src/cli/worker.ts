import { kerfError } from '../errors.js';
import { parse, parseInputShapes, parseIntList, TLS_OPTIONS, tlsFromFlags } from './args.js';

const HELP = `usage: kerf worker --listen HOST:PORT --model m.onnx [--blocks A..B] [--cuts C1,C2] [--next HOST:PORT] [options]
       kerf worker --gateway --listen HOST:PORT --model m.onnx [--cuts C1,C2 --blocks 0..0|none] [--next HOST:PORT]

Serve one segment of a split model as a tier. A worker receives the tensors crossing its
input cut, runs its blocks with onnxruntime and forwards outputs and carried tensors to
--next (answering back up the chain), or answers itself when it is the last tier.
With --gateway it is the device tier instead: the Open Inference Protocol v2 over HTTP on
--listen (GET /v2/health/ready, GET /v2/models/NAME, POST /v2/models/NAME/infer, /metrics).

options:
  --listen HOST:PORT     where requests arrive (port 0: any free port, printed)
  --model FILE           the whole model (.onnx); every tier loads the same file
  --blocks A..B          blocks A to B (inclusive) of the model at --granularity; with --cuts,
                         parts A to B of the split those cuts make (default: everything)
  --cuts C1,C2           cut ids of the pipeline's tier boundaries (see kerf inspect)
  --granularity G        single (default; as profiles count blocks) or all
  --next HOST:PORT       the next tier; absent: this is the last one
  --next-segment ID      segment id to ask the next tier for (default: its default)
  --next-codec C[/R]     compress what goes to the next tier: none (default), lz4, zstd[-L],
                         shuffle+zstd, fp16[+zstd], int8[-ch][+zstd]; its replies come back in
                         R (default: C's lossless part) (docs/codec.md)
  --codecs LIST          codecs this worker decodes from its caller (default: all)
  --token T              the pipeline's shared secret (default: env KERF_TOKEN)
  --metrics HOST:PORT    serve Prometheus /metrics here (the gateway serves it on --listen)
  --name NAME            stage name in metrics and logs (default worker / device)
  --model-name NAME      model name in gateway URLs (default: file name without .onnx)
  --input-shape N=DxD    concrete input shape (repeatable) for models with dynamic dims
  --threads N            onnxruntime intra-op threads (default 1)
  --queue N              requests that may wait for compute before 503/OVERLOADED (default 64)
  --profiled-ms MS       the segment's profiled compute time: enables the load factor metric
  --json                 print one JSON line when listening
  --plan FILE            gateway: the kerf plan its cuts come from (shown by GET /v1/partition)
  --tls-cert F --tls-key F  serve the tier frames over TLS with this certificate (worker)
  --tls-ca F             verify the next tier's certificate with this CA; on a worker with a
                         cert, also require clients to present one it signed (mutual TLS)
  --whole-model F        worker whose --model is only its part: the whole model, for loading other
                         segments (a repartition); asked of the parent agent when absent
  --whole-input-shape N=DxD  the whole model's concrete input shapes (repeatable)
  --release-model        worker: free the whole model once its segment is loaded (less memory;
                         a later load control prepares it again)
  --host-name N          the host this tier runs on, and --memory-mb M the memory that host
                         offers stages (MB): a rollout loads a new version beside the old only
                         where it fits (default: this machine's name; no declared limit)
  --part-cache DIR       worker: its host's part cache (<sha256>.onnx; an agent passes its
                         --cache): a rollout across hosts sends the new version's part into it
gateway only:
  --replay               keep each request's input until its answer and run it again on the
                         pipeline a failover switches in when its own fails (docs/cluster.md)
                         (with a --token, every change — POST /v1/partition, /strategy, /warm,
                         /failover, /v1/rollout — needs it as Authorization: Bearer)
  --switch-strategy S    gateway: how it switches splits (pause-resume, standby, on-demand,
                         hot-swap; default the switcher's; docs/switch.md)
  --replay-hold-ms MS    how long a request waits for a working pipeline (default 30000)
  --link-probes S        keep every hop's bandwidth and RTT estimate live with light probes when no
                         transfer told it for S seconds (GET /v1/conditions, /metrics; off: none;
                         kerf up --hosts turns them on)
gateway only, adaptation (docs/adapt.md):
  --adapt MODE           off (default), bandwidth or load-aware: repartition by itself
  --profiles DIR         the profiles folder kerf plan takes (<model>.<system>.profile.json with
                         system.tier; needed by --adapt)
  --adapt-tiers T1,T2    tier names in chain order (default device,edge,cloud…; the workers' --name)
  --adapt-links L1,L2    per hop, believed before transfers arrive: RATE/DELAY (e.g. 50mbit/5ms)
  --adapt-period S       seconds between decisions (default 1)
  --min-gain F           switch only for this predicted relative gain (default 0.2)
  --min-dwell S          and only after this many seconds on the current split (default 3)
  --adapt-codecs SET     codecs the links may switch to as the link changes: lossless, lossy or a
                         list (default: none, the links keep theirs); priced from the profiles'
                         kerf profile --codecs measurements (docs/codec.md)
  -h, --help             this help

example:
  KERF_TOKEN=s3cret kerf worker --listen 127.0.0.1:9002 --model resnet18.onnx --cuts 4,17 --blocks 2..2
  KERF_TOKEN=s3cret kerf worker --listen 127.0.0.1:9001 --model resnet18.onnx --cuts 4,17 --blocks 1..1 --next 127.0.0.1:9002
  KERF_TOKEN=s3cret kerf worker --gateway --listen 127.0.0.1:8000 --model resnet18.onnx --cuts 4,17 --blocks 0..0 --next 127.0.0.1:9001`;

const OPTIONS = {
  listen: { type: 'string' }, model: { type: 'string' }, blocks: { type: 'string' }, cuts: { type: 'string' },
  granularity: { type: 'string' }, next: { type: 'string' }, 'next-segment': { type: 'string' }, token: { type: 'string' },
  metrics: { type: 'string' }, name: { type: 'string' }, 'model-name': { type: 'string' }, 'input-shape': { type: 'string', multiple: true },
  threads: { type: 'string' }, queue: { type: 'string' }, 'profiled-ms': { type: 'string' }, gateway: { type: 'boolean' }, json: { type: 'boolean' },
  'release-model': { type: 'boolean' }, plan: { type: 'string' }, ...TLS_OPTIONS, replay: { type: 'boolean' }, 'replay-hold-ms': { type: 'string' },
  'next-codec': { type: 'string' }, codecs: { type: 'string' }, 'switch-strategy': { type: 'string' },
  'host-name': { type: 'string' }, 'memory-mb': { type: 'string' }, 'part-cache': { type: 'string' },
  adapt: { type: 'string' }, profiles: { type: 'string' }, 'adapt-tiers': { type: 'string' }, 'adapt-links': { type: 'string' },
  'adapt-period': { type: 'string' }, 'min-gain': { type: 'string' }, 'min-dwell': { type: 'string' }, 'adapt-codecs': { type: 'string' }, 'link-probes': { type: 'string' }, 'whole-model': { type: 'string' }, 'whole-input-shape': { type: 'string', multiple: true },
} as const;

function positiveInt(v: string | undefined, flag: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected an integer ≥ 1`);
  return n;
}

function parseBlocks(v: string | undefined): [number, number] | null | undefined {
  if (v === undefined) return undefined;
  if (v === 'none') return null;
  const m = /^(\d+)(?:\.\.(\d+))?$/.exec(v);
  if (!m) throw kerfError('KERF_ERR_USAGE', `--blocks '${v}': expected A..B (e.g. 0..3), a single block, or none`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP, false);
  if (!p) return 0;
  const v = p.values;
  if (!v.listen || !v.model) throw kerfError('KERF_ERR_USAGE', `--listen and --model are required\n${HELP}`);
  const token = v.token ?? process.env.KERF_TOKEN;
  if (!token && (!v.gateway || v.next)) throw kerfError('KERF_ERR_USAGE', '--token T (or env KERF_TOKEN) is required: the pipeline\'s shared secret');
  const { parseAddress, fmtAddress } = await import('../serve/nexthop.js');
  const listen = parseAddress(v.listen, '--listen');
  const cuts = v.cuts !== undefined ? parseIntList(v.cuts, '--cuts', { allowEmpty: true }) : undefined;
  const blocks = parseBlocks(v.blocks);
  const granularity = v.granularity;
  if (granularity !== undefined && granularity !== 'single' && granularity !== 'all') throw kerfError('KERF_ERR_USAGE', `--granularity '${granularity}': expected single or all`);
  const inputShapes = parseInputShapes(v['input-shape']);
  const threads = positiveInt(v.threads, '--threads', 1);
  const queueLimit = positiveInt(v.queue, '--queue', 64);
  let profiledS: number | undefined;
  if (v['profiled-ms'] !== undefined) {
    profiledS = Number(v['profiled-ms']) / 1000;
    if (!(profiledS > 0)) throw kerfError('KERF_ERR_USAGE', `--profiled-ms '${v['profiled-ms']}': expected a positive number`);
  }
  const next = v.next !== undefined ? parseAddress(v.next, '--next') : null;
  const tlsOpts = tlsFromFlags(v);
  if (tlsOpts && !v.gateway && !tlsOpts.server) throw kerfError('KERF_ERR_USAGE', 'a worker serves TLS with --tls-cert and --tls-key (--tls-ca alone only verifies its next tier)');
  const { parseCodec, parseHopCodec } = await import('../codec/index.js');
  const nextCodec = v['next-codec'] !== undefined ? parseHopCodec(v['next-codec'], '--next-codec').name : 'none';
  if (nextCodec !== 'none' && !next) throw kerfError('KERF_ERR_USAGE', `--next-codec ${nextCodec}: this tier has no --next to send to`);
  const codecs = v.codecs !== undefined ? v.codecs.split(',').map((c) => parseCodec(c, '--codecs entry').name) : undefined;
  if (codecs && v.gateway) throw kerfError('KERF_ERR_USAGE', '--codecs: a gateway receives no tier frames (use --next-codec)');
  const out = (line: string): void => { process.stdout.write(line + '\n'); };
  // A wrong token is said on both sides: here when this tier refuses a client or is refused.
  const { logAuthRefusals } = await import('../serve/diagnostics.js');
  logAuthRefusals((line) => { process.stderr.write(`kerf ${v.gateway ? 'gateway' : 'worker'} ${v.name ?? (v.gateway ? 'device' : 'worker')}: ${line}\n`); });

  let switchStrategy: import('../serve/switch.js').SwitchStrategy | undefined;
  if (v['switch-strategy'] !== undefined) {
    const { SWITCH_STRATEGIES } = await import('../serve/switch.js');
    if (!v.gateway) throw kerfError('KERF_ERR_USAGE', '--switch-strategy: only a gateway switches splits');
    if (!SWITCH_STRATEGIES.includes(v['switch-strategy'] as never)) throw kerfError('KERF_ERR_USAGE', `--switch-strategy '${v['switch-strategy']}': one of ${SWITCH_STRATEGIES.join(', ')}`);
    switchStrategy = v['switch-strategy'] as typeof switchStrategy;
  }
  const memoryMB = v['memory-mb'] !== undefined ? Number(v['memory-mb']) : undefined;
  if (memoryMB !== undefined && !(memoryMB > 0)) throw kerfError('KERF_ERR_USAGE', `--memory-mb '${v['memory-mb']}': expected a positive number of MB`);
  const memory = v['host-name'] !== undefined || memoryMB !== undefined
    ? { ...(v['host-name'] !== undefined ? { host: v['host-name'] } : {}), ...(memoryMB !== undefined ? { limitMB: memoryMB } : {}) } : undefined;
  let close: () => Promise<void>;
  if (v.gateway) {
    const { Gateway } = await import('../serve/gateway.js');
    const nParts = (cuts?.length ?? 0) + 1;
    if (blocks !== undefined && blocks !== null && (blocks[0] !== 0 || (next && blocks[1] !== 0) || (!next && blocks[1] !== nParts - 1))) {
      throw kerfError('KERF_ERR_USAGE', `--gateway --blocks '${v.blocks}': the gateway runs part 0 (0..0) with --next, all parts (0..${nParts - 1}) without, or none`);
    }
    const g = await Gateway.start({
      host: listen.host, port: listen.port, model: v.model, inputShapes,
      ...(v['model-name'] ? { name: v['model-name'] } : {}),
      pipeline: {
        cuts: cuts ?? [], local: blocks !== null, next, token: token ?? '', threads, queueLimit, id: `cuts ${(cuts ?? []).join(',') || 'none'}`,
        ...(v['next-segment'] ? { nextSegment: v['next-segment'] } : {}), ...(tlsOpts ? { tls: tlsOpts.client } : {}), ...(nextCodec !== 'none' ? { codec: nextCodec } : {}),
      },
      ...(v.replay ? { replay: { holdMs: positiveInt(v['replay-hold-ms'], '--replay-hold-ms', 30_000) } } : {}),
      ...(token ? { controlToken: token } : {}), ...(switchStrategy ? { switchStrategy } : {}), ...(memory ? { memory } : {}),
    });
    if (v.plan !== undefined) {
      // The split this gateway starts on came from a plan: GET /v1/partition shows it.
      const { readJsonFile } = await import('./plan-file.js');
      try { g.switcher.adoptPlan(readJsonFile(v.plan)); } catch (e) { await g.close(); throw e; }
    }
    let adapt: import('../adapt/live.js').AdaptController | null = null;
    if (v.adapt !== undefined || v.profiles !== undefined) {
      const { attachAdaptFromArgs } = await import('../adapt/live.js');
      try {
        adapt = await attachAdaptFromArgs(g, v, nParts, out);
      } catch (e) { await g.close(); throw e; }
    } else {
      // Without profiles: the monitors alone, so /v1/conditions and the dashboard show every hop's bandwidth and RTT.
      const { attachMonitors } = await import('../adapt/live.js');
      try { adapt = await attachMonitors(g, v, nParts); } catch (e) { out(`kerf gateway: no link estimates (${(e as Error).message})`); }
    }
    if (v['link-probes'] !== undefined && v['link-probes'] !== '0' && v['link-probes'] !== 'off') {
      const periodS = Number(v['link-probes']);
      if (!(periodS > 0 && Number.isFinite(periodS))) { await g.close(); throw kerfError('KERF_ERR_USAGE', `--link-probes '${v['link-probes']}': expected seconds > 0, or off`); }
      const { LinkProber } = await import('../serve/linkprobe.js');
      const a = adapt;
      LinkProber.attach(g, { periodS, name: v.name ?? 'device', ...(a ? { estimators: () => a.monitor.links } : {}) });
    }
    const url = `http://${fmtAddress(g.address)}`;
    if (v.json) out(JSON.stringify({ event: 'listening', role: 'gateway', url, model: g.name, address: fmtAddress(g.address) }));
    else out(`kerf gateway: ${g.name} at ${url}/v2/models/${g.name} (ready: ${url}/v2/health/ready)${next ? ` → ${fmtAddress(next)}` : ''}`);
    process.send?.({ event: 'listening', address: fmtAddress(g.address) });
    close = () => g.close();
  } else {
    const { Worker } = await import('../serve/worker.js');
    const w = await Worker.start({
      host: listen.host, port: listen.port, token: token!, model: v.model, inputShapes, name: v.name ?? 'worker',
      segment: { ...(cuts ? { cuts } : {}), ...(blocks ? { blocks } : {}), ...(granularity ? { granularity } : {}) },
      next, ...(v['next-segment'] ? { nextSegment: v['next-segment'] } : {}), threads, queueLimit,
      ...(profiledS !== undefined ? { profiledS } : {}), ...(v.metrics ? { metrics: v.metrics } : {}),
      ...(v['release-model'] ? { releaseModel: true } : {}), ...(tlsOpts ? { tls: tlsOpts } : {}), ...(v['whole-model'] ? { wholeModel: v['whole-model'], wholeInputShapes: parseInputShapes(v['whole-input-shape']) } : {}),
      ...(nextCodec !== 'none' ? { nextCodec } : {}), ...(codecs ? { codecs } : {}), ...(memory ? { memory } : {}),
      ...(v['part-cache'] ? { partCache: v['part-cache'] } : {}),
    });
    const seg = w.segments.get(w.defaultSegment)!.segment;
    const addr = fmtAddress(w.address);
    if (v.json) {
      out(JSON.stringify({ event: 'listening', role: 'worker', name: w.name, address: addr, metrics: w.metricsAddress ? fmtAddress(w.metricsAddress) : null, segment: seg.label, next: next ? fmtAddress(next) : null }));
    } else {
      out(`kerf worker ${w.name}: ${seg.label} on ${addr}${next ? ` → ${fmtAddress(next)}` : ' (last tier)'}${w.metricsAddress ? `; metrics http://${fmtAddress(w.metricsAddress)}/metrics` : ''}`);
    }
    process.send?.({ event: 'listening', address: addr });
    close = () => w.close();
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => { resolve(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Started by `kerf up`: die with the parent (its IPC channel closes when it goes, even on SIGKILL).
    if (process.send) process.once('disconnect', stop);
  });
  const t = setTimeout(() => process.exit(0), 3000);
  t.unref();
  await close();
  if (process.connected) process.disconnect();
  return 0;
}
