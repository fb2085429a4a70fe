/**
 * The Kubernetes objects of one placement: per stage a Deployment pinned to its node and a
 * Service, the gateway's Deployment, the entry Service, the pipeline's token Secret. Pure:
 * same placement state in, same objects out. Every pod: non-root, read-only root filesystem,
 * no capabilities, readiness and liveness probes, memory request = limit from kerf's memory
 * model, CPU from the placement, Prometheus scrape annotations; the model reaches it through
 * an init container that fetches it and checks its sha256 (`kerf k8s fetch`).
 */
import { createHash } from 'node:crypto';
import { formatCpu, formatMiB } from './quantity.js';
import { envEntries, GATEWAY_MALLOC_ENV, GATEWAY_NODE_FLAGS, WORKER_MALLOC_ENV } from '../serve/malloc-env.js';
import type { K8sObject, OwnerReference, PlacementState } from './types.js';

export const PORT_FRAMES = 9000;
export const PORT_METRICS = 9100;
export const PORT_OIP = 8000;
export const UID = 10001;
export const MODEL_DIR = '/kerf/model';
/** Where the image (the Dockerfile) puts kerf's CLI; `kerf` on its PATH links to it. */
export const IMAGE_KERF_BIN = '/app/bin/kerf.js';
/** The gateway container's command: node with the flags kerf up starts a gateway with
 * (GATEWAY_NODE_FLAGS, which NODE_OPTIONS does not take), then kerf's CLI. */
export const GATEWAY_COMMAND: readonly string[] = Object.freeze(['node', ...GATEWAY_NODE_FLAGS, IMAGE_KERF_BIN]);

export const LABEL_PIPELINE = 'kerf.dev/pipeline';
export const LABEL_PLACEMENT = 'kerf.dev/placement';
export const LABEL_STAGE = 'kerf.dev/stage';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';

/** What every object of a pipeline needs to know besides its placement. */
export interface RenderContext {
  pipeline: string;
  namespace: string;
  /** owner of everything (absent for `kerf k8s render`, whose objects have no KerfPipeline) */
  owner?: OwnerReference;
  image: string;
  modelName: string;
  inputShapes?: Record<string, number[]>;
  queue?: number;
  /** every hop's codec (`--next-codec`) */
  codec?: string;
  /** the gateway's switch strategy */
  switching?: string;
  entryService: { type: 'ClusterIP' | 'NodePort' | 'LoadBalancer'; port: number };
  /** Secret holding the pipeline's token (key `token`) */
  tokenSecret: string;
  /** how long the gateway holds a request whose chain failed, for replay on the next (ms; default 120000) */
  replayHoldMs?: number;
  /** the operator's parts service (`http://kerf-operator.NS.svc:8080`): stages whose part it
   * built (`stage.part`) fetch exactly that part from it */
  partsUrl?: string;
}

export const LABEL_MODEL = 'kerf.dev/model';

export function stageName(ctx: RenderContext, id: string, i: number): string { return `${ctx.pipeline}-${id}-s${i}`; }
/** The gateway of one model version (it outlives failovers: only its chain changes). */
export function gatewayName(ctx: RenderContext, vid: string): string { return `${ctx.pipeline}-${vid}-gw`; }
/** The Service a version's gateway sends to: the first stage of that version's serving placement. */
export function firstHopName(ctx: RenderContext, vid: string): string { return `${ctx.pipeline}-${vid}-first`; }
/** Short id of a model version (its file and where it comes from). */
export function modelId(m: PlacementState['model']): string {
  return createHash('sha256').update(`${m.sha256}\0${m.uri}\0${m.version}`).digest('hex').slice(0, 8);
}

function meta(ctx: RenderContext, name: string, labels: Record<string, string>, annotations?: Record<string, string>): K8sObject['metadata'] {
  return {
    name, namespace: ctx.namespace,
    labels: { 'app.kubernetes.io/name': 'kerf', 'app.kubernetes.io/instance': ctx.pipeline, 'app.kubernetes.io/managed-by': ctx.owner ? 'kerf-operator' : 'kerf', [LABEL_PIPELINE]: ctx.pipeline, ...labels },
    ...(annotations ? { annotations } : {}),
    ...(ctx.owner ? { ownerReferences: [ctx.owner] } : {}),
  };
}

