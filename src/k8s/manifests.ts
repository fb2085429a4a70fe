/**
 * Plain manifests, without the operator's loop: `kerf k8s install` (the CRD, the operator's
 * Deployment, ServiceAccount and least-privilege RBAC, the agents' DaemonSet) and `kerf k8s
 * render` (the objects of one placement or plan, for GitOps users). Pure.
 */
import { createHash } from 'node:crypto';
import { kerfError } from '../errors.js';
import type { Placement } from '../plan/place/types.js';
import type { PlanDocument } from '../plan/types.js';
import { kerfPipelineCrd } from './crd.js';
import { entryService, gatewayObjects, modelId, placementObjects, tokenSecret, UID, type RenderContext } from './objects.js';
import { GROUP, PLURAL, type K8sObject, type PlacementState } from './types.js';

const MiB = 2 ** 20;
export const AGENT_PORT = 7070;
export const OPERATOR_PORT = 8080;

export interface InstallOptions {
  namespace: string;
  image: string;
  /** operator replicas (leader election keeps one active) */
  replicas?: number;
  /** the agents' shared token (random, from the CLI) */
  agentToken: string;
  /** also a ServiceMonitor (Prometheus Operator), with these extra labels (a Prometheus's serviceMonitorSelector) */
  serviceMonitor?: { labels?: Record<string, string> };
  /** the operator's memory, MiB (default 1024: it prepares a model version to cut its parts) */
  operatorMemoryMiB?: number;
  /** label selector (key=value) of the nodes that run an agent; default every node */
  agentNodeSelector?: Record<string, string>;
}

const partOf = { 'app.kubernetes.io/name': 'kerf', 'app.kubernetes.io/part-of': 'kerf', 'app.kubernetes.io/managed-by': 'kerf' };
const podSecurity = { runAsNonRoot: true, runAsUser: UID, runAsGroup: UID, fsGroup: UID, seccompProfile: { type: 'RuntimeDefault' } };
const containerSecurity = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: UID, runAsGroup: UID, capabilities: { drop: ['ALL'] } };

/** Least privilege: everything namespaced except reading Nodes; no wildcards. */
export function operatorRbac(ns: string): K8sObject[] {
  const sa = 'kerf-operator';
  const rw = ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'];
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns, labels: { ...partOf, 'app.kubernetes.io/component': 'operator' } } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role',
      metadata: { name: sa, namespace: ns, labels: partOf },
      rules: [
        { apiGroups: [GROUP], resources: [PLURAL], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ['get', 'patch', 'update'] },
        { apiGroups: ['apps'], resources: ['deployments'], verbs: rw },
        { apiGroups: [''], resources: ['services', 'secrets'], verbs: rw },
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
        // read: profiles and link overrides; written: the links the agents measured (kerf-measured-links)
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
        // what it did, as Events about each KerfPipeline
        { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding',
      metadata: { name: sa, namespace: ns, labels: partOf },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole',
      metadata: { name: `kerf-operator-nodes-${ns}`, labels: partOf },
      rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding',
      metadata: { name: `kerf-operator-nodes-${ns}`, labels: partOf },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `kerf-operator-nodes-${ns}` },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    },
  ];
}

/**
 * A Prometheus Operator ServiceMonitor (monitoring.coreos.com/v1) for kerf's metrics in `ns`:
 * the stages' Services (port `metrics`), the gateways' and the operator's (port `http`, path
 * /metrics); not the entry Service, which reaches a gateway already scraped. `instance`
 * narrows it to one pipeline (`kerf k8s render`). The pods also carry the usual
 * `prometheus.io/*` scrape annotations for a Prometheus without the operator.
 */
