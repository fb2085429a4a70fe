import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { isKerfError, kerfError, type ErrorCode } from '../errors.js';
import { parse, parseInputShapes, parseIntList, TLS_OPTIONS, tlsFromFlags } from './args.js';

const HELP = `usage: kerf up plan.json [--model m.onnx] [options]
       kerf up placement.json [--model m.onnx] [--reference-cpus C] [--cpus NODE=C ...] [options]
       kerf up --model m.onnx --cuts C1,C2 [--links '10mbit/20ms,100mbit/5ms'] [options]
       kerf up plan.json|placement.json --hosts hosts.yaml [--model m.onnx] [--failover [--standby]
               [--cluster cluster.yaml --profile p.json ...]] [options]

Start the device gateway and one worker per further tier as child processes on this machine,
with emulated links between tiers, wait until the pipeline is ready, print the endpoint, and
stop everything on Ctrl-C or SIGTERM (children also exit if this process dies). Everything
(model, cuts, plan, flags) is checked before anything starts; each mistake is one line.

From a plan (kerf plan -o plan.json): its cuts, its tiers and its network (rate = bandwidth,
one-way delay = RTT/2). The model is --model, else the plan's modelPath (relative to the plan
file), else <plan's model>.onnx beside it; a file whose sha256 is not the plan's is refused.

From a placement (kerf place -o placement.json): one worker per stage in its order, the gateway
at the entry node (running stage 0 when the entry is stage 0's node), the cluster's links
emulated, and every worker held to its node's CPU share with a cgroup quota
(/sys/fs/cgroup/cpu/kerf-<pid>-<tier>; removed on exit). A node of speed s gets
s × --reference-cpus cores; --cpus NODE=C sets one directly. Without writable cgroups the
workers run with 1 thread and a notice says the shares are not enforced.

Across machines (--hosts hosts.yaml, kerf.hosts/v1; docs/cluster.md): every tier runs on its
host's \`kerf agent\`: the gateway on the entry host (its endpoint printed), a placement's stage
on the host named as its node, a plan's tier on the host named as its system, else as the tier
(device, edge, cloud with --cuts). Each host is sent only the part it runs (by content hash,
once; a repartition fetches the whole model there from the entry host when it first needs
another segment; --parts whole sends the whole model at once), links are the real
network, and every host's stages stop on Ctrl-C or SIGTERM (and by themselves when this
controller dies: the agents' lease).

With --failover (and --hosts) the controller keeps serving when a host is lost (its processes
killed, the host unreachable, its link cut): it re-plans without it — a placement with
kerf place on the hosts left (give --cluster and --profile, what kerf place was given), a
plan with the best of its ranked placements that leaves the lost tier unused — else (no
cluster given, --cuts, or nothing found) the lost host's part moves to a spare host of the
hosts file (one no tier uses), or joins its neighbour's part. The re-planner in use is logged
at start. The new chain is deployed and the gateway switched onto it, replaying every request
in flight. --standby (no cut ids) keeps the chain that replaces each host deployed ahead, so a
failover only switches. A host that comes back is used again from the next re-plan. The
entry host runs the gateway: its own loss cannot be failed over (clients talk to it there)
and is only reported. Each failover is logged with its reason and timings (a JSON line with
--json) and shows in GET /v1/partition history and /metrics.

options:
  --hosts FILE           deploy across the hosts of a kerf.hosts/v1 file
  --failover             with --hosts: fail over when a host is lost (see above)
  --cluster FILE         with --failover and a placement: the kerf.cluster/v1 file it was
                         placed on (kerf place re-plans on its nodes that are left)
  --profile FILE         with --cluster: the kerf profile(s) kerf place was given (repeatable)
  --parts MODE           with --hosts: segments (default) or whole
  --link-probes S        probe a hop whose rate no transfer told for S seconds, keeping its
                         estimate live (GET /v1/conditions, /metrics; default 5 with --hosts,
                         else off; off: none)
  --model FILE           the model (.onnx)
  --cuts C1,C2           cut ids of the tier boundaries (see kerf inspect): gateway runs part 0,
                         one worker per further part
  --links L1,L2          one per hop, gateway first: RATE/DELAY[/JITTER] (e.g. 10mbit/20ms) or
                         'direct'; overrides the plan's network. Each emulated link serves kerf
                         link's control API (its URL is in the ready line): change it while
                         serving with curl -X PUT -d '{"rate":"5mbit"}' URL/config
  --trace HOP=FILE       replay a kerf link trace on hop HOP (0: the gateway's; repeatable)
  --trace-loop           restart the traces after their last step
  --tls-cert F --tls-key F [--tls-ca F]   TLS between tiers: workers serve with the certificate,
                         every hop verifies it with the CA (and, with the CA, presents the
                         certificate too: mutual TLS). The gateway's HTTP stays plain.
                         With --hosts (or the hosts file's tls): HTTPS to the agents, verified
                         with --tls-ca (--tls-cert/--tls-key: this controller's client
                         certificate), and TLS between the tiers with each agent's certificate
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
  --standby              (no cut ids) with --failover: fallback chains staged ahead
  --adapt MODE           off (default), bandwidth or load-aware: the gateway repartitions by
                         itself (use --switch hot-swap); --profiles DIR is the folder kerf plan
                         takes (<model>.<system>.profile.json, one per tier); --adapt-period S,
                         --min-gain F, --min-dwell S (docs/adapt.md); --adapt-codecs SET lets
                         it switch the links' codecs too (lossless, lossy, a list; docs/codec.md)
  --json                 print one JSON line when ready (endpoint, control token, pids, links with control URLs)
  -h, --help             this help

example:
  kerf up --model resnet18.onnx --cuts 2,28 --links 50mbit/10ms,20mbit/30ms
  curl -s localhost:PORT/v2/models/resnet18`;

