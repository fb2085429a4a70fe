/**
 * The KerfPipeline CustomResourceDefinition: a structural schema (every field typed, unknown
 * fields pruned by the API server and refused by kerf's own check), the status subresource,
 * printer columns. `strictSpecSchema()` is the same schema with unknown fields refused, which
 * the reconcile core validates every spec against (a typo must not silently mean a default).
 */
import { validateJson } from '../profile/schema.js';
import { kerfError } from '../errors.js';
import { parseHopCodec } from '../codec/spec.js';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION, type K8sObject, type KerfPipelineSpec } from './types.js';

type Schema = Record<string, unknown>;

const str = { type: 'string', minLength: 1 };
const posInt = { type: 'integer', minimum: 1 };
const nonneg = { type: 'number', minimum: 0 };
const configMapRef = {
  type: 'object', required: ['name'],
  properties: { name: str, key: str },
};
const labelSelector = {
  type: 'object',
  properties: {
    matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object', required: ['key', 'operator'],
        properties: { key: str, operator: { type: 'string', enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: { type: 'array', items: { type: 'string' } } },
      },
    },
  },
};

/** The openAPIV3Schema of `spec`. */
export const SPEC_SCHEMA: Schema = {
  type: 'object',
  required: ['model'],
  properties: {
    model: {
      type: 'object',
      required: ['uri', 'sha256', 'version', 'profile'],
      properties: {
        uri: { type: 'string', pattern: '^(https?://[^\\s]+|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[^\\s]+)$', description: 'http(s) URL of the ONNX model, or pvc://CLAIM/path' },
        sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'sha256 of the model file, lower-case hex' },
        version: str,
        name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'OIP model name (default: the pipeline name)' },
        inputShapes: { type: 'object', additionalProperties: { type: 'array', minItems: 1, items: posInt } },
        profile: {
          type: 'object', required: ['configMapRef'],
          properties: { configMapRef: configMapRef },
          description: "the model's kerf profile (kerf.profile/v1) in a ConfigMap (key default profile.json)",
        },
      },
    },
    objective: { type: 'string', enum: ['throughput', 'latency'] },
    nodeSelector: labelSelector,
    entry: {
      type: 'object',
      properties: {
        service: { type: 'object', properties: { type: { type: 'string', enum: ['ClusterIP', 'NodePort', 'LoadBalancer'] }, port: posInt } },
        node: str,
      },
    },
    image: str,
    stageCpu: { type: 'number', minimum: 0.01 },
    referenceCpus: { type: 'number', minimum: 0.01 },
    maxStages: posInt,
    memory: { type: 'object', properties: { margin: { type: 'number', minimum: 1 }, overheadMB: nonneg } },
    network: {
      type: 'object',
      properties: { bandwidthMbps: { type: 'number', minimum: 0.001 }, rttMs: nonneg, linksConfigMapRef: configMapRef },
    },
    defaults: {
      type: 'object',
      properties: {
        queue: posInt, threads: posInt,
        codec: { type: 'string', minLength: 1, maxLength: 64, description: "every hop's codec (kerf worker --next-codec C[/R], docs/codec.md)" },
        switching: { type: 'string', enum: ['pause-resume', 'standby', 'on-demand', 'hot-swap'], description: "the gateway's switch strategy (docs/switch.md)" },
      },
    },
    rollout: { type: 'object', properties: { timeoutSeconds: posInt, drainSeconds: { type: 'integer', minimum: 0 } } },
    failover: { type: 'object', properties: { holdSeconds: posInt } },
    replan: { type: 'object', properties: { minGain: nonneg } },
  },
};

const condition = {
  type: 'object', required: ['type', 'status'],
  properties: {
    type: str, status: { type: 'string', enum: ['True', 'False', 'Unknown'] }, reason: { type: 'string' }, message: { type: 'string' },
    lastTransitionTime: { type: 'string', format: 'date-time' }, observedGeneration: { type: 'integer' },
  },
};
const placementState = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    model: { type: 'object', properties: { uri: { type: 'string' }, sha256: { type: 'string' }, version: { type: 'string' } } },
    cuts: { type: 'array', items: { type: 'integer' } },
    stages: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          index: { type: 'integer' }, node: { type: 'string' }, hostname: { type: 'string' }, blocks: { type: 'string' },
          memoryMiB: { type: 'integer' }, cpuMilli: { type: 'integer' }, threads: { type: 'integer' }, computeSeconds: { type: 'number' },
          part: { type: 'object', properties: { sha256: { type: 'string' }, bytes: { type: 'integer' } } },
        },
      },
    },
    gateway: { type: 'object', properties: { memoryMiB: { type: 'integer' }, node: { type: 'string', nullable: true } } },
    predictedThroughput: { type: 'number' },
    predictedLatencySeconds: { type: 'number' },
    bottleneck: { type: 'string' },
    reason: { type: 'string' },
    startedAt: { type: 'string' },
    specGeneration: { type: 'integer' },
    staged: { type: 'boolean' },
  },
};