const containerSecurity = {
  allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: UID, runAsGroup: UID,
  capabilities: { drop: ['ALL'] },
};
const podSecurity = { runAsNonRoot: true, runAsUser: UID, runAsGroup: UID, fsGroup: UID, seccompProfile: { type: 'RuntimeDefault' } };

function shapeArgs(ctx: RenderContext): string[] {
  return Object.entries(ctx.inputShapes ?? {}).flatMap(([n, d]) => ['--input-shape', `${n}=${d.join('x')}`]);
}

/** The init container of the gateway (and of a one-stage placement): fetch the model, check its sha256. */
function fetchContainer(ctx: RenderContext, st: PlacementState): Record<string, unknown> {
  const { source, pvc } = modelSource(st);
  return {
    name: 'fetch-model',
    image: ctx.image,
    command: ['kerf', 'k8s', 'fetch', '--uri', source, '--sha256', st.model.sha256, '-o', `${MODEL_DIR}/model.onnx`],
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
    securityContext: containerSecurity,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [
      { name: 'model', mountPath: MODEL_DIR },
      ...(pvc ? [{ name: 'source', mountPath: '/kerf/source', readOnly: true }] : []),
    ],
  };
}

function modelSource(st: PlacementState): { source: string; pvc: boolean } {
  const pvc = /^pvc:\/\/([^/]+)\/(.+)$/.exec(st.model.uri);
  return { source: pvc ? `/kerf/source/${pvc[2]}` : st.model.uri, pvc: !!pvc };
}

/** Where a stage's ONNX file is in its pod. */
export const PART_FILE = `${MODEL_DIR}/part.onnx`;

/**
 * The init container of a stage: it puts exactly the stage's part at PART_FILE. Served: fetched
 * from the operator (the pipeline's token as bearer) and its sha256 checked. Built: the whole
 * model fetched (its sha256 checked) and the part cut out of it in the pod; only the part stays.
 */
function partContainer(ctx: RenderContext, st: PlacementState, s: PlacementState['stages'][number]): Record<string, unknown> {
  const served = !!(s.part && ctx.partsUrl);
  const { source, pvc } = modelSource(st);
  const command = served
    ? ['kerf', 'k8s', 'fetch', '--uri', `${ctx.partsUrl}/v1/parts/${s.part!.sha256}`, '--sha256', s.part!.sha256, '--bearer-env', 'KERF_TOKEN', '--attempts', '10', '-o', PART_FILE]
    : ['kerf', 'k8s', 'fetch', '--uri', source, '--sha256', st.model.sha256, '--cuts', st.cuts.join(','), '--part', String(s.index),
      ...(s.part ? ['--part-sha256', s.part.sha256] : []), ...shapeArgs(ctx), '-o', PART_FILE];
  // cutting the part out of the whole model needs the whole model in memory, once
  const mem = served ? '128Mi' : formatMiB(Math.max(st.gateway.memoryMiB, 256));
  return {
    name: 'fetch-part',
    image: ctx.image,
    command,
    ...(served ? { env: tokenEnv(ctx) } : {}),
    resources: { requests: { cpu: '100m', memory: mem }, limits: { memory: mem } },
    securityContext: containerSecurity,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [
      { name: 'model', mountPath: MODEL_DIR },
      ...(pvc && !served ? [{ name: 'source', mountPath: '/kerf/source', readOnly: true }] : []),
      ...(served ? [] : [{ name: 'tmp', mountPath: '/tmp' }]),
    ],
  };
}

function volumes(st: PlacementState): unknown[] {
  const pvc = /^pvc:\/\/([^/]+)\/(.+)$/.exec(st.model.uri);
  return [
    { name: 'model', emptyDir: {} },
    { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
    ...(pvc ? [{ name: 'source', persistentVolumeClaim: { claimName: pvc[1], readOnly: true } }] : []),
  ];
}

function tokenEnv(ctx: RenderContext): unknown[] {
  return [{ name: 'KERF_TOKEN', valueFrom: { secretKeyRef: { name: ctx.tokenSecret, key: 'token' } } }];
}

function pinned(hostname: string): Record<string, unknown> {
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [hostname] }] }],
      },
    },
  };
}