const OPTIONS = {
  model: { type: 'string' }, cuts: { type: 'string' }, links: { type: 'string' }, codec: { type: 'string' }, 'input-shape': { type: 'string', multiple: true },
  name: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' },
  'reference-cpus': { type: 'string' }, cpus: { type: 'string', multiple: true }, 'cpu-period-us': { type: 'string' }, 'no-cpu-limit': { type: 'boolean' },
  switch: { type: 'string' }, standby: { type: 'string' }, 'link-probes': { type: 'string' }, trace: { type: 'string', multiple: true }, 'trace-loop': { type: 'boolean' }, ...TLS_OPTIONS,
  hosts: { type: 'string' }, parts: { type: 'string' }, failover: { type: 'boolean' }, 'failover-standby': { type: 'boolean' },
  cluster: { type: 'string' }, profile: { type: 'string', multiple: true },
  adapt: { type: 'string' }, profiles: { type: 'string' }, 'adapt-period': { type: 'string' }, 'min-gain': { type: 'string' }, 'min-dwell': { type: 'string' }, 'adapt-codecs': { type: 'string' },
} as const;

function positive(v: string, flag: string): number {
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected a positive number`);
  return x;
}

/** With --failover, a `--standby` not followed by cut ids asks for fallback chains staged ahead. */
function failoverStandby(argv: string[]): string[] {
  if (!argv.includes('--failover')) return argv;
  return argv.flatMap((a, i) => (a === '--standby' && !/^\d+(,\d+)*$/.test(argv[i + 1] ?? '') ? ['--failover-standby'] : [a]));
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(failoverStandby(argv), OPTIONS, HELP);
  if (!p) return 0;
  const v = p.values;
  const { planToUp, placementToUp, checkPlacementModel } = await import('../serve/up.js');
  const { parseRate, parseDuration, parseTrace } = await import('../link/index.js');
  type Opts = import('../serve/up.js').UpOptions;
  // Everything is checked before anything starts; each mistake is one line, said once.
  const errors: { code: ErrorCode; message: string }[] = [];
  const note = (e: unknown): undefined => {
    if (!isKerfError(e)) throw e;
    if (!errors.some((x) => x.message === e.message)) errors.push({ code: e.code, message: e.message });
    return undefined;
  };
  const check = <T>(f: () => T): T | undefined => { try { return f(); } catch (e) { return note(e); } };
  const checkAsync = async <T>(f: () => Promise<T>): Promise<T | undefined> => { try { return await f(); } catch (e) { return note(e); } };

  let opts: Opts | undefined;
  let placement: Parameters<typeof placementToUp>[0] | undefined;
  let planDoc: Parameters<typeof planToUp>[0] | undefined;
  /** a model to check when the cuts could not be read */
  let modelOnly: string | undefined;
  const shapes = check(() => parseInputShapes(v['input-shape'])) ?? {};
  if (p.positionals.length > 1) note(kerfError('KERF_ERR_USAGE', `expected at most one plan.json, got ${p.positionals.length} (${p.positionals.join(' ')})`));
  else if (p.positionals.length === 1) {
    const file = p.positionals[0]!;
    if (v.cuts !== undefined) note(kerfError('KERF_ERR_USAGE', `--cuts conflicts with ${file} (it gives the cuts)`));
    const { readJsonFile, planModelFile, checkPlanModelFile } = await import('./plan-file.js');
    const doc = check(() => readJsonFile(file, 'plan'));
    if ((doc as { schema?: unknown } | undefined)?.schema === 'kerf.placement/v1') {
      placement = doc as Parameters<typeof placementToUp>[0];
      const model = v.model ?? join(dirname(file), `${placement.model?.name}.onnx`);
      if (!existsSync(model)) note(kerfError('KERF_ERR_FILE', `${file}: model file ${model} not found; pass --model m.onnx`));
      const cpus: Record<string, number> = {};
      for (const c of v.cpus ?? []) {
        const m = /^([^=]+)=(.+)$/.exec(c);
        if (!m) { note(kerfError('KERF_ERR_USAGE', `--cpus '${c}': expected NODE=CORES, e.g. pi1=0.25`)); continue; }
        const n = check(() => positive(m[2]!, `--cpus ${m[1]}`));
        if (n !== undefined) cpus[m[1]!] = n;
      }
      const ref = v['reference-cpus'] !== undefined ? check(() => positive(v['reference-cpus']!, '--reference-cpus')) : undefined;
      opts = check(() => placementToUp(placement!, model, { ...(ref !== undefined ? { referenceCpus: ref } : {}), cpus }));
      if (opts) {
        // A stage stands for a small node: it keeps only its segment (the memory model counts no
        // more) and glibc returns freed memory instead of keeping an arena per thread.
        opts.workerArgs = [...(opts.workerArgs ?? []), '--release-model'];
      }
    } else if (doc !== undefined) {
      const { validatePlan } = await import('../plan/validate.js');
      const plan = check(() => validatePlan(doc, file));
      const model = plan && check(() => planModelFile(plan, file, v.model));
      if (plan && model && check(() => { checkPlanModelFile(plan, model, file); return true; })) {
        opts = check(() => planToUp(plan, model, file));
        planDoc = plan;
        if (opts) opts.planFile = file;
      }
    }
  } else if (!v.model || v.cuts === undefined) {
    note(kerfError('KERF_ERR_USAGE', `give a plan.json, or --model and --cuts (kerf up --help)`));
  } else {
    const cuts = check(() => parseIntList(v.cuts!, '--cuts', { allowEmpty: true }));
    if (!existsSync(v.model)) note(kerfError('KERF_ERR_FILE', `--model ${v.model}: no such file`));
    if (cuts) opts = { model: v.model, cuts };
    else modelOnly = v.model;
  }
  const nCuts = opts?.cuts.length;
  const tierNames = opts?.tiers?.map((t) => t.name) ?? (nCuts !== undefined ? ['device', 'edge', 'cloud', 'tier3', 'tier4'].slice(0, nCuts + 1) : undefined);
  const hops = opts && tierNames ? tierNames.length - 1 : undefined;
  const hopName = (i: number): string => (tierNames && tierNames[i + 1] ? `${tierNames[i]} → ${tierNames[i + 1]}` : `hop ${i}`);

  if (v.links !== undefined) {
    const items = v.links.split(',');
    const links = items.map((s, i) => check(() => {
      const t = s.trim();
      if (t === 'direct' || t === '-') return null;
      const [rate, delay, jitter, more] = t.split('/');
      if (more !== undefined || !rate) throw kerfError('KERF_ERR_USAGE', `--links hop ${i} (${hopName(i)}) '${t}': expected RATE/DELAY[/JITTER], e.g. 10mbit/20ms, or 'direct'`);
      return {
        rateBps: parseRate(rate, `--links hop ${i} (${hopName(i)}) rate`),
        delayMs: delay ? parseDuration(delay, `--links hop ${i} (${hopName(i)}) delay`) : 0,
        jitterMs: jitter ? parseDuration(jitter, `--links hop ${i} (${hopName(i)}) jitter`) : 0,
      };
    }));
    if (hops !== undefined && items.length !== hops) {
      note(kerfError('KERF_ERR_USAGE', `--links: ${items.length} hop${items.length === 1 ? '' : 's'} given, this pipeline has ${hops}` +
        `${hops ? ` (${Array.from({ length: hops }, (_, i) => hopName(i)).join(', ')})` : ''}: give one RATE/DELAY or 'direct' per hop, gateway first`));
    }
    if (opts && links.every((l) => l !== undefined)) opts.links = links;
  }
  for (const t of v.trace ?? []) {
    const m = /^(\d+)=(.+)$/.exec(t);
    if (!m) { note(kerfError('KERF_ERR_USAGE', `--trace '${t}': expected HOP=FILE (hop 0 is the gateway's), e.g. --trace 0=net.trace`)); continue; }
    const hop = Number(m[1]);
    if (hops !== undefined && hop >= hops) { note(kerfError('KERF_ERR_USAGE', `--trace ${t}: hop ${hop} does not exist (this pipeline has ${hops} hop${hops === 1 ? '' : 's'}, 0..${hops - 1})`)); continue; }
    const steps = check(() => {
      let text: string;
      try { text = readFileSync(m[2]!, 'utf8'); } catch (e) {
        throw kerfError('KERF_ERR_FILE', `--trace ${t}: cannot read ${m[2]} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      return parseTrace(text, m[2]!);
    });
    if (opts && steps) {
      const links = opts.links ?? [];
      while (links.length <= hop) links.push(null);
      links[hop] = { ...(links[hop] ?? {}), trace: steps, traceLoop: v['trace-loop'] ?? false };
      opts.links = links;
    }
  }
  if (v.codec !== undefined && v.codec.trim().toLowerCase() !== 'auto') {
    const { parseHopCodec } = await import('../codec/index.js');
    const list = v.codec.split(',').map((c, i) => check(() => parseHopCodec(c.trim(), `--codec hop ${i}`).name));
    if (hops !== undefined && list.length !== 1 && list.length !== hops) {
      note(kerfError('KERF_ERR_USAGE', `--codec: ${list.length} codecs given, the pipeline has ${hops} hop(s) (give one for all, or one per hop)`));
    } else if (opts && hops !== undefined && list.every((c) => c !== undefined)) {
      opts.codecs = list.length === 1 ? Array.from({ length: hops }, () => list[0]!) : list as string[];
    }
  } else if (v.codec !== undefined && p.positionals.length === 0) {
    note(kerfError('KERF_ERR_USAGE', '--codec auto takes the codecs of a plan.json; without one, name the codecs (e.g. --codec zstd-1)'));
  }
  if (v['trace-loop'] && !v.trace?.length) note(kerfError('KERF_ERR_USAGE', '--trace-loop needs --trace HOP=FILE'));
  if ((v.cpus?.length || v['reference-cpus'] !== undefined) && !placement) {
    note(kerfError('KERF_ERR_USAGE', '--cpus and --reference-cpus apply to a placement.json'));
  }
  if (opts && (v['cpu-period-us'] !== undefined || v['no-cpu-limit'])) {
    const period = v['cpu-period-us'] !== undefined ? check(() => positive(v['cpu-period-us']!, '--cpu-period-us')) : undefined;
    opts.cpu = { ...(period !== undefined ? { periodUs: period } : {}), ...(v['no-cpu-limit'] ? { disabled: true } : {}) };
  }
  if (v.port !== undefined) {
    const port = Number(v.port);
    if (!/^\d+$/.test(v.port) || port > 65535) note(kerfError('KERF_ERR_USAGE', `--port '${v.port}': expected 0..65535`));
    else if (opts) opts.port = port;
  }
  const workerArgs: string[] = [];
  if (v['failover-standby'] && !v.failover) note(kerfError('KERF_ERR_USAGE', '--failover-standby goes with --failover'));
  if ((v.cluster !== undefined || v.profile?.length) && !(v.failover && placement)) {
    note(kerfError('KERF_ERR_USAGE', '--cluster and --profile go with --failover and a placement.json (kerf place re-plans the placement with them)'));
  } else if (v.cluster !== undefined && !v.profile?.length) {
    note(kerfError('KERF_ERR_USAGE', '--cluster needs --profile p.json (the profile(s) kerf place was given)'));
  } else if (v.cluster === undefined && v.profile?.length) {
    note(kerfError('KERF_ERR_USAGE', '--profile needs --cluster cluster.yaml (the cluster kerf place was given)'));
  }
  if (v.failover) {
    if (!v.hosts) note(kerfError('KERF_ERR_USAGE', '--failover needs --hosts hosts.yaml: on one machine there is no other host to fail over to'));
    // the gateway keeps every request's input until its answer, to replay it on the new chain
    workerArgs.push('--replay');
  }
  // TLS between tiers: every worker serves with the certificate, every hop verifies with the CA.
  const tlsOk = check(() => tlsFromFlags(v));
  // (across --hosts the flags are the controller's: the stages serve with their agents' certificates)
  if (v.hosts) { /* read with the hosts file below */ } else if (tlsOk && !tlsOk.server) note(kerfError('KERF_ERR_USAGE', '--tls-ca needs --tls-cert and --tls-key: the workers serve TLS with them'));
  else if (tlsOk) for (const f of ['tls-cert', 'tls-key', 'tls-ca'] as const) if (v[f] !== undefined) workerArgs.push(`--${f}`, resolvePath(v[f]!));
  if (v.threads !== undefined) {
    const t = Number(v.threads);
    if (!/^\d+$/.test(v.threads) || t < 1) note(kerfError('KERF_ERR_USAGE', `--threads '${v.threads}': expected an integer ≥ 1`));
    else workerArgs.push('--threads', String(t));
  }
  const { SWITCH_STRATEGIES } = await import('../serve/switch.js');
  if (v.switch !== undefined && !SWITCH_STRATEGIES.includes(v.switch as never)) {
    note(kerfError('KERF_ERR_USAGE', `--switch '${v.switch}': expected one of ${SWITCH_STRATEGIES.join(', ')}`));
  }
  if (v.standby !== undefined && v.switch !== undefined && v.switch !== 'standby') note(kerfError('KERF_ERR_USAGE', `--standby goes with --switch standby, not ${v.switch}`));
  const standby = v.standby !== undefined ? check(() => parseIntList(v.standby!, '--standby')) : undefined;
  if (standby && nCuts !== undefined && standby.length !== nCuts) {
    note(kerfError('KERF_ERR_USAGE', `--standby '${v.standby}': ${standby.length} cut id${standby.length === 1 ? '' : 's'} for a pipeline with ${nCuts} cut${nCuts === 1 ? '' : 's'} (a standby split has as many)`));
  }
  const hopsText = (opts?.links ?? []).map((l) => l && l.rateBps !== undefined ? `${l.rateBps}bit/${l.delayMs ?? 0}ms` : 'direct');
  if (v.adapt !== undefined && v.adapt !== 'off') {
    const { ADAPT_SETTINGS } = await import('../adapt/live.js');
    if (!ADAPT_SETTINGS.includes(v.adapt as never)) note(kerfError('KERF_ERR_USAGE', `--adapt '${v.adapt}': expected one of ${ADAPT_SETTINGS.join(', ')}`));
    if (!v.profiles) note(kerfError('KERF_ERR_USAGE', '--adapt needs --profiles DIR (the folder kerf plan takes: one <model>.<system>.profile.json per tier)'));
    else if (!existsSync(v.profiles) || !statSync(v.profiles).isDirectory()) note(kerfError('KERF_ERR_FILE', `--profiles ${v.profiles}: no such directory`));
    for (const f of ['adapt-period', 'min-gain', 'min-dwell'] as const) {
      const x = v[f];
      if (x !== undefined && !(Number(x) >= 0 && Number.isFinite(Number(x)) && x.trim() !== '')) note(kerfError('KERF_ERR_USAGE', `--${f} '${x}': expected a non-negative number`));
    }
    // The gateway's controller: tier names and links as this command starts them (workers ignore these flags).
    workerArgs.push('--adapt', v.adapt, '--profiles', v.profiles ?? '', '--adapt-tiers', (tierNames ?? []).join(','),
      ...(hopsText.length ? ['--adapt-links', hopsText.join(',')] : []),
      ...(v['adapt-period'] ? ['--adapt-period', v['adapt-period']] : []), ...(v['min-gain'] ? ['--min-gain', v['min-gain']] : []),
      ...(v['min-dwell'] ? ['--min-dwell', v['min-dwell']] : []), ...(v['adapt-codecs'] ? ['--adapt-codecs', v['adapt-codecs']] : []));
  }
  else if (tierNames) {
    // Without a controller the gateway still runs the monitors (hop estimates): they need the tiers' names.
    workerArgs.push('--adapt-tiers', tierNames.join(','), ...(hopsText.length ? ['--adapt-links', hopsText.join(',')] : []));
  }
  if (v['link-probes'] !== undefined && v['link-probes'] !== 'off' && !(Number(v['link-probes']) >= 0 && Number.isFinite(Number(v['link-probes'])))) {
    note(kerfError('KERF_ERR_USAGE', `--link-probes '${v['link-probes']}': expected seconds (0 or off: no probes)`));
  } else if (v['link-probes'] !== undefined) workerArgs.push('--link-probes', v['link-probes']);
  if (opts) {
    if (Object.keys(shapes).length) opts.inputShapes = shapes;
    if (v.name) opts.name = v.name;
    if (v.host) opts.host = v.host;
    opts.workerArgs = [...workerArgs, ...(opts.workerArgs ?? [])];
  }
  // The model last: it is the slow check. Its errors (not ONNX, unknown cuts) are found here,
  // not by every worker after it started.
  const modelFile = opts?.model ?? modelOnly;
  if (modelFile !== undefined && existsSync(modelFile)) {
    const cuts = opts?.cuts;
    if (placement) await checkAsync(() => checkPlacementModel(placement!, modelFile, shapes, p.positionals[0]));
    else {
      const prep = await checkAsync(async () => (await import('../engine/prepare.js')).prepareModel(modelFile, { inputShapes: shapes }));
      if (prep) {
        const { checkCutIds } = await import('../graph/cuts.js');
        if (cuts) check(() => checkCutIds(prep.model, prep.analysis, cuts));
        if (standby) check(() => checkCutIds(prep.model, prep.analysis, standby).length && undefined);
      }
    }
  }
  if (errors.length || !opts) {
    throw kerfError(errors[0]?.code ?? 'KERF_ERR_USAGE', errors.map((e) => e.message).join('\nkerf: ') || 'nothing to start');
  }
  let hosts: import('../cluster/hosts.js').HostsFile | null = null;
  let hostOf: string[] | undefined;
  if (v.parts !== undefined && (!v.hosts || !['segments', 'whole'].includes(v.parts))) throw kerfError('KERF_ERR_USAGE', `--parts '${v.parts}': expected segments or whole, with --hosts`);
  if (v.hosts) {
    if (v.links !== undefined || v.trace?.length) throw kerfError('KERF_ERR_USAGE', '--links and --trace emulate links on one machine; across --hosts the links are the real network');
    if (v.host !== undefined) throw kerfError('KERF_ERR_USAGE', '--host: across --hosts each agent listens on its own interface');
    const { loadHosts, withTlsFlags } = await import('../cluster/hosts.js');
    const { namedHosts, placementHosts, planHosts } = await import('../cluster/assign.js');
    hosts = withTlsFlags(await loadHosts(v.hosts), v);
    const file = p.positionals[0] ?? '';
    hostOf = placement ? placementHosts(placement, hosts, file) : planDoc ? planHosts(planDoc, hosts, file)
      : namedHosts(tierNames ?? ['device', ...opts.cuts.map((_, i) => ['edge', 'cloud'][i] ?? `tier${i + 3}`)], hosts);
    // Real links and real CPUs: nothing is emulated, a stage gets its host's cores (the agent's
    // --cpus), unless --cpus NODE=C asks for a share.
    delete opts.links;
    // live link estimates across real links (light probes, off while traffic tells the rates)
    if (v['link-probes'] === undefined) opts.workerArgs = [...(opts.workerArgs ?? []), '--link-probes', '5'];
    const asked = new Set((v.cpus ?? []).map((c) => c.split('=')[0]));
    for (const t of opts.tiers ?? []) if (t.cpus !== undefined && !asked.has(t.name)) delete t.cpus;
  }
  // how --failover re-plans (its files checked before anything starts)
  const replan = v.failover && hosts ? await failoverReplan(v, placement, planDoc, hosts, opts.model, p.positionals[0] ?? '') : undefined;
  const quiet = v.json ?? false;
  opts.log = (line) => { if (!quiet) process.stderr.write(`kerf up: ${line}\n`); };
  // Signals during start-up must also stop the children started so far.
  let stopRequested = false;
  const early = (): void => { stopRequested = true; };
  process.once('SIGINT', early);
  process.once('SIGTERM', early);
  // The token is the dashboard's key to its controls: known here so the link can carry it
  // (in the URL's fragment, which browsers never send).
  opts.token ??= process.env.KERF_TOKEN || (await import('node:crypto')).randomBytes(16).toString('hex');
  // One controller for one machine and many: the local substrate runs tiers as child
  // processes, the hosts substrate on each host's agent.
  const { deploy } = await import('../cluster/deploy.js');
  let substrate: import('../cluster/substrate.js').Substrate;
  const deployOpts: import('../cluster/deploy.js').DeployOptions = { ...opts };
  if (hosts) {
    const { AgentSubstrate } = await import('../cluster/agents.js');
    substrate = await AgentSubstrate.connect(hosts, { log: opts.log });
    // the agents derive the stages' token from the cluster token: it never crosses the network
    opts.token = substrate.pipelineToken!;
    deployOpts.hostOf = hostOf!;
    // segments: each worker host holds its part, and fetches the whole model from the entry host
    // when a repartition (kerf repartition, --adapt, --switch) first loads another segment there
    deployOpts.parts = (v.parts as 'segments' | 'whole' | undefined) ?? 'segments';
  } else {
    const { LocalSubstrate } = await import('../cluster/local.js');
    substrate = new LocalSubstrate({ ...(opts.host ? { host: opts.host } : {}), log: opts.log, ...(opts.cpu ? { cpu: opts.cpu } : {}) });
  }
  const h = await deploy(substrate, deployOpts).catch(async (e: unknown) => { await substrate.close(); throw e; });
  const dashboard = `${h.url}/ui/`;
  if (v.switch !== undefined || v.standby !== undefined) {
    const { setSwitchStrategy } = await import('../serve/switch-client.js');
    await setSwitchStrategy(h.url, (v.switch ?? 'standby') as never, standby !== undefined ? { standby } : {}, h.token)
      .catch(async (e: unknown) => { await h.close(); throw e; });
  }
  let failover: import('../cluster/failover.js').FailoverController | null = null;
  if (v.failover) {
    const { startUpFailover } = await import('../cluster/failover-up.js');
    failover = await startUpFailover({
      deployment: h, model: opts.model, cuts: opts.cuts, local: opts.local ?? true, ...(opts.inputShapes ? { inputShapes: opts.inputShapes } : {}), ...(replan ? { replan } : {}),
      standby: v['failover-standby'] ?? false, workerArgs: opts.workerArgs ?? [], log: (l) => process.stderr.write(`kerf up: ${l}\n`),
      ...(v.json ? { json: (doc: Record<string, unknown>) => process.stdout.write(JSON.stringify(doc) + '\n') } : {}),
    }).catch(async (e: unknown) => { await h.close(); await substrate.close(); throw e; });
  }
  process.off('SIGINT', early);
  process.off('SIGTERM', early);
  const { formatRate } = await import('../link/index.js');
  const ctl = (l: (typeof h.links)[number]): string | null => (l.link.controlAddress ? `http://${l.link.controlAddress.host}:${l.link.controlAddress.port}` : null);
  if (v.json) {
    if (h.cpu.notice) process.stderr.write(`kerf up: ${h.cpu.notice}\n`);
    process.stdout.write(JSON.stringify({
      event: 'ready', url: h.url, model: h.name, infer: `${h.url}/v2/models/${h.name}/infer`, dashboard,
      // the control token kerf rollout / kerf repartition --token need (the plain ready line carries it in the dashboard link)
      token: opts.token,
      processes: h.processes.map((p, i) => (hosts ? { ...p, host: h.hostOf[i] } : p)), cpu: h.cpu, memory: h.memory(), links: h.links.map((l) => ({
        from: l.from, to: l.to, listen: `${l.link.address.host}:${l.link.address.port}`, control: ctl(l),
        config: { ...l.link.config, rateBps: Number.isFinite(l.link.config.rateBps) ? l.link.config.rateBps : null },
      })),
    }) + '\n');
  } else {
    const links = h.links.map((l) => `${l.from} → ${l.to} ${formatRate(l.link.config.rateBps)}, ${+(l.link.config.delayMs * 2).toFixed(3)} ms RTT` +
      `${l.link.config.jitterMs ? ` ± ${l.link.config.jitterMs} ms` : ''} (control ${ctl(l)}/config)`);
    process.stdout.write(`kerf up: ${h.name} ready at ${h.url}/v2/models/${h.name}/infer (${h.processes.map((c, i) => `${c.name}${hosts ? ` on ${h.hostOf[i]}` : ''} pid ${c.pid}${c.cpus !== undefined ? ` ${+c.cpus.toFixed(3)} CPU` : ''}`).join(', ')}); ` +
      `links: ${links.length ? links.join('; ') : 'none (direct loopback)'}; Ctrl-C stops\n`);
    process.stdout.write(`kerf up: dashboard ${dashboard}#token=${encodeURIComponent(opts.token)} (read-only without the #token part)\n`);
  }
  if (!stopRequested) {
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  await failover?.close();
  await h.close();
  await substrate.close();
  if (!quiet) process.stderr.write('kerf up: stopped\n');
  return 0;
}

/**
 * How `kerf up --failover` re-plans: a placement with kerf place on the cluster and profiles
 * given (--cluster, --profile; checked against the placement and the hosts file), a plan from
 * its ranked placements, anything else (or a placement without --cluster) with the spare
 * re-planner, saying why.
 */
async function failoverReplan(
  v: { cluster?: string; profile?: string[] }, placement: import('../plan/place/types.js').Placement | undefined,
  plan: import('../plan/types.js').PlanDocument | undefined, hosts: import('../cluster/hosts.js').HostsFile, model: string, file: string,
): Promise<import('../cluster/failover-up.js').ReplanSource> {
  const names = new Set(hosts.hosts.map((x) => x.name));
  if (placement) {
    if (v.cluster === undefined) return { kind: 'spare', why: `give --cluster cluster.yaml --profile p.json (what kerf place was given for ${file}) to re-plan with kerf place` };
    const { loadCluster, loadModel } = await import('./place.js');
    const cluster = await loadCluster(v.cluster);
    const m = loadModel(model, v.profile, undefined);
    if (m.blocks.length !== placement.model.blocks) {
      throw kerfError('KERF_ERR_PROFILE', `--profile ${v.profile![0]}: ${m.blocks.length} blocks, but ${file} placed a model of ${placement.model.blocks} (field model.blocks); give the profile kerf place was given`);
    }
    if (cluster.entry !== (placement.entry ?? undefined) && !(cluster.entry === undefined && placement.entry === null)) {
      throw kerfError('KERF_ERR_CONFIG', `--cluster ${v.cluster}: field 'entry' is '${cluster.entry ?? '(none)'}', but ${file} was placed with entry '${placement.entry ?? '(none)'}'; give the cluster kerf place was given`);
    }
    const strange = cluster.nodes.filter((n) => !names.has(n.name)).map((n) => n.name);
    if (strange.length) throw kerfError('KERF_ERR_CONFIG', `--cluster ${v.cluster}: node${strange.length > 1 ? 's' : ''} ${strange.map((x) => `'${x}'`).join(', ')} not in the hosts file (hosts: ${[...names].join(', ')}); a node is the host of its name`);
    const options: import('../plan/place/index.js').PlaceOptions = {
      objective: placement.objective, memory: { margin: placement.memoryModel.margin, overheadMB: placement.memoryModel.overheadBytes / 2 ** 20 },
    };
    return { kind: 'placement', model: m, cluster, options, source: `${v.cluster}, ${v.profile!.join(', ')}; objective ${placement.objective}` };
  }
  if (plan) {
    const hostOf = (t: import('../plan/types.js').TierPlacement): string | null => (t.system && names.has(t.system) ? t.system : names.has(t.tier) ? t.tier : null);
    const top = { ...plan, rank: 1 } as unknown as import('../plan/types.js').RankedPlacement;
    const ranked = [...(plan.ranked?.length ? plan.ranked : [top]), ...(plan.pareto ?? [])];
    return { kind: 'plan', ranked, hostOf, source: file };
  }
  return { kind: 'spare', why: 'deployed from --cuts: no plan or placement to re-plan from' };
}