/** The openAPIV3Schema of `status`. */
export const STATUS_SCHEMA: Schema = {
  type: 'object',
  properties: {
    observedGeneration: { type: 'integer' },
    conditions: { type: 'array', items: condition, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
    activeVersion: { type: 'string', nullable: true },
    active: { ...placementState, nullable: true },
    pending: { ...placementState, nullable: true },
    previous: { type: 'object', nullable: true, properties: { id: { type: 'string' }, state: placementState, retireAt: { type: 'string' } } },
    links: {
      type: 'array',
      items: { type: 'object', properties: { from: { type: 'string' }, to: { type: 'string' }, bandwidthMbps: { type: 'number' }, rttMs: { type: 'number' }, source: { type: 'string' } } },
    },
    lastFailover: {
      type: 'object', nullable: true,
      properties: { node: { type: 'string' }, reason: { type: 'string' }, lostAt: { type: 'string' }, detectedAt: { type: 'string' }, placedAt: { type: 'string' }, switchedAt: { type: 'string' }, seconds: { type: 'number' } },
    },
    rollout: {
      type: 'object', nullable: true,
      properties: { from: { type: 'string', nullable: true }, to: { type: 'string' }, phase: { type: 'string' }, message: { type: 'string' }, at: { type: 'string' } },
    },
    failed: { type: 'object', nullable: true, properties: { sha256: { type: 'string' }, specGeneration: { type: 'integer' }, message: { type: 'string' } } },
  },
};

/** The CRD object (apiextensions.k8s.io/v1). */
export function kerfPipelineCrd(): K8sObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}`, labels: { 'app.kubernetes.io/name': 'kerf', 'app.kubernetes.io/part-of': 'kerf' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { plural: PLURAL, singular: 'kerfpipeline', kind: KIND, listKind: `${KIND}List`, shortNames: ['kp'], categories: ['kerf'] },
      versions: [{
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: 'Version', type: 'string', jsonPath: '.status.activeVersion' },
          { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
          { name: 'Stages', type: 'integer', jsonPath: '.status.active.stages[*].index', priority: 1 },
          { name: 'Req/s', type: 'number', jsonPath: '.status.active.predictedThroughput' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: {
          openAPIV3Schema: {
            type: 'object',
            description: `${KIND}: an ONNX model served split across nodes, placed by kerf (${API_VERSION})`,
            properties: {
              apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' },
              spec: SPEC_SCHEMA, status: STATUS_SCHEMA,
            },
            required: ['spec'],
          },
        },
      }],
    },
  };
}

/** `schema` with unknown fields refused on every object that lists its properties. */
export function strictSchema(schema: Schema): Schema {
  const out: Schema = { ...schema };
  if (out.properties) {
    out.properties = Object.fromEntries(Object.entries(out.properties as Record<string, Schema>).map(([k, v]) => [k, strictSchema(v)]));
    if (out.additionalProperties === undefined) out.additionalProperties = false;
  }
  if (out.items) out.items = strictSchema(out.items as Schema);
  if (out.additionalProperties && typeof out.additionalProperties === 'object') out.additionalProperties = strictSchema(out.additionalProperties as Schema);
  return out;
}

const STRICT_SPEC = strictSchema(SPEC_SCHEMA);

/** Validate a KerfPipeline's spec; throws KERF_ERR_KUBERNETES naming `where` and the first bad field. */
export function checkSpec(spec: unknown, where: string): KerfPipelineSpec {
  const e = validateJson(STRICT_SPEC, spec, STRICT_SPEC, 'spec');
  if (e) throw kerfError('KERF_ERR_KUBERNETES', `${where}: ${e}`);
  const s = spec as KerfPipelineSpec;
  if (s.defaults?.codec !== undefined) {
    try { parseHopCodec(s.defaults.codec, 'spec.defaults.codec'); } catch (err) { throw kerfError('KERF_ERR_KUBERNETES', `${where}: ${(err as Error).message}`); }
  }
  if (s.replan?.minGain !== undefined && s.replan.minGain > 10) throw kerfError('KERF_ERR_KUBERNETES', `${where}: spec.replan.minGain ${s.replan.minGain} is above 10`);
  return s;
}