export function serviceMonitor(ns: string, o: { instance?: string; labels?: Record<string, string>; interval?: string } = {}): K8sObject {
  return {
    apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor',
    metadata: { name: o.instance ? `${o.instance}-metrics` : 'kerf', namespace: ns, labels: { ...partOf, ...(o.labels ?? {}) } },
    spec: {
      selector: {
        matchLabels: { 'app.kubernetes.io/name': 'kerf', ...(o.instance ? { 'app.kubernetes.io/instance': o.instance } : {}) },
        matchExpressions: [{ key: 'app.kubernetes.io/component', operator: 'In', values: ['stage', 'gateway', 'operator'] }],
      },
      namespaceSelector: { matchNames: [ns] },
      endpoints: [
        { port: 'metrics', path: '/metrics', interval: o.interval ?? '15s', scheme: 'http' },
        { port: 'http', path: '/metrics', interval: o.interval ?? '15s', scheme: 'http' },
      ],
    },
  };
}

/** Everything `kerf k8s install` writes, in apply order. */
export function installObjects(o: InstallOptions): K8sObject[] {
  const ns = o.namespace;
  const opLabels = { 'app.kubernetes.io/name': 'kerf', 'app.kubernetes.io/component': 'operator' };
  const agentLabels = { 'app.kubernetes.io/name': 'kerf', 'app.kubernetes.io/component': 'agent' };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ...partOf, 'pod-security.kubernetes.io/enforce': 'restricted' } } },
    kerfPipelineCrd(),
    ...operatorRbac(ns),
    {
      apiVersion: 'apps/v1', kind: 'Deployment',
      metadata: { name: 'kerf-operator', namespace: ns, labels: { ...partOf, ...opLabels } },
      spec: {
        replicas: o.replicas ?? 2,
        selector: { matchLabels: opLabels },
        template: {
          metadata: { labels: opLabels, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(OPERATOR_PORT), 'prometheus.io/path': '/metrics' } },
          spec: {
            serviceAccountName: 'kerf-operator',
            securityContext: podSecurity,
            containers: [{
              name: 'operator', image: o.image, command: ['kerf'],
              args: ['operator', '--image', o.image, '--listen', `0.0.0.0:${OPERATOR_PORT}`, '--parts-url', `http://kerf-operator.${ns}.svc:${OPERATOR_PORT}`, '--parts-dir', '/var/cache/kerf'],
              env: [
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                // the agents' token: the leader has them measure the links between their nodes
                { name: 'KERF_AGENT_TOKEN', valueFrom: { secretKeyRef: { name: 'kerf-agent-token', key: 'token' } } },
              ],
              ports: [{ name: 'http', containerPort: OPERATOR_PORT, protocol: 'TCP' }],
              // the parts service prepares a model version once to cut its parts: room for a model of a few hundred MB
              resources: { requests: { cpu: '100m', memory: `${o.operatorMemoryMiB ?? 1024}Mi` }, limits: { memory: `${o.operatorMemoryMiB ?? 1024}Mi` } },
              readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3 },
              securityContext: containerSecurity,
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, { name: 'cache', mountPath: '/var/cache/kerf' }],
            }],
            volumes: [{ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } }, { name: 'cache', emptyDir: { sizeLimit: '4Gi' } }],
          },
        },
      },
    },
    {
      // the operator's parts service (GET /v1/parts/SHA, a pipeline's token as bearer) and /metrics
      apiVersion: 'v1', kind: 'Service',
      metadata: { name: 'kerf-operator', namespace: ns, labels: { ...partOf, ...opLabels } },
      spec: { type: 'ClusterIP', selector: opLabels, ports: [{ name: 'http', port: OPERATOR_PORT, targetPort: 'http', protocol: 'TCP' }] },
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kerf-agent-token', namespace: ns, labels: partOf }, type: 'Opaque', stringData: { token: o.agentToken } },
    {
      apiVersion: 'apps/v1', kind: 'DaemonSet',
      metadata: { name: 'kerf-agent', namespace: ns, labels: { ...partOf, ...agentLabels } },
      spec: {
        selector: { matchLabels: agentLabels },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels: agentLabels },
          spec: {
            automountServiceAccountToken: false,
            securityContext: podSecurity,
            ...(o.agentNodeSelector ? { nodeSelector: o.agentNodeSelector } : {}),
            containers: [{
              name: 'agent', image: o.image, command: ['kerf'],
              args: ['agent', '--listen', `0.0.0.0:${AGENT_PORT}`, '--cache', '/tmp/kerf-parts'],
              env: [{ name: 'KERF_AGENT_TOKEN', valueFrom: { secretKeyRef: { name: 'kerf-agent-token', key: 'token' } } }],
              ports: [{ name: 'agent', containerPort: AGENT_PORT, protocol: 'TCP' }],
              resources: { requests: { cpu: '50m', memory: '192Mi' }, limits: { memory: '512Mi' } },
              // the operator reads the agent pod's readiness: an agent that stops answering marks its node lost
              readinessProbe: { tcpSocket: { port: 'agent' }, periodSeconds: 5, failureThreshold: 2 },
              livenessProbe: { tcpSocket: { port: 'agent' }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3 },
              securityContext: containerSecurity,
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            }],
            volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '1Gi' } }],
          },
        },
      },
    },
    ...(o.serviceMonitor ? [serviceMonitor(ns, o.serviceMonitor)] : []),
  ];
}

