/** Fixtures of the Kubernetes tests: a profile, Nodes, a KerfPipeline, and a small world that
 * applies what the reconcile core asks for (as the API server would) so tests can step it. */
import { reconcile, type ReconcileInput, type ReconcileResult } from '../../src/k8s/reconcile.js';
import type { K8sObject, KerfPipeline, KerfPipelineSpec } from '../../src/k8s/types.js';
import { KubeConfig } from '@kubernetes/client-node';

export const SHA_A = 'a'.repeat(64);
export const SHA_B = 'b'.repeat(64);
const MB = 2 ** 20;

/** A kerf.profile/v1 of `n` blocks, each `seconds` on the reference system. */
export function profile(n = 8, seconds = 0.04, paramMB = 4, outMB = 0.2): object {
  const lat = (s: number) => ({ median: s, p90: s, min: s, spread: 0, runs: 5 });
  return {
    schema: 'kerf.profile/v1',
    model: { name: 'tiny', inputBytes: 0.5 * MB },
    system: { name: 'ref' },
    granularity: 'single',
    source: 'kerf',
    blocks: Array.from({ length: n }, (_, i) => ({
      index: i, firstLayer: i, lastLayer: i, ...(i < n - 1 ? { cutId: 10 + i } : {}),
      latency: lat(seconds), outputBytes: i < n - 1 ? outMB * MB : 4000, paramBytes: paramMB * MB,
    })),
  };
}

export function node(name: string, opts: { memory?: string; cpu?: string; ready?: 'True' | 'False' | 'Unknown'; labels?: Record<string, string>; taints?: { key: string; effect: string }[] } = {}): K8sObject {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(opts.labels ?? {}) } },
    spec: { ...(opts.taints ? { taints: opts.taints } : {}) },
    status: {
      allocatable: { memory: opts.memory ?? '1Gi', cpu: opts.cpu ?? '1' },
      conditions: [{ type: 'Ready', status: opts.ready ?? 'True' }],
    },
  };
}

export function profileConfigMap(ns = 'edge', prof: object = profile()): K8sObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'tiny-profile', namespace: ns }, data: { 'profile.json': JSON.stringify(prof) } };
}

export function spec(over: Partial<KerfPipelineSpec> = {}): KerfPipelineSpec {
  return {
    model: { uri: 'https://models.example/tiny.onnx', sha256: SHA_A, version: 'v1', profile: { configMapRef: { name: 'tiny-profile' } } },
    ...over,
  };
}

export function pipeline(s: KerfPipelineSpec = spec(), generation = 1): KerfPipeline {
  return { apiVersion: 'kerf.dev/v1alpha1', kind: 'KerfPipeline', metadata: { name: 'tiny', namespace: 'edge', uid: 'uid-tiny', generation }, spec: s };
}

const key = (o: { kind: string; metadata?: { name: string }; name?: string }): string => `${o.kind}/${o.metadata?.name ?? o.name}`;

/** The cluster as the reconcile core sees it, moved along by what it asks for. */
export class World {
  nodes: K8sObject[];
  objects: K8sObject[];
  pipeline: KerfPipeline;
  t = Date.parse('2026-01-01T00:00:00Z');
  last: ReconcileResult | null = null;
  /** the operator's parts service as the core sees it (absent: none) */
  parts: ReconcileInput['parts'];
  constructor(nodes: K8sObject[], p: KerfPipeline = pipeline(), objects: K8sObject[] = [profileConfigMap()]) {
    this.nodes = nodes;
    this.pipeline = p;
    this.objects = objects;
  }
  get now(): string { return new Date(this.t).toISOString(); }
  advance(seconds: number): void { this.t += seconds * 1000; }
  /** One reconcile; its applies and deletes take effect (status too). */
  step(): ReconcileResult {
    const r = reconcile({ pipeline: this.pipeline, nodes: this.nodes, objects: this.objects, now: this.now, image: 'kerf:test', newToken: 'tok', ...(this.parts ? { parts: this.parts } : {}) });
    for (const a of r.apply) {
      const copy = JSON.parse(JSON.stringify(a)) as K8sObject;
      const i = this.objects.findIndex((o) => key(o) === key(a));
      if (i >= 0) this.objects[i] = { ...copy, status: this.objects[i]!.status } as K8sObject;
      else this.objects.push(copy);
    }
    this.objects = this.objects.filter((o) => !r.delete.some((d) => key(d) === key(o)));
    if (r.status) this.pipeline = { ...this.pipeline, status: r.status };
    this.last = r;
    return r;
  }
  /** Mark every Deployment of a placement (and every gateway) ready, as the kubelet and the Deployment controller would. */
  ready(id: string): void {
    for (const o of this.objects) {
      if (o.kind === 'Deployment' && (o.metadata.labels?.['kerf.dev/placement'] === id || o.metadata.labels?.['app.kubernetes.io/component'] === 'gateway')) o.status = { readyReplicas: 1, availableReplicas: 1 };
    }
  }
  deployments(id?: string): K8sObject[] {
    return this.objects.filter((o) => o.kind === 'Deployment' && (id === undefined || o.metadata.labels?.['kerf.dev/placement'] === id));
  }
  find(kind: string, name: string): K8sObject | undefined { return this.objects.find((o) => o.kind === kind && o.metadata.name === name); }
  condition(type: string): { status: string; reason: string; message: string } {
    return this.pipeline.status!.conditions!.find((c) => c.type === type)!;
  }
  setSpec(s: KerfPipelineSpec): void {
    this.pipeline = { ...this.pipeline, spec: s, metadata: { ...this.pipeline.metadata, generation: (this.pipeline.metadata.generation ?? 0) + 1 } };
  }
}

/** The node a stage Deployment is pinned to (its required node affinity). */
export function pinnedTo(d: K8sObject): string {
  const terms = (d as unknown as { spec: { template: { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: { matchExpressions: { key: string; values: string[] }[] }[] } } } } } } })
    .spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
  const e = terms[0]!.matchExpressions[0]!;
  if (e.key !== 'kubernetes.io/hostname') throw new Error(`pinned by ${e.key}`);
  return e.values[0]!;
}

/** A kubeconfig for a test API server (the fake one, on loopback). */
export function kubeconfig(url: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: token, token }],
    contexts: [{ name: 'fake', cluster: 'fake', user: token, namespace: 'edge' }],
    currentContext: 'fake',
  });
  return kc;
}

export async function until<T>(what: string, f: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
