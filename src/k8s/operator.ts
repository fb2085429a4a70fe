/**
 * The KerfPipeline operator: the imperative shell around the pure reconcile core, and the only
 * user of `@kubernetes/client-node`. It watches KerfPipelines, Nodes and what it owns
 * (list + watch from a resourceVersion, relisting on 410 Gone, through client-node's
 * informers), holds a Lease so two replicas don't fight, and on every change runs
 * `reconcile()` for each pipeline and carries out the answer: server-side apply under one
 * field manager (forced, so hand edits of the fields it owns are taken back), deletes, and the
 * status through the status subresource.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import {
  CustomObjectsApi, KubeConfig, KubernetesObjectApi, makeInformer, PatchStrategy, setHeaderOptions,
  type Informer, type KubernetesObject, type ObjectCache,
} from '@kubernetes/client-node';
import { kerfError } from '../errors.js';
import { leaseStep, type LeaseSpec } from './lease.js';
import { orphans, reconcile, type GatewayAction, type ObjectRef } from './reconcile.js';
import { FIELD_MANAGER, GROUP, KIND, PLURAL, VERSION, API_VERSION, type K8sObject, type KerfPipeline } from './types.js';
import { bodyPending, closeAfterAnswer } from '../util/http.js';
import { createReadStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { PartStore, type PartSpec } from './parts.js';
import { agentProber, agentTargets, lastMeasurement, linksConfigMap, measureDue, LINKS_SCHEMA } from './links.js';
import { measureLinks } from '../cluster/measure.js';
import { eventKey, eventObject, eventStep, microTime, SERIES_WINDOW_MS, type PipelineEvent, type Posted } from './events.js';
import { AGENT_PORT } from './manifests.js';
import type { PlacementState } from './types.js';

export interface OperatorOptions {
  /** a KubeConfig (tests); else `kubeconfig` file; else in-cluster when KUBERNETES_SERVICE_HOST is set; else the default kubeconfig */
  kc?: KubeConfig;
  kubeconfig?: string;
  /** the namespace whose KerfPipelines it manages (its own by default: env POD_NAMESPACE) */
  namespace: string;
  image: string;
  /** this replica's name in the Lease (default: env POD_NAME, else host-pid-random) */
  identity?: string;
  leaseName?: string;
  leaseDurationS?: number;
  /** seconds between reconciles of everything even when nothing changed (default 30) */
  resyncS?: number;
  /** serve /healthz, /readyz and /metrics here ("host:port"; absent: not served) */
  listen?: string;
  log?: (event: Record<string, unknown>) => void;
  /** the base URL of a gateway's Service (default http://NAME.NAMESPACE.svc:PORT, what a pod in the cluster resolves) */
  gatewayUrl?: (service: GatewayAction['service']) => string;
  /** the URL pods reach this operator's parts service at (its Service, e.g.
   * http://kerf-operator.NS.svc:8080; served on `listen`). Absent: no parts are served and each
   * stage's init container cuts its part out of the whole model. */
  partsUrl?: string | ((listenAddress: string) => string);
  /** where models and parts are cached (default: a directory under the system's temp dir) */
  partsDir?: string;
  /** the agents' token (the DaemonSet's Secret kerf-agent-token): with it the leader has the
   * agents measure the links between their nodes (absent: no measurement) */
  agentToken?: string;
  /** measure again this often (s; default 600), and for this long per direction per pair (s; default 1) */
  measure?: { everyS?: number; seconds?: number };
  /** post Kubernetes Events (default true; they are logged either way) */
  events?: boolean;
  /** "host:port" of the agent on a node (default: its pod's IP and the agent port; tests map to loopback) */
  agentAddress?: (node: string) => string;
}

interface Watched { kind: string; apiVersion: string; informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject> }