export interface RenderOptions {
  name: string;
  namespace: string;
  image: string;
  modelUri: string;
  sha256: string;
  version: string;
  modelName?: string;
  inputShapes?: Record<string, number[]>;
  /** plan.json: the node of each used tier (`edge=pi1`) */
  nodes?: Record<string, string>;
  /** plan.json: each stage's memory, MiB (a plan has no memory model); default 512 */
  stageMemoryMiB?: number;
  /** CPU request per stage, millicores (default: the placement's node speed, else 1000) */
  cpuMilli?: number;
  token: string;
  entry?: { type: 'ClusterIP' | 'NodePort' | 'LoadBalancer'; port: number };
  /** also a ServiceMonitor for this pipeline, with these extra labels */
  serviceMonitor?: { labels?: Record<string, string> };
  /** each stage's part (index = stage), made from the model here: the init containers check its sha256 */
  parts?: { sha256: string; bytes: number }[];
}

/** The placement state of a placement.json or plan.json (what `kerf k8s render` writes objects for). */
export function stateOf(doc: unknown, o: RenderOptions): PlacementState {
  const schema = (doc as { schema?: unknown } | null)?.schema;
  const model = { uri: o.modelUri, sha256: o.sha256, version: o.version };
  let cuts: number[];
  let stages: PlacementState['stages'];
  let throughput: number;
  let latency: number;
  let bottleneck: string;
  let gatewayMiB: number;
  if (schema === 'kerf.placement/v1') {
    const p = doc as Placement;
    if (!Array.isArray(p.stages) || p.stages.length === 0) throw kerfError('KERF_ERR_KUBERNETES', "placement: field 'stages' must be a non-empty list");
    cuts = p.stages.slice(0, -1).map((s, k) => {
      if (!Number.isInteger(s.cutOut)) throw kerfError('KERF_ERR_KUBERNETES', `placement: stage ${k} has no cut id at its end; place from a kerf profile of the model`);
      return s.cutOut!;
    });
    stages = p.stages.map((s) => ({
      index: s.index, node: s.node, hostname: o.nodes?.[s.node] ?? s.node, blocks: `${s.blocks.first}..${s.blocks.last}`,
      memoryMiB: Math.ceil(s.memoryBytes / MiB), cpuMilli: o.cpuMilli ?? Math.max(10, Math.round((s.speed ?? 1) * 1000)),
      threads: Math.max(1, Math.floor((o.cpuMilli ?? (s.speed ?? 1) * 1000) / 1000)), computeSeconds: s.computeSeconds,
    }));
    throughput = p.throughput;
    latency = p.latency;
    bottleneck = `${p.bottleneck.kind} ${p.bottleneck.where}`;
    const weights = p.stages.reduce((a, s) => a + s.weightBytes, 0);
    gatewayMiB = Math.ceil((p.memoryModel.margin * (weights + 2 * p.model.inputBytes) + p.memoryModel.overheadBytes) / MiB);
  } else if (schema === 'kerf.plan/v1') {
    const p = doc as PlanDocument;
    const used = p.tiers.filter((t) => t.blocks);
    if (p.cuts.some((c) => c === null)) throw kerfError('KERF_ERR_KUBERNETES', 'plan: its cuts have no kerf cut ids (plan from a kerf profile of the model)');
    cuts = p.cuts as number[];
    if (cuts.length !== used.length - 1) throw kerfError('KERF_ERR_KUBERNETES', `plan: ${used.length} used tiers but ${cuts.length} cuts`);
    stages = used.map((t, i) => {
      const nodeName = o.nodes?.[t.tier];
      if (!nodeName) throw kerfError('KERF_ERR_USAGE', `plan: tier '${t.tier}' runs blocks ${t.blocks![0]}..${t.blocks![1]}; say which node runs it with --node ${t.tier}=NODE`);
      return {
        index: i, node: nodeName, hostname: nodeName, blocks: `${t.blocks![0]}..${t.blocks![1]}`, memoryMiB: o.stageMemoryMiB ?? 512,
        cpuMilli: o.cpuMilli ?? 1000, threads: Math.max(1, Math.floor((o.cpuMilli ?? 1000) / 1000)), computeSeconds: t.computeS,
      };
    });
    throughput = 1 / p.bottleneckS;
    latency = p.totalS;
    bottleneck = `${p.bottleneckS}s`;
    gatewayMiB = o.stageMemoryMiB ?? 512;
  } else {
    throw kerfError('KERF_ERR_KUBERNETES', `expected a kerf.placement/v1 (kerf place -o) or kerf.plan/v1 (kerf plan) document, got schema ${JSON.stringify(schema)}`);
  }
  const id = createHash('sha256').update(JSON.stringify({ m: model.sha256, cuts, n: stages.map((s) => s.node) })).digest('hex').slice(0, 8);
  return {
    id, model, cuts, stages, gateway: { memoryMiB: gatewayMiB, node: null },
    predictedThroughput: throughput, predictedLatencySeconds: latency, bottleneck, reason: 'initial', startedAt: '1970-01-01T00:00:00.000Z', specGeneration: 0,
  };
}