function deployment(ctx: RenderContext, name: string, labels: Record<string, string>, pod: Record<string, unknown>, metricsPort: number): K8sObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(ctx, name, labels),
    spec: {
      replicas: 1,
      // one pod pinned to one node: a rolling update would need room for two on that node
      strategy: { type: 'Recreate' },
      revisionHistoryLimit: 2,
      selector: { matchLabels: { [LABEL_PIPELINE]: ctx.pipeline, ...labels } },
      template: {
        metadata: {
          labels: { 'app.kubernetes.io/name': 'kerf', 'app.kubernetes.io/instance': ctx.pipeline, [LABEL_PIPELINE]: ctx.pipeline, ...labels },
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(metricsPort), 'prometheus.io/path': '/metrics' },
        },
        spec: { automountServiceAccountToken: false, enableServiceLinks: false, securityContext: podSecurity, ...pod },
      },
    },
  };
}

/** The Deployments and Services of one placement's stages. */
export function placementObjects(ctx: RenderContext, st: PlacementState): K8sObject[] {
  const out: K8sObject[] = [];
  const n = st.stages.length;
  const svcHost = (i: number) => `${stageName(ctx, st.id, i)}.${ctx.namespace}.svc`;
  for (const s of st.stages) {
    const labels = { [LABEL_COMPONENT]: 'stage', [LABEL_PLACEMENT]: st.id, [LABEL_STAGE]: String(s.index) };
    // a stage of a split runs its part, a standalone model (carried tensors in and out):
    // no cuts, no shapes (the part's are concrete); one stage runs the whole model
    const split = st.cuts.length > 0;
    const args = [
      'worker', '--listen', `0.0.0.0:${PORT_FRAMES}`, '--model', split ? PART_FILE : `${MODEL_DIR}/model.onnx`,
      ...(s.index < n - 1 ? ['--next', `${svcHost(s.index + 1)}:${PORT_FRAMES}`, ...(ctx.codec ? ['--next-codec', ctx.codec] : [])] : []),
      '--metrics', `0.0.0.0:${PORT_METRICS}`, '--name', `s${s.index}`, '--threads', String(s.threads),
      ...(ctx.queue ? ['--queue', String(ctx.queue)] : []), ...(split ? [] : [...shapeArgs(ctx), '--release-model']), '--json',
    ];
    const mem = formatMiB(s.memoryMiB);
    out.push(deployment(ctx, stageName(ctx, st.id, s.index), labels, {
      affinity: pinned(s.hostname),
      initContainers: [st.cuts.length > 0 ? partContainer(ctx, st, s) : fetchContainer(ctx, st)],
      containers: [{
        name: 'worker',
        image: ctx.image,
        command: ['kerf'],
        args,
        env: [...tokenEnv(ctx), ...envEntries(WORKER_MALLOC_ENV)],
        ports: [{ name: 'frames', containerPort: PORT_FRAMES, protocol: 'TCP' }, { name: 'metrics', containerPort: PORT_METRICS, protocol: 'TCP' }],
        resources: { requests: { cpu: formatCpu(s.cpuMilli), memory: mem }, limits: { memory: mem } },
        // the frames port opens once the segment is loaded; /metrics answers while the process runs
        readinessProbe: { tcpSocket: { port: 'frames' }, periodSeconds: 5, failureThreshold: 2 },
        livenessProbe: { httpGet: { path: '/metrics', port: 'metrics' }, initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
        startupProbe: { tcpSocket: { port: 'frames' }, periodSeconds: 5, failureThreshold: 60 },
        securityContext: containerSecurity,
        terminationMessagePolicy: 'FallbackToLogsOnError',
        volumeMounts: [{ name: 'model', mountPath: MODEL_DIR, readOnly: true }, { name: 'tmp', mountPath: '/tmp' }],
      }],
      volumes: volumes(st),
      terminationGracePeriodSeconds: 30,
    }, PORT_METRICS));
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(ctx, stageName(ctx, st.id, s.index), labels),
      spec: {
        type: 'ClusterIP',
        selector: { [LABEL_PIPELINE]: ctx.pipeline, ...labels },
        ports: [{ name: 'frames', port: PORT_FRAMES, targetPort: 'frames', protocol: 'TCP' }, { name: 'metrics', port: PORT_METRICS, targetPort: 'metrics', protocol: 'TCP' }],
      },
    });
  }
  return out;
}

/** Tolerate a lost node only briefly: an unpinned pod (the gateway) moves elsewhere in 10 s, not 300. */
const quickEviction = [
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 10 },
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 10 },
];

/**
 * The gateway of a model version: its Deployment (OIP, replaying requests whose chain fails),
 * its Service (the operator's control calls), and the first-hop Service it sends to, which
 * selects stage 0 of placement `firstPlacement`. The gateway runs no block itself.
 */