const micro = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/** Load a KubeConfig the usual way. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (e) {
    throw kerfError('KERF_ERR_KUBERNETES', `${file ?? 'kubeconfig'}: cannot load (${(e as Error).message})`);
  }
  if (!kc.getCurrentCluster()) throw kerfError('KERF_ERR_KUBERNETES', `${file ?? 'kubeconfig'}: no current cluster (in-cluster: KUBERNETES_SERVICE_HOST is not set)`);
  return kc;
}

export class Operator {
  readonly identity: string;
  readonly stats = { reconciles: 0, applies: 0, deletes: 0, statusWrites: 0, errors: 0, leaseTransitions: 0, measurements: 0, events: 0 };
  private measuring: Promise<void> | null = null;
  private readonly posted = new Map<string, Posted>();
  private measureFailedAt = 0;
  leader = false;
  private readonly kc: KubeConfig;
  private readonly objects: KubernetesObjectApi;
  private readonly custom: CustomObjectsApi;
  private readonly watched: Watched[] = [];
  private timer: NodeJS.Timeout | null = null;
  private leaseTimer: NodeJS.Timeout | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private synced = false;
  private server: http.Server | null = null;
  /** pipelines (namespace/name) whose next reconcile is due at (ms) */
  private due = new Map<string, number>();
  private readonly log: (e: Record<string, unknown>) => void;
  /** the parts this replica built (null: no parts service) */
  readonly parts: PartStore | null;

  private constructor(private readonly o: OperatorOptions) {
    this.kc = o.kc ?? loadKubeConfig(o.kubeconfig);
    this.objects = KubernetesObjectApi.makeApiClient(this.kc);
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
    this.identity = o.identity ?? process.env.POD_NAME ?? `kerf-operator-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = o.log ?? ((e) => process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n'));
    if (o.partsUrl && !o.listen) throw kerfError('KERF_ERR_USAGE', 'the parts service (--parts-url) is served on --listen: give both');
    this.parts = o.partsUrl ? new PartStore({ dir: o.partsDir ?? join(tmpdir(), `kerf-operator-parts-${process.pid}`), log: this.log }) : null;
  }

  /** Start watching and electing; resolves once the first lists are in. */
  static async start(o: OperatorOptions): Promise<Operator> {
    const op = new Operator(o);
    try {
      await op.startInformers();
      await op.serveHealth();
      await op.leaseTick();
    } catch (e) {
      await op.close();
      throw e;
    }
    op.resyncTimer = setInterval(() => op.schedule(), (o.resyncS ?? 30) * 1000);
    op.resyncTimer.unref();
    return op;
  }

  /** where /healthz etc. are served */
  get address(): string | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? `${a.address}:${a.port}` : null;
  }

  private async startInformers(): Promise<void> {
    const ns = this.o.namespace;
    const managed = 'app.kubernetes.io/managed-by=kerf-operator';
    const specs: [string, string, string, string | undefined, boolean][] = [
      [API_VERSION, KIND, `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`, undefined, true],
      ['v1', 'Node', '/api/v1/nodes', undefined, false],
      ['apps/v1', 'Deployment', `/apis/apps/v1/namespaces/${ns}/deployments`, managed, true],
      ['v1', 'Service', `/api/v1/namespaces/${ns}/services`, managed, true],
      ['v1', 'Secret', `/api/v1/namespaces/${ns}/secrets`, managed, true],
      ['v1', 'ConfigMap', `/api/v1/namespaces/${ns}/configmaps`, undefined, true],
      ['v1', 'Pod', `/api/v1/namespaces/${ns}/pods`, undefined, true],
    ];
    for (const [apiVersion, kind, path, selector, namespaced] of specs) {
      const list = () => this.objects.list(apiVersion, kind, namespaced ? ns : undefined, undefined, undefined, undefined, undefined, selector);
      const informer = makeInformer(this.kc, path, list, selector);
      const changed = (): void => this.schedule();
      informer.on('add', changed);
      informer.on('update', changed);
      informer.on('delete', changed);
      informer.on('error', (err: unknown) => {
        if (this.closed) return; // the stop aborts the watches
        this.stats.errors++;
        this.log({ event: 'watch-error', kind, error: String((err as Error)?.message ?? err) });
        // client-node's informer restarts only when told: after a pause, list and watch again
        if (!this.closed) setTimeout(() => { if (!this.closed) informer.start().catch(() => undefined); }, 1000).unref();
      });
      this.watched.push({ kind, apiVersion, informer });
    }
    await Promise.all(this.watched.map((w) => w.informer.start()));
    this.synced = true;
  }

  private async serveHealth(): Promise<void> {
    if (!this.o.listen) return;
    const m = /^(.*):(\d+)$/.exec(this.o.listen);
    if (!m) throw kerfError('KERF_ERR_USAGE', `--listen '${this.o.listen}': expected HOST:PORT`);
    this.server = http.createServer((req, res) => {
      const send = (code: number, body: string, type = 'text/plain'): void => {
        if (bodyPending(req)) closeAfterAnswer(req, res);
        res.writeHead(code, { 'content-type': type }); res.end(body);
      };
      const part = /^\/v1\/parts\/([0-9a-f]{64})$/.exec(req.url ?? '');
      if (part && req.method === 'GET' && this.parts) {
        this.servePart(req, res, part[1]!).catch((e: unknown) => {
          this.stats.errors++;
          if (!res.headersSent) send(500, `${errText(e)}\n`); else res.destroy();
        });
        return;
      }
      if (req.url === '/healthz') return send(200, 'ok\n');
      if (req.url === '/readyz') return send(this.synced ? 200 : 503, this.synced ? 'ok\n' : 'syncing\n');
      if (req.url === '/metrics') {
        const s = this.stats;
        return send(200, [
          '# TYPE kerf_operator_leader gauge', `kerf_operator_leader ${this.leader ? 1 : 0}`,
          '# TYPE kerf_operator_reconciles_total counter', `kerf_operator_reconciles_total ${s.reconciles}`,
          '# TYPE kerf_operator_applies_total counter', `kerf_operator_applies_total ${s.applies}`,
          '# TYPE kerf_operator_deletes_total counter', `kerf_operator_deletes_total ${s.deletes}`,
          '# TYPE kerf_operator_errors_total counter', `kerf_operator_errors_total ${s.errors}`, '',
        ].join('\n'), 'text/plain; version=0.0.4');
      }
      return send(404, 'not found\n');
    });
    await new Promise<void>((resolve, reject) => { this.server!.once('error', reject); this.server!.listen(Number(m[2]), m[1], () => resolve()); });
  }

  private partsUrl(): string {
    const u = this.o.partsUrl!;
    return typeof u === 'string' ? u : u(this.address!);
  }

  /** The pipelines whose placements (active, pending, previous) have a stage with this part. */
  private partOwners(sha: string): { pipeline: KerfPipeline; spec: PartSpec }[] {
    const out: { pipeline: KerfPipeline; spec: PartSpec }[] = [];
    for (const p of this.cached(KIND) as KerfPipeline[]) {
      const st = p.status;
      for (const s of [st?.active, st?.pending, st?.previous?.state].filter((x): x is PlacementState => !!x)) {
        const stage = s.stages.find((x) => x.part?.sha256 === sha);
        if (stage) {
          const shapes = (p.spec as { model?: { inputShapes?: Record<string, number[]> } }).model?.inputShapes;
          out.push({ pipeline: p, spec: { uri: s.model.uri, sha256: s.model.sha256, cuts: s.cuts, index: stage.index, ...(shapes ? { inputShapes: shapes } : {}) } });
        }
      }
    }
    return out;
  }

  private tokenOf(namespace: string, pipeline: string): string | null {
    const secret = this.cached('Secret').find((o) => o.metadata.name === `${pipeline}-token` && o.metadata.namespace === namespace);
    const b64 = (secret as { data?: { token?: string } } | undefined)?.data?.token;
    return b64 !== undefined ? Buffer.from(b64, 'base64').toString('utf8') : (secret as { stringData?: { token?: string } } | undefined)?.stringData?.token ?? null;
  }

  /**
   * `GET /v1/parts/SHA`: a stage's part, to a caller holding the token of a pipeline that runs
   * it. A replica that did not build it (a follower, or after a restart) builds it from the
   * pipeline's status.
   */
  private async servePart(req: http.IncomingMessage, res: http.ServerResponse, sha: string): Promise<void> {
    const answer = (code: number, text: string): void => {
      if (bodyPending(req)) closeAfterAnswer(req, res);
      res.writeHead(code, { 'content-type': 'text/plain' }); res.end(`${text}\n`);
    };
    const built = this.parts!.get(sha);
    const owners = this.partOwners(sha).map((x) => ({ key: `${x.pipeline.metadata.namespace}/${x.pipeline.metadata.name}`, spec: x.spec as PartSpec | null }));
    if (built && !owners.some((x) => x.key === built.owner)) owners.push({ key: built.owner, spec: null });
    if (!owners.length) return answer(404, `part ${sha}: no pipeline runs it`);
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const same = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
    const owner = auth === undefined ? undefined : owners.find((x) => {
      const [ns, name] = x.key.split('/') as [string, string];
      const t = this.tokenOf(ns, name);
      return t !== null && same(t, auth);
    });
    if (!owner) return answer(401, `part ${sha}: send the pipeline's token as bearer`);
    let file = built;
    if (!file) {
      const spec = owners.find((x) => x.spec)?.spec;
      if (!spec) return answer(404, `part ${sha}: not built here`);
      await this.parts!.build([spec], owner.key);
      file = this.parts!.get(sha);
      if (!file) return answer(503, `part ${sha}: could not be built (${[...this.parts!.failed().values()].map((f) => f.message).join('; ') || 'its bytes differ from the placement\'s'})`);
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(file.ref.bytes), 'x-kerf-part-sha256': sha });
    createReadStream(file.file).on('error', () => res.destroy()).pipe(res);
    this.log({ event: 'part-served', part: sha.slice(0, 12), pipeline: owner.key, bytes: file.ref.bytes });
  }

  /** Take or renew the Lease; reconcile as soon as this replica leads. */
  private async leaseTick(): Promise<void> {
    if (this.closed) return;
    const dur = this.o.leaseDurationS ?? 15;
    const name = this.o.leaseName ?? 'kerf-operator';
    const ref = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: this.o.namespace } };
    let was = this.leader;
    try {
      let lease: (K8sObject & { spec?: LeaseSpec }) | null = null;
      try {
        lease = plain(await this.objects.read(ref)) as K8sObject & { spec?: LeaseSpec };
      } catch (e) {
        if (code(e) !== 404) throw e;
      }
      const step = leaseStep(lease ? normLease(lease.spec ?? {}) : null, this.identity, micro(new Date()), dur);
      if (step.action === 'none') this.leader = false;
      else {
        const body = { ...ref, metadata: { ...ref.metadata, ...(lease?.metadata.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}) }, spec: step.spec };
        try {
          if (step.action === 'create') await this.objects.create(body);
          else await this.objects.replace(body);
          this.leader = true;
        } catch (e) {
          if (code(e) !== 409) throw e;
          this.leader = false; // another replica wrote first
        }
      }
    } catch (e) {
      this.stats.errors++;
      this.leader = false;
      this.log({ event: 'lease-error', error: errText(e) });
    }
    if (this.leader !== was) {
      this.stats.leaseTransitions++;
      this.log({ event: this.leader ? 'leading' : 'following', identity: this.identity });
      was = this.leader;
      if (this.leader) this.schedule();
    }
    if (!this.closed) {
      this.leaseTimer = setTimeout(() => void this.leaseTick(), (dur / 3) * 1000);
      this.leaseTimer.unref();
    }
  }

  /** Reconcile soon (changes within 50 ms are taken together). */
  schedule(delayMs = 50): void {
    if (this.closed || !this.leader) return;
    if (this.running) { this.again = true; return; }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.reconcileAll().finally(() => {
        this.running = null;
        if (this.again) { this.again = false; this.schedule(); }
      });
    }, delayMs);
  }

  private cached(kind: string): K8sObject[] {
    const w = this.watched.find((x) => x.kind === kind)!;
    return w.informer.list().map((o) => ({ ...(plain(o) as K8sObject), apiVersion: w.apiVersion, kind: w.kind }));
  }

  /** One pass over every pipeline: reconcile, apply, delete, write status. */
  async reconcileAll(): Promise<void> {
    if (!this.leader || this.closed) return;
    const pipelines = this.cached(KIND) as KerfPipeline[];
    const nodes = this.cached('Node');
    const objects = ['Deployment', 'Service', 'Secret', 'ConfigMap', 'Pod'].flatMap((k) => this.cached(k));
    const now = new Date();
    let next = Infinity;
    this.maybeMeasure(objects, now);
    for (const p of pipelines) {
      const key = `${p.metadata.namespace}/${p.metadata.name}`;
      this.stats.reconciles++;
      try {
        const r = reconcile({
          pipeline: p, nodes, objects, now: now.toISOString(), image: this.o.image, newToken: randomBytes(24).toString('base64url'),
          ...(this.parts ? { parts: { url: this.partsUrl(), refs: this.parts.refs(), failed: this.parts.failed() } } : {}),
        });
        if (r.parts.length && this.parts) {
          // built beside the loop; the pipeline is reconciled again once they are there
          void this.parts.build(r.parts, key).then(() => this.schedule());
        }
        for (const e of r.events) {
          this.log({ event: 'pipeline', pipeline: key, ...e });
          await this.postEvent(p, e);
        }
        for (const obj of r.apply) {
          await this.objects.patch(obj as unknown as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
          this.stats.applies++;
        }
        for (const d of r.delete) await this.remove(d);
        for (const a of r.actions) await this.callGateway(a, objects);
        if (r.status && JSON.stringify(r.status) !== JSON.stringify(p.status ?? null)) {
          await this.custom.patchNamespacedCustomObjectStatus(
            { group: GROUP, version: VERSION, namespace: p.metadata.namespace!, plural: PLURAL, name: p.metadata.name, body: { status: r.status }, fieldManager: FIELD_MANAGER },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
          this.stats.statusWrites++;
        }
        if (r.requeueAfterSeconds !== null) next = Math.min(next, r.requeueAfterSeconds * 1000);
        this.due.delete(key);
      } catch (e) {
        this.stats.errors++;
        this.log({ event: 'reconcile-error', pipeline: key, error: errText(e) });
        next = Math.min(next, 5000);
      }
    }
    for (const d of orphans(objects, pipelines)) {
      try { await this.remove(d); } catch (e) { this.stats.errors++; this.log({ event: 'delete-error', object: d, error: errText(e) }); }
    }
    if (next < Infinity && !this.closed) setTimeout(() => this.schedule(), next).unref();
  }

  /**
   * Have the agents measure the links between their nodes when due (none yet, a node's agent
   * not measured yet, or older than `measure.everyS`), beside the loop; the result goes into
   * the MEASURED_LINKS ConfigMap, whose change reconciles every pipeline again.
   */
  private maybeMeasure(objects: readonly K8sObject[], now: Date): void {
    if (!this.o.agentToken || this.measuring || this.closed) return;
    const everyS = this.o.measure?.everyS ?? 600;
    if (Date.now() - this.measureFailedAt < Math.min(60_000, everyS * 1000)) return;
    let targets = agentTargets(objects.filter((o) => o.kind === 'Pod'), AGENT_PORT);
    if (this.o.agentAddress) targets = targets.map((t) => ({ ...t, address: this.o.agentAddress!(t.node) }));
    const why = measureDue(lastMeasurement(objects, this.o.namespace), targets, now.toISOString(), everyS);
    if (!why) return;
    const seconds = this.o.measure?.seconds ?? 1;
    const t0 = performance.now();
    this.log({ event: 'measure-start', nodes: targets.map((t) => t.node), why });
    this.measuring = (async () => {
      try {
        const links = await measureLinks(agentProber(targets, this.o.agentToken!), { seconds });
        const doc = { schema: LINKS_SCHEMA, measuredAt: new Date().toISOString(), nodes: targets.map((t) => t.node), seconds: Math.round(performance.now() - t0) / 1000, links };
        if (this.closed || !this.leader) return;
        await this.objects.patch(linksConfigMap(this.o.namespace, doc) as unknown as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
        this.stats.measurements++;
        this.log({ event: 'measured', nodes: doc.nodes, links: links.length, seconds: doc.seconds });
      } catch (e) {
        this.stats.errors++;
        this.measureFailedAt = Date.now();
        this.log({ event: 'measure-error', error: errText(e) });
      }
    })().finally(() => {
      this.measuring = null;
      if (!this.closed) { const t = setTimeout(() => this.schedule(), everyS * 1000); t.unref(); }
    });
  }

  /** Post a Kubernetes Event about a pipeline (a repeat updates the first one's series); failures are logged only. */
  private async postEvent(p: KerfPipeline, e: PipelineEvent): Promise<void> {
    if (this.o.events === false) return;
    const key = eventKey(p, e);
    const now = Date.now();
    const posted = this.posted.get(key);
    try {
      if (eventStep(posted, now) === 'series') {
        posted!.count++;
        posted!.last = now;
        await this.objects.patch(
          { apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name: posted!.name, namespace: p.metadata.namespace! }, series: { count: posted!.count, lastObservedTime: microTime(new Date(now)) } } as unknown as KubernetesObject,
          undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch,
        );
      } else {
        const ev = eventObject(p, e, new Date(now), this.identity);
        await this.objects.create(ev as unknown as KubernetesObject);
        this.posted.set(key, { name: ev.metadata.name, count: 1, first: now, last: now });
        if (this.posted.size > 1000) for (const [k, v] of this.posted) if (now - v.last > SERIES_WINDOW_MS) this.posted.delete(k);
      }
      this.stats.events++;
    } catch (err) {
      this.stats.errors++;
      this.log({ event: 'event-error', reason: e.reason, error: errText(err) });
    }
  }

  /** Carry out a gateway action (the runtime's failover onto a new chain, with replay). */
  private async callGateway(a: GatewayAction, objects: readonly K8sObject[]): Promise<void> {
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === a.tokenSecret && o.metadata.namespace === a.service.namespace);
    const b64 = (secret as { data?: { token?: string } } | undefined)?.data?.token;
    const token = b64 !== undefined ? Buffer.from(b64, 'base64').toString('utf8') : (secret as { stringData?: { token?: string } } | undefined)?.stringData?.token;
    if (!token) throw kerfError('KERF_ERR_KUBERNETES', `Secret ${a.service.namespace}/${a.tokenSecret} with the pipeline's token is not there (yet)`);
    const base = this.o.gatewayUrl?.(a.service) ?? `http://${a.service.name}.${a.service.namespace}.svc:${a.service.port}`;
    const t0 = performance.now();
    let res: Response;
    try {
      res = await fetch(`${base}/v1/partition/failover`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(a.body), signal: AbortSignal.timeout(90_000),
      });
    } catch (e) {
      throw kerfError('KERF_ERR_UPSTREAM', `gateway ${a.service.name}: failover call failed (${String((e as Error).cause ?? (e as Error).message)})`);
    }
    const text = await res.text();
    if (!res.ok) throw kerfError('KERF_ERR_UPSTREAM', `gateway ${a.service.name}: failover answered ${res.status}: ${text.slice(0, 300)}`);
    let replayed: unknown;
    try { replayed = (JSON.parse(text) as { failover?: { replayed?: number } }).failover?.replayed; } catch { /* the report is for the log only */ }
    this.log({ event: 'gateway-retarget', gateway: a.service.name, next: a.body.next, reason: a.body.reason, replayed, ms: Math.round(performance.now() - t0) });
  }

  private async remove(d: ObjectRef): Promise<void> {
    try {
      await this.objects.delete({ apiVersion: d.apiVersion, kind: d.kind, metadata: { name: d.name, ...(d.namespace ? { namespace: d.namespace } : {}) } }, undefined, undefined, undefined, undefined, 'Background');
      this.stats.deletes++;
    } catch (e) {
      if (code(e) !== 404) throw e;
    }
  }

  /** Stop watching; give the Lease up so another replica leads at once. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.timer, this.leaseTimer, this.resyncTimer]) if (t) clearTimeout(t);
    await this.running?.catch(() => undefined);
    await this.measuring?.catch(() => undefined);
    await Promise.all(this.watched.map((w) => w.informer.stop().catch(() => undefined)));
    if (this.leader) {
      try {
        const ref = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.o.leaseName ?? 'kerf-operator', namespace: this.o.namespace } };
        const lease = plain(await this.objects.read(ref)) as K8sObject & { spec?: LeaseSpec };
        if (lease.spec?.holderIdentity === this.identity) {
          await this.objects.replace({ ...ref, metadata: { ...ref.metadata, resourceVersion: lease.metadata.resourceVersion }, spec: { ...normLease(lease.spec), holderIdentity: '' } });
        }
      } catch { /* the lease expires by itself */ }
      this.leader = false;
    }
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (this.parts && !this.o.partsDir) rmSync(this.parts.dir, { recursive: true, force: true });
  }
}

/** client-node hands back class instances with Dates: make them the JSON the API server sent. */
function plain(o: unknown): unknown { return JSON.parse(JSON.stringify(o)); }
function normLease(s: LeaseSpec): LeaseSpec { return JSON.parse(JSON.stringify(s)) as LeaseSpec; }
function code(e: unknown): number | undefined { return (e as { code?: number; statusCode?: number }).code ?? (e as { statusCode?: number }).statusCode; }
function errText(e: unknown): string {
  const b = (e as { body?: unknown }).body;
  return `${(e as Error).message ?? String(e)}${b ? ` ${typeof b === 'string' ? b.slice(0, 300) : JSON.stringify(b).slice(0, 300)}` : ''}`;
}