/** The objects `kerf k8s render` writes: the placement's, its entry Service and token Secret. */
export function renderObjects(doc: unknown, o: RenderOptions): K8sObject[] {
  if (!/^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/.test(o.name)) throw kerfError('KERF_ERR_USAGE', `--name '${o.name}': expected a DNS label of at most 32 characters (a-z, 0-9, -)`);
  if (!/^[0-9a-f]{64}$/.test(o.sha256)) throw kerfError('KERF_ERR_USAGE', `--sha256 '${o.sha256}': expected 64 lower-case hex digits`);
  const st = stateOf(doc, o);
  if (o.parts) {
    if (o.parts.length !== st.stages.length) throw kerfError('KERF_ERR_USAGE', `${o.parts.length} parts for ${st.stages.length} stages`);
    st.stages = st.stages.map((s, i) => ({ ...s, part: o.parts![i]! }));
  }
  const ctx: RenderContext = {
    pipeline: o.name, namespace: o.namespace, image: o.image, modelName: o.modelName ?? o.name,
    ...(o.inputShapes ? { inputShapes: o.inputShapes } : {}),
    entryService: o.entry ?? { type: 'ClusterIP', port: 8000 }, tokenSecret: `${o.name}-token`,
  };
  return [
    tokenSecret(ctx, o.token), ...placementObjects(ctx, st), ...gatewayObjects(ctx, st, st.id), entryService(ctx, modelId(st.model)),
    ...(o.serviceMonitor ? [serviceMonitor(o.namespace, { instance: o.name, ...o.serviceMonitor })] : []),
  ];
}
