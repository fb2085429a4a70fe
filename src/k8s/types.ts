/**
 * Types of kerf on Kubernetes: the KerfPipeline resource (kerf.dev/v1alpha1) and the small
 * slice of Kubernetes objects the reconcile core reads. Objects are plain JSON (what the API
 * server and `kubectl get -o json` give); only the fields kerf reads are typed.
 */

export const GROUP = 'kerf.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}` as const;
export const KIND = 'KerfPipeline';
export const PLURAL = 'kerfpipelines';
/** The one field manager of every server-side apply the operator makes. */
export const FIELD_MANAGER = 'kerf-operator';

/** Any Kubernetes object, as JSON. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [k: string]: unknown;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  [k: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

/** `spec` of a KerfPipeline. */
export interface KerfPipelineSpec {
  model: {
    /** http(s) URL, or `pvc://CLAIM/path/in/claim.onnx` */
    uri: string;
    sha256: string;
    version: string;
    /** OIP model name (default: the pipeline's name) */
    name?: string;
    /** concrete shapes for dynamic inputs, e.g. `{ x: [1, 3, 224, 224] }` */
    inputShapes?: Record<string, number[]>;
    /** the model's kerf profile (kerf.profile/v1) in a ConfigMap of the namespace */
    profile: { configMapRef: { name: string; key?: string } };
  };
  /** throughput (default): minimise the slowest stage or link; latency: minimise end-to-end time */
  objective?: 'throughput' | 'latency';
  /** which nodes may take stages (default: every Ready node) */
  nodeSelector?: LabelSelector;
  /** where requests arrive: a Service (default ClusterIP :8000), or a node (a device) */
  entry?: { service?: { type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer'; port?: number }; node?: string };
  /** the image of every pod (default: the operator's --image) */
  image?: string;
  /** cores given to a stage: its pod's CPU request (default 1, at most the node's allocatable) */
  stageCpu?: number;
  /** cores of the system the profile was measured on (default 1): a stage of c cores has speed c ÷ this */
  referenceCpus?: number;
  /** at most this many stages */
  maxStages?: number;
  memory?: { margin?: number; overheadMB?: number };
  /** links between nodes: measured ones from a ConfigMap (`links.json`: kerf.cluster/v1 links),
   * the rest at the default */
  network?: { bandwidthMbps?: number; rttMs?: number; linksConfigMapRef?: { name: string; key?: string } };
  /** defaults of the runtime's pods: queue and threads of every stage; the codec of every hop
   * (the gateway's and each stage's `--next-codec`, e.g. `lz4`, `fp16+zstd/lz4`); the
   * gateway's switch strategy (`pause-resume`, `standby`, `on-demand`, `hot-swap`) */
  defaults?: { queue?: number; threads?: number; codec?: string; switching?: 'pause-resume' | 'standby' | 'on-demand' | 'hot-swap' };
  rollout?: { timeoutSeconds?: number; drainSeconds?: number };
  /** how long the gateway holds a request whose chain failed, waiting to replay it on the next (default 120) */
  failover?: { holdSeconds?: number };
  /** re-place onto changed nodes (say, one added) only for this predicted relative gain (default 0.2) */
  replan?: { minGain?: number };
}

/** A condition in the usual Kubernetes style. */
export interface Condition {
  type: 'Ready' | 'Placed' | 'Degraded' | 'RolloutInProgress';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** One stage of a placement as kept in status (enough to render its objects again). */
export interface StatusStage {
  index: number;
  node: string;
  /** the node's `kubernetes.io/hostname` label (what the affinity names) */
  hostname: string;
  /** first..last block */
  blocks: string;
  memoryMiB: number;
  /** CPU request, millicores */
  cpuMilli: number;
  threads: number;
  computeSeconds: number;
  /** the stage's part (the ONNX of exactly its segment) as the operator built and serves it;
   * absent: the init container cuts it out of the whole model */
  part?: { sha256: string; bytes: number };
}

/** A placement the operator runs or brings up: one set of Deployments and Services. */
export interface PlacementState {
  /** short hash naming its objects (`<pipeline>-<id>-s0` …) */
  id: string;
  model: { uri: string; sha256: string; version: string };
  /** the pipeline's cut ids (the stages' boundaries) */
  cuts: number[];
  stages: StatusStage[];
  gateway: { memoryMiB: number; node: string | null };
  predictedThroughput: number;
  predictedLatencySeconds: number;
  bottleneck: string;
  /** why it was made: initial, failover, rollout, replan */
  reason: 'initial' | 'failover' | 'rollout' | 'replan';
  startedAt: string;
  /** the pipeline's spec generation it was made for */
  specGeneration: number;
  /** it does not fit beside the placement it replaces: brought up stage by stage, each new
   * stage after the old ones on its node stopped */
  staged?: boolean;
}

export interface KerfPipelineStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  activeVersion?: string | null;
  /** the placement serving (the entry Service points at its gateway) */
  active?: PlacementState | null;
  /** a placement being brought up (rollout, failover, replan) */
  pending?: PlacementState | null;
  /** the placement just replaced, kept until `retireAt` so requests in flight on it finish */
  previous?: { id: string; state: PlacementState; retireAt: string } | null;
  /** every direction between the nodes placed on: from the spec's links ConfigMap (override), measured by the agents, or the spec's default */
  links?: { from: string; to: string; bandwidthMbps: number; rttMs: number; source: 'override' | 'measured' | 'default' }[];
  /** the last node loss: when the node's trouble began (its Ready condition), when the operator
   * saw it, placed again, and switched the gateway onto the new chain */
  lastFailover?: { node: string; reason: string; lostAt?: string; detectedAt: string; placedAt?: string; switchedAt?: string; seconds?: number } | null;
  /** the last rollout: from/to versions, phase and why */
  rollout?: { from: string | null; to: string; phase: 'Progressing' | 'Complete' | 'Failed'; message: string; at: string } | null;
  /** a model (sha256) that failed to roll out at a spec generation: not retried until the spec changes */
  failed?: { sha256: string; specGeneration: number; message: string } | null;
}

export interface KerfPipeline extends K8sObject {
  spec: KerfPipelineSpec;
  status?: KerfPipelineStatus;
}