export function gatewayObjects(ctx: RenderContext, st: PlacementState, firstPlacement: string): K8sObject[] {
  const vid = modelId(st.model);
  const gwLabels = { [LABEL_COMPONENT]: 'gateway', [LABEL_MODEL]: vid };
  const gmem = formatMiB(st.gateway.memoryMiB);
  const first = `${firstHopName(ctx, vid)}.${ctx.namespace}.svc:${PORT_FRAMES}`;
  return [deployment(ctx, gatewayName(ctx, vid), gwLabels, {
    ...(st.gateway.node ? { affinity: pinned(st.gateway.node) } : { tolerations: quickEviction }),
    initContainers: [fetchContainer(ctx, st)],
    containers: [{
      name: 'gateway',
      image: ctx.image,
      command: [...GATEWAY_COMMAND],
      args: [
        'gateway', '--listen', `0.0.0.0:${PORT_OIP}`, '--model', `${MODEL_DIR}/model.onnx`, '--model-name', ctx.modelName,
        '--blocks', 'none', '--next', first, ...(ctx.codec ? ['--next-codec', ctx.codec] : []), ...(ctx.switching ? ['--switch-strategy', ctx.switching] : []),
        '--replay', '--replay-hold-ms', String(ctx.replayHoldMs ?? 120_000),
        ...(ctx.queue ? ['--queue', String(ctx.queue)] : []), ...shapeArgs(ctx), '--json',
      ],
      env: [...tokenEnv(ctx), ...envEntries(GATEWAY_MALLOC_ENV)],
      ports: [{ name: 'http', containerPort: PORT_OIP, protocol: 'TCP' }],
      resources: { requests: { cpu: '250m', memory: gmem }, limits: { memory: gmem } },
      readinessProbe: { httpGet: { path: '/v2/health/ready', port: 'http' }, periodSeconds: 5, failureThreshold: 2 },
      livenessProbe: { httpGet: { path: '/v2/health/live', port: 'http' }, initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
      startupProbe: { httpGet: { path: '/v2/health/live', port: 'http' }, periodSeconds: 5, failureThreshold: 60 },
      securityContext: containerSecurity,
      terminationMessagePolicy: 'FallbackToLogsOnError',
      volumeMounts: [{ name: 'model', mountPath: MODEL_DIR, readOnly: true }, { name: 'tmp', mountPath: '/tmp' }],
    }],
    volumes: volumes(st),
    terminationGracePeriodSeconds: 30,
  }, PORT_OIP), {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(ctx, gatewayName(ctx, vid), gwLabels),
    spec: {
      type: 'ClusterIP',
      selector: { [LABEL_PIPELINE]: ctx.pipeline, ...gwLabels },
      ports: [{ name: 'http', port: PORT_OIP, targetPort: 'http', protocol: 'TCP' }],
    },
  }, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(ctx, firstHopName(ctx, vid), { [LABEL_COMPONENT]: 'first-hop', [LABEL_MODEL]: vid }, { 'kerf.dev/serving-placement': firstPlacement }),
    spec: {
      type: 'ClusterIP',
      selector: { [LABEL_PIPELINE]: ctx.pipeline, [LABEL_COMPONENT]: 'stage', [LABEL_PLACEMENT]: firstPlacement, [LABEL_STAGE]: '0' },
      ports: [{ name: 'frames', port: PORT_FRAMES, targetPort: 'frames', protocol: 'TCP' }],
    },
  }];
}

/** The entry Service: OIP on `port`, pointing at the gateway of model version `vid`. */
export function entryService(ctx: RenderContext, vid: string): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(ctx, ctx.pipeline, { [LABEL_COMPONENT]: 'entry' }, { 'kerf.dev/serving-model': vid }),
    spec: {
      type: ctx.entryService.type,
      selector: { [LABEL_PIPELINE]: ctx.pipeline, [LABEL_COMPONENT]: 'gateway', [LABEL_MODEL]: vid },
      ports: [{ name: 'http', port: ctx.entryService.port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/** The Secret with the pipeline's shared token (workers refuse peers without it). */
export function tokenSecret(ctx: RenderContext, token: string): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(ctx, ctx.tokenSecret, { [LABEL_COMPONENT]: 'token' }),
    type: 'Opaque',
    stringData: { token },
  };
}
