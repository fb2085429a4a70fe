import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kerfError } from '../errors.js';
import { parse, parseInputShapes } from './args.js';

const HELP = `usage: kerf k8s render placement.json|plan.json --image IMG --model-uri URI --sha256 HEX [-o dir/]
       kerf k8s install --image IMG [--namespace kerf-system] [-o dir/]
       kerf k8s reconcile --state list.json [--image IMG] [--now TIME] [--json]
       kerf k8s fetch --uri URI|PATH --sha256 HEX [--cuts C1,C2 --part K [--part-sha256 HEX]] -o FILE

Kubernetes without the operator's loop (docs/kubernetes.md):
  render     plain manifests of one placement (kerf place -o) or plan (kerf plan): per stage a
             Deployment pinned to its node and a Service, the gateway, the entry Service, the token
             Secret; for GitOps users
  install    the KerfPipeline CRD, the operator's Deployment, ServiceAccount and RBAC (namespaced,
             read-only on Nodes, no wildcards) and the agents' DaemonSet
  reconcile  what the operator would do for an observed state given as a Kubernetes List
             (kubectl get kerfpipelines,nodes,deployments,services,secrets,configmaps,pods -o json):
             the objects to apply and delete and the status it would write
  fetch      what pods' init containers run: copy the model (or a stage's part the operator
             serves), check its sha256; with --cuts and --part, cut that stage's part out of
             the model and write only the part

options:
  -o, --output DIR       write one YAML file per object into DIR (default: YAML to stdout)
  --image IMG            the kerf image of every pod
  --namespace NS         namespace (render: default; install: kerf-system)
  render:
  --model-uri URI        http(s) URL of the model, or pvc://CLAIM/path
  --sha256 HEX           the model's sha256
  --version V            the model's version (default 1)
  --name NAME            the pipeline's name (default: the model's name)
  --node TIER=NODE       plan.json: the node of a used tier (repeat); placement.json: a node's hostname
  --stage-memory-mb M    plan.json: memory of each stage (a plan has no memory model; default 512)
  --input-shape N=DxD    concrete input shapes (repeat)
  --model-file FILE      render: the model here (its sha256 must be --sha256): each stage's part is
                         made from it and its sha256 written into the init container, which checks it
  --service-monitor      render, install: also a Prometheus Operator ServiceMonitor (the pods carry
                         prometheus.io/* scrape annotations either way)
  --service-monitor-label K=V   a label the ServiceMonitor carries (a Prometheus's serviceMonitorSelector; repeat)
  install:
  --replicas N           operator replicas (default 2; leader election keeps one active)
  --operator-memory-mb M the operator's memory (default 1024; it prepares a model version to
                         cut the stages' parts)
  reconcile:
  --state FILE           the observed List (JSON or YAML)
  --now TIME             the time to reconcile at (RFC 3339; default: now)
  --json                 print the result as JSON
  fetch:
  --uri URI|PATH         where the model (or the part) is
  --sha256 HEX           its sha256 (checked before anything is written)
  --cuts C1,C2           the pipeline's cut ids: write only part --part K of the model
  --part K               the stage's part, 0..number of cuts
  --part-sha256 HEX      the part's expected sha256 (checked)
  --bearer-env VAR       send the token in environment variable VAR as bearer (the operator's parts)
  --attempts N           tries for an http(s) source that is down or answers 404/5xx (default 1)
`;

const OPTIONS = {
  output: { type: 'string', short: 'o' }, image: { type: 'string' }, namespace: { type: 'string' },
  'model-uri': { type: 'string' }, sha256: { type: 'string' }, version: { type: 'string' }, name: { type: 'string' },
  node: { type: 'string', multiple: true }, 'stage-memory-mb': { type: 'string' }, 'input-shape': { type: 'string', multiple: true },
  replicas: { type: 'string' }, state: { type: 'string' }, now: { type: 'string' }, json: { type: 'boolean' }, uri: { type: 'string' },
  cuts: { type: 'string' }, part: { type: 'string' }, 'part-sha256': { type: 'string' }, 'bearer-env': { type: 'string' }, attempts: { type: 'string' },
  'operator-memory-mb': { type: 'string' }, 'model-file': { type: 'string' }, 'service-monitor': { type: 'boolean' }, 'service-monitor-label': { type: 'string', multiple: true },
} as const;

async function readDoc(file: string, what: string): Promise<unknown> {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw kerfError('KERF_ERR_FILE', `${file}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  const { parse: parseYaml } = await import('yaml');
  try { return parseYaml(text) as unknown; } catch (e) { throw kerfError('KERF_ERR_FILE', `${file}: not JSON or YAML (${(e as Error).message.split('\n')[0]})`); }
}

async function emit(objs: { kind: string; metadata: { name: string } }[], dir: string | undefined): Promise<void> {
  const { stringify } = await import('yaml');
  if (!dir) {
    process.stdout.write(objs.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
    return;
  }
  mkdirSync(dir, { recursive: true });
  const files = objs.map((o, i) => {
    const f = `${String(i).padStart(2, '0')}-${o.kind.toLowerCase()}-${o.metadata.name}.yaml`;
    writeFileSync(join(dir, f), stringify(o, { lineWidth: 0 }));
    return f;
  });
  writeFileSync(join(dir, 'kustomization.yaml'), stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: files }));
  process.stdout.write(`kerf k8s: wrote ${files.length} object(s) and kustomization.yaml to ${dir}\n`);
}

function need(v: string | undefined, flag: string): string {
  if (!v) throw kerfError('KERF_ERR_USAGE', `${flag} is required\n${HELP}`);
  return v;
}

function monitorOf(v: { 'service-monitor'?: boolean; 'service-monitor-label'?: string[] }): { serviceMonitor?: { labels: Record<string, string> } } {
  const labels: Record<string, string> = {};
  for (const l of v['service-monitor-label'] ?? []) {
    const m = /^([A-Za-z0-9][-A-Za-z0-9_./]*)=([-A-Za-z0-9_.]*)$/.exec(l);
    if (!m) throw kerfError('KERF_ERR_USAGE', `--service-monitor-label '${l}': expected KEY=VALUE`);
    labels[m[1]!] = m[2]!;
  }
  if (!v['service-monitor'] && Object.keys(labels).length) throw kerfError('KERF_ERR_USAGE', '--service-monitor-label needs --service-monitor');
  return v['service-monitor'] ? { serviceMonitor: { labels } } : {};
}

export async function run(argv: string[]): Promise<number | void> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') { process.stdout.write(HELP); return sub ? 0 : 2; }
  const p = parse(rest, OPTIONS, HELP, true);
  if (!p) return 0;
  const v = p.values;
  if (sub === 'render') {
    const file = p.positionals[0];
    if (!file || p.positionals.length > 1) throw kerfError('KERF_ERR_USAGE', `kerf k8s render takes one placement.json or plan.json\n${HELP}`);
    const doc = await readDoc(file, 'the placement or plan');
    const nodes: Record<string, string> = {};
    for (const n of v.node ?? []) {
      const m = /^([^=]+)=(.+)$/.exec(n);
      if (!m) throw kerfError('KERF_ERR_USAGE', `--node '${n}': expected TIER=NODE`);
      nodes[m[1]!] = m[2]!;
    }
    const mem = v['stage-memory-mb'] !== undefined ? Number(v['stage-memory-mb']) : undefined;
    if (mem !== undefined && !(Number.isInteger(mem) && mem > 0)) throw kerfError('KERF_ERR_USAGE', `--stage-memory-mb '${v['stage-memory-mb']}': expected a positive integer`);
    const m = (doc as { model?: unknown } | null)?.model;
    const modelName = typeof m === 'string' ? m : typeof (m as { name?: unknown } | undefined)?.name === 'string' ? (m as { name: string }).name : 'model';
    const name = v.name ?? modelName.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 32);
    const { renderObjects, stateOf } = await import('../k8s/manifests.js');
    const shapes = parseInputShapes(v['input-shape']);
    let parts: { sha256: string; bytes: number }[] | undefined;
    if (v['model-file'] !== undefined) {
      const sha = need(v.sha256, '--sha256');
      const { fileSha256, partBytes, sha256: hashOf } = await import('../cluster/parts.js');
      let got: string;
      try { got = (await fileSha256(v['model-file'])).sha256; } catch (e) { throw kerfError('KERF_ERR_FILE', `--model-file ${v['model-file']}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
      if (got !== sha) throw kerfError('KERF_ERR_INTEGRITY', `--model-file ${v['model-file']}: sha256 is ${got}, not --sha256 ${sha}`);
      const st = stateOf(doc, { name: 'x', namespace: 'x', image: 'x', modelUri: need(v['model-uri'], '--model-uri'), sha256: sha, version: '1', token: 'x', nodes, ...(mem !== undefined ? { stageMemoryMiB: mem } : {}) });
      if (st.cuts.length) {
        const { prepareModel } = await import('../engine/prepare.js');
        const { partModelName } = await import('../k8s/parts.js');
        const prep = await prepareModel(v['model-file'], { name: partModelName(v['model-uri']!), ...(Object.keys(shapes).length ? { inputShapes: shapes } : {}) });
        parts = st.stages.map((s) => { const b = partBytes(prep, st.cuts, s.index, s.index); return { sha256: hashOf(b), bytes: b.byteLength }; });
      }
    }
    const objs = renderObjects(doc, {
      name, namespace: v.namespace ?? 'default', image: need(v.image, '--image'), modelUri: need(v['model-uri'], '--model-uri'),
      sha256: need(v.sha256, '--sha256'), version: v.version ?? '1', modelName, token: randomBytes(24).toString('base64url'), nodes,
      ...(Object.keys(shapes).length ? { inputShapes: shapes } : {}), ...(mem !== undefined ? { stageMemoryMiB: mem } : {}), ...monitorOf(v),
      ...(parts ? { parts } : {}),
    });
    await emit(objs, v.output);
    return 0;
  }
  if (sub === 'install') {
    const replicas = v.replicas !== undefined ? Number(v.replicas) : undefined;
    if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1)) throw kerfError('KERF_ERR_USAGE', `--replicas '${v.replicas}': expected an integer ≥ 1`);
    const opMem = v['operator-memory-mb'] !== undefined ? Number(v['operator-memory-mb']) : undefined;
    if (opMem !== undefined && !(Number.isInteger(opMem) && opMem >= 128)) throw kerfError('KERF_ERR_USAGE', `--operator-memory-mb '${v['operator-memory-mb']}': expected an integer ≥ 128`);
    const { installObjects } = await import('../k8s/manifests.js');
    await emit(installObjects({
      namespace: v.namespace ?? 'kerf-system', image: need(v.image, '--image'), agentToken: randomBytes(24).toString('base64url'),
      ...(replicas ? { replicas } : {}), ...(opMem ? { operatorMemoryMiB: opMem } : {}), ...monitorOf(v),
    }), v.output);
    return 0;
  }
  if (sub === 'reconcile') {
    const list = await readDoc(need(v.state, '--state'), 'the observed state');
    const now = v.now ?? new Date().toISOString();
    if (Number.isNaN(Date.parse(now))) throw kerfError('KERF_ERR_USAGE', `--now '${now}': expected an RFC 3339 time`);
    const { reconcileList } = await import('../k8s/reconcile.js');
    let out;
    try {
      out = reconcileList(list, { now: new Date(now).toISOString(), image: v.image ?? 'kerf:latest', newToken: randomBytes(24).toString('base64url') });
    } catch (e) {
      if ((e as { code?: string }).code) throw e;
      throw kerfError('KERF_ERR_KUBERNETES', `${v.state}: ${(e as Error).message}`);
    }
    if (v.json) { process.stdout.write(JSON.stringify(out, null, 2) + '\n'); return 0; }
    const lines: string[] = [];
    for (const pl of out.pipelines) {
      const r = pl.result;
      lines.push(`KerfPipeline ${pl.namespace}/${pl.name}:`);
      lines.push(`  apply (${r.apply.length}):${r.apply.map((o) => `\n    ${o.kind} ${o.metadata.name}`).join('')}`);
      lines.push(`  delete (${r.delete.length}):${r.delete.map((o) => `\n    ${o.kind} ${o.name}`).join('')}`);
      if (r.status) {
        lines.push('  status:');
        for (const c of r.status.conditions ?? []) lines.push(`    ${c.type}=${c.status} ${c.reason}: ${c.message}`);
        if (r.status.pending) lines.push(`    pending: placement ${r.status.pending.id} (${r.status.pending.reason}) ${r.status.pending.stages.map((s) => `s${s.index}@${s.node}`).join(' ')}`);
        if (r.status.active) lines.push(`    active: placement ${r.status.active.id} version ${r.status.active.model.version} ${r.status.active.stages.map((s) => `s${s.index}@${s.node}`).join(' ')}`);
      }
      for (const e of r.events) lines.push(`  event ${e.type} ${e.reason}: ${e.message}`);
      if (r.requeueAfterSeconds !== null) lines.push(`  requeue after ${r.requeueAfterSeconds.toFixed(0)} s`);
    }
    if (out.orphans.length) lines.push(`orphans to delete (${out.orphans.length}):${out.orphans.map((o) => `\n  ${o.kind} ${o.namespace ?? ''}/${o.name}`).join('')}`);
    if (!out.pipelines.length) lines.push('no KerfPipeline in the List');
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  }
  if (sub === 'fetch') {
    const { fetchModel, buildPart } = await import('../k8s/fetch.js');
    const uri = need(v.uri, '--uri'), sha = need(v.sha256, '--sha256'), out = need(v.output, '-o');
    const attempts = v.attempts !== undefined ? Number(v.attempts) : 1;
    if (!(Number.isInteger(attempts) && attempts >= 1 && attempts <= 100)) throw kerfError('KERF_ERR_USAGE', `--attempts '${v.attempts}': expected an integer 1..100`);
    let bearer: string | undefined;
    if (v['bearer-env'] !== undefined) {
      bearer = process.env[v['bearer-env']];
      if (!bearer) throw kerfError('KERF_ERR_USAGE', `--bearer-env ${v['bearer-env']}: the environment variable is not set`);
    }
    const fo = { attempts, ...(bearer ? { bearer } : {}) };
    if (v.cuts !== undefined || v.part !== undefined) {
      const { parseIntList } = await import('./args.js');
      const cuts = parseIntList(need(v.cuts, '--cuts (with --part)'), '--cuts');
      const index = Number(need(v.part, '--part (with --cuts)'));
      const shapes = parseInputShapes(v['input-shape']);
      const r = await buildPart(uri, sha, out, { ...fo, cuts, index, ...(Object.keys(shapes).length ? { inputShapes: shapes } : {}), ...(v['part-sha256'] ? { partSha256: v['part-sha256'] } : {}) });
      process.stdout.write(`kerf k8s fetch: ${uri} (${r.modelBytes} bytes, sha256 ok) → part ${index} at cuts [${cuts.join(',')}] → ${out} (${r.bytes} bytes, sha256 ${v['part-sha256'] ? 'ok' : r.sha256})\n`);
      return 0;
    }
    const r = await fetchModel(uri, sha, out, fo);
    process.stdout.write(`kerf k8s fetch: ${uri} → ${out} (${r.bytes} bytes, sha256 ok)\n`);
    return 0;
  }
  throw kerfError('KERF_ERR_USAGE', `unknown subcommand 'k8s ${sub}' (render, install, reconcile, fetch)\n${HELP}`);
}
