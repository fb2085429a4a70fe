/**
 * The reconcile core of the KerfPipeline operator. Pure: the observed objects and the time
 * come in, the objects to apply and delete and the status to write go out; no I/O, no clock.
 * `kerf operator` runs it on every change; `kerf k8s reconcile --state list.json` prints it.
 *
 * A placement is one set of objects named by a short hash (`<pipeline>-<id>-s0`, …, `-gw`).
 * The entry Service points at the gateway of the active placement. A new placement (first
 * start, node lost, new model version, better nodes) is brought up beside the active one
 * (`status.pending`); once every one of its Deployments is ready the entry Service is switched
 * to it in one apply, and the old one is kept `drainSeconds` so requests in flight on it
 * finish, then deleted. A pending placement whose pods fail (bad sha256, a model that does not
 * load, an image that does not pull) or that is not ready in `timeoutSeconds` is dropped and
 * the active one keeps serving.
 */
import { createHash } from 'node:crypto';
import { isKerfError } from '../errors.js';
import { place, validateCluster, placeModelFromProfiles, DEFAULT_MARGIN, DEFAULT_OVERHEAD_MB } from '../plan/place/index.js';
import type { Cluster, ClusterLink, Placement, PlaceModel } from '../plan/place/index.js';
import { checkProfile } from '../profile/schema.js';
import { checkSpec } from './crd.js';
import {
  entryService, gatewayName, gatewayObjects, LABEL_COMPONENT, LABEL_MODEL, LABEL_PIPELINE, LABEL_PLACEMENT, LABEL_STAGE, modelId, placementObjects, PORT_FRAMES, PORT_OIP,
  stageName, tokenSecret, type RenderContext,
} from './objects.js';
import { parseQuantity } from './quantity.js';
import { partKey, servable, type PartSpec } from './parts.js';
import type { PartRef } from '../cluster/substrate.js';
import {
  API_VERSION, KIND, type Condition, type K8sObject, type KerfPipeline, type KerfPipelineSpec, type KerfPipelineStatus,
  type LabelSelector, type PlacementState,
} from './types.js';

const MiB = 2 ** 20;
/** The ConfigMap the operator writes the links its agents measured into (`links.json`). */
export const MEASURED_LINKS = 'kerf-measured-links';
export const DEFAULT_BANDWIDTH_MBPS = 1000;
export const DEFAULT_RTT_MS = 1;
export const DEFAULT_TIMEOUT_S = 600;
export const DEFAULT_DRAIN_S = 30;
export const DEFAULT_MIN_GAIN = 0.2;
/** a pipeline whose placement failed for lack of nodes is looked at again this often */
const RETRY_S = 15;

export interface ReconcileInput {
  pipeline: KerfPipeline;
  /** every Node (v1) */
  nodes: readonly K8sObject[];
  /** what the operator sees in the pipeline's namespace: Deployments, Services, Secrets,
   * ConfigMaps, Pods (the pipeline's and the agents') */
  objects: readonly K8sObject[];
  /** now, RFC 3339 */
  now: string;
  /** the image of every pod unless the spec names one */
  image: string;
  /** the token a new pipeline's Secret gets (random, from the shell); unused once it exists */
  newToken: string;
  /** the operator's parts service: stages of models it can fetch (http(s)) get exactly their
   * part from it, built before the placement comes up. Absent: each stage's init container
   * cuts its part out of the whole model itself. */
  parts?: { url: string; refs: ReadonlyMap<string, PartRef>; failed: ReadonlyMap<string, { message: string; permanent: boolean }> };
}

export interface ObjectRef { apiVersion: string; kind: string; namespace?: string; name: string }

/**
 * Move a running gateway onto a new chain of stages (the runtime's failover: requests in flight
 * on the old chain are replayed on the new one): `POST /v1/partition/failover` on the gateway's
 * Service, with the pipeline's token from `tokenSecret` as the bearer.
 */
export interface GatewayAction {
  kind: 'retarget';
  service: { name: string; namespace: string; port: number };
  tokenSecret: string;
  body: { cuts: number[]; next: string; local: false; reason: string; lost: string[]; detectMs: number; replanMs: number; deployMs: number };
}

export interface ReconcileResult {
  /** objects to server-side apply (only those that differ from what is observed) */
  apply: K8sObject[];
  /** owned objects to delete */
  delete: ObjectRef[];
  /** the status to write; null when the pipeline is being deleted */
  status: KerfPipelineStatus | null;
  /** calls on a gateway the shell makes after applying (before writing the status: when one
   * fails the status is not written and the next reconcile asks again) */
  actions: GatewayAction[];
  /** what happened, for logs and Events */
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
  /** reconcile again after this many seconds even if nothing changes (a drain or timeout ends) */
  requeueAfterSeconds: number | null;
  /** parts the shell should build (then reconcile again): a placement waits for them */
  parts: PartSpec[];
}

const ms = (t: string): number => Date.parse(t);
const secondsBetween = (a: string, b: string): number => (ms(b) - ms(a)) / 1000;
const addSeconds = (t: string, s: number): string => new Date(ms(t) + s * 1000).toISOString();

type Obj = Record<string, unknown>;
const get = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((x, k) => (x && typeof x === 'object' ? (x as Obj)[k] : undefined), o);

/** Does a label selector match these labels? */
export function selectorMatches(sel: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!sel) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = e.key in labels;
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** Why a node cannot run a stage now, or null when it can. Lost = NotReady, Unreachable or its agent silent. */
export function nodeTrouble(node: K8sObject, agentPods: readonly K8sObject[]): { lost: boolean; why: string } | null {
  const conds = (get(node, 'status', 'conditions') as { type: string; status: string; reason?: string }[] | undefined) ?? [];
  const ready = conds.find((c) => c.type === 'Ready');
  const taints = (get(node, 'spec', 'taints') as { key: string; effect: string }[] | undefined) ?? [];
  if (taints.some((t) => t.key === 'node.kubernetes.io/unreachable') || ready?.status === 'Unknown') return { lost: true, why: 'Unreachable' };
  if (!ready || ready.status !== 'True' || taints.some((t) => t.key === 'node.kubernetes.io/not-ready')) return { lost: true, why: 'NotReady' };
  const agent = agentPods.find((p) => get(p, 'spec', 'nodeName') === node.metadata.name);
  if (agent && get(agent, 'metadata', 'deletionTimestamp') === undefined) {
    const pc = (get(agent, 'status', 'conditions') as { type: string; status: string }[] | undefined) ?? [];
    const r = pc.find((c) => c.type === 'Ready');
    if (r && r.status !== 'True') return { lost: true, why: 'AgentSilent' };
  }
  if (get(node, 'spec', 'unschedulable') === true) return { lost: false, why: 'Cordoned' };
  return null;
}

/** When a node's trouble began, from its Ready condition's last transition (null: not said). */
function lostSince(node: K8sObject | undefined, why: string): string | null {
  if (!node || why === 'AgentSilent') return null;
  const ready = ((get(node, 'status', 'conditions') as { type: string; lastTransitionTime?: string }[] | undefined) ?? []).find((c) => c.type === 'Ready');
  return ready?.lastTransitionTime && !Number.isNaN(Date.parse(ready.lastTransitionTime)) ? new Date(ready.lastTransitionTime).toISOString() : null;
}

/** Is every field of `want` present and equal in `have` (what the API server added is ignored)? */
export function contains(have: unknown, want: unknown): boolean {
  if (Array.isArray(want)) {
    return Array.isArray(have) && have.length === want.length && want.every((w, i) => contains(have[i], w));
  }
  if (want && typeof want === 'object') {
    if (!have || typeof have !== 'object' || Array.isArray(have)) return false;
    return Object.entries(want as Obj).every(([k, v]) => v === undefined || contains((have as Obj)[k], v));
  }
  return have === want;
}

const keyOf = (o: { kind: string; metadata?: { name: string }; name?: string }): string => `${o.kind}/${o.metadata?.name ?? o.name}`;

function configMapValue(objects: readonly K8sObject[], ns: string, ref: { name: string; key?: string }, defKey: string): string | null {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === ref.name && (o.metadata.namespace ?? ns) === ns);
  const v = cm ? get(cm, 'data', ref.key ?? defKey) : undefined;
  return typeof v === 'string' ? v : null;
}

class Blocked extends Error {
  constructor(readonly reason: string, message: string) { super(message); }
}

interface Candidate { state: PlacementState; links: NonNullable<KerfPipelineStatus['links']> }

/** Memory (bytes) the pods of the namespace other than `pipeline`'s ask for, per node. */
function otherPodsMemory(objects: readonly K8sObject[], pipeline: string): Map<string, number> {
  const used = new Map<string, number>();
  for (const pod of objects) {
    if (pod.kind !== 'Pod' || pod.metadata.labels?.[LABEL_PIPELINE] === pipeline) continue;
    const node = get(pod, 'spec', 'nodeName');
    const phase = get(pod, 'status', 'phase');
    if (typeof node !== 'string' || phase === 'Succeeded' || phase === 'Failed') continue;
    for (const c of (get(pod, 'spec', 'containers') as Obj[] | undefined) ?? []) {
      const r = get(c, 'resources', 'requests', 'memory');
      if (r !== undefined) used.set(node, (used.get(node) ?? 0) + parseQuantity(r, `pod ${pod.metadata.name}`));
    }
  }
  return used;
}

/** Memory (bytes) the stages of placements hold per node (those on `skip` nodes not counted). */
function heldBy(states: readonly (PlacementState | null | undefined)[], skip: ReadonlySet<string> = new Set()): Map<string, number> {
  const out = new Map<string, number>();
  for (const st of states) for (const s of st?.stages ?? []) if (!skip.has(s.node)) out.set(s.node, (out.get(s.node) ?? 0) + s.memoryMiB * MiB);
  return out;
}

/**
 * A staged placement (two placements do not fit side by side): which of the old placements'
 * stages must stop to make room for it, and which of its own stages may be created now (their
 * node has room: the old stages that held it are gone).
 */
function stagedRoom(pend: PlacementState, old: readonly PlacementState[], nodes: readonly K8sObject[], objects: readonly K8sObject[], pipeline: string): { evict: Set<string>; admit: Set<number>; waiting: string[] } {
  const others = otherPodsMemory(objects, pipeline);
  const evict = new Set<string>();
  const admit = new Set<number>();
  const waiting: string[] = [];
  const byNode = new Map<string, PlacementState['stages']>();
  for (const s of pend.stages) byNode.set(s.node, [...(byNode.get(s.node) ?? []), s]);
  for (const [node, stages] of byNode) {
    const n = nodes.find((x) => x.metadata.name === node);
    const alloc = n ? parseQuantity(get(n, 'status', 'allocatable', 'memory') ?? '0', `node ${node} allocatable memory`) : 0;
    const mine = stages.reduce((a, s) => a + s.memoryMiB * MiB, 0);
    const oldHere = old.flatMap((st) => st.stages.filter((s) => s.node === node).map((s) => ({ st, s })));
    const held = oldHere.reduce((a, x) => a + x.s.memoryMiB * MiB, 0);
    if ((others.get(node) ?? 0) + held + mine <= alloc) { for (const s of stages) admit.add(s.index); continue; }
    for (const x of oldHere) evict.add(`${x.st.id}/${x.s.index}`);
    // created once the old pods on the node are gone (their memory given back)
    const still = objects.filter((o) => o.kind === 'Pod' && get(o, 'spec', 'nodeName') === node && oldHere.some((x) => o.metadata.labels?.[LABEL_PLACEMENT] === x.st.id && o.metadata.labels?.[LABEL_STAGE] === String(x.s.index)));
    if (still.length) waiting.push(`s${stages.map((s) => s.index).join(',s')} on ${node} waits for ${still.map((o) => o.metadata.name).join(', ')} to stop`);
    else for (const s of stages) admit.add(s.index);
  }
  return { evict, admit, waiting };
}

/** The links between `names`, per direction, and where each comes from (for the status). */
function nodeLinks(spec: KerfPipelineSpec, objects: readonly K8sObject[], ns: string, names: readonly string[]): { links: ClusterLink[]; statusLinks: NonNullable<KerfPipelineStatus['links']> } {
  // links, per direction: the spec's ConfigMap (an override) where it names one, else what the
  // agents measured (MEASURED_LINKS), else the spec's default
  const parseLinks = (text: string | null, where: string, notFound: string): Map<string, ClusterLink> => {
    const out = new Map<string, ClusterLink>();
    if (text === null) throw new Blocked('LinksNotFound', notFound);
    let doc: unknown;
    try { doc = JSON.parse(text); } catch (e) { throw new Blocked('InvalidLinks', `${where}: not JSON (${(e as Error).message})`); }
    const list = Array.isArray(doc) ? doc : get(doc, 'links');
    if (!Array.isArray(list)) throw new Blocked('InvalidLinks', `${where}: expected a list of links or {links: [...]}`);
    for (const [i, l] of list.entries()) {
      if (typeof get(l, 'from') !== 'string' || typeof get(l, 'to') !== 'string' || !((get(l, 'bandwidthMbps') as number) > 0)) {
        throw new Blocked('InvalidLinks', `${where}: links[${i}] needs from, to and bandwidthMbps > 0`);
      }
      const link = l as ClusterLink;
      out.set(`${link.from}\0${link.to}`, { from: link.from, to: link.to, bandwidthMbps: link.bandwidthMbps, rttMs: link.rttMs ?? 0 });
    }
    return out;
  };
  const ref = spec.network?.linksConfigMapRef;
  const override = ref
    ? parseLinks(configMapValue(objects, ns, ref, 'links.json'), `ConfigMap ${ref.name}`, `ConfigMap ${ref.name} (key ${ref.key ?? 'links.json'}) with the links is not in namespace ${ns}`)
    : new Map<string, ClusterLink>();
  const measuredText = configMapValue(objects, ns, { name: MEASURED_LINKS }, 'links.json');
  const measured = measuredText === null ? new Map<string, ClusterLink>() : parseLinks(measuredText, `ConfigMap ${MEASURED_LINKS}`, '');
  const links: ClusterLink[] = [];
  const statusLinks: NonNullable<KerfPipelineStatus['links']> = [];
  for (const a of names) {
    for (const b of names) {
      if (a === b) continue;
      const [fwd, back] = [`${a}\0${b}`, `${b}\0${a}`];
      const [m, source] = override.get(fwd) ? [override.get(fwd)!, 'override' as const] : measured.get(fwd) ? [measured.get(fwd)!, 'measured' as const]
        : override.get(back) ? [override.get(back)!, 'override' as const] : measured.get(back) ? [measured.get(back)!, 'measured' as const] : [null, 'default' as const];
      const l = m ? { from: a, to: b, bandwidthMbps: m.bandwidthMbps, rttMs: m.rttMs ?? 0 }
        : { from: a, to: b, bandwidthMbps: spec.network?.bandwidthMbps ?? DEFAULT_BANDWIDTH_MBPS, rttMs: spec.network?.rttMs ?? DEFAULT_RTT_MS };
      links.push(l);
      statusLinks.push({ ...l, source });
    }
  }
  return { links, statusLinks };
}

/** Place the pipeline's model on the nodes that may take stages now. */
function placeNow(p: KerfPipeline, spec: KerfPipelineSpec, nodes: readonly K8sObject[], objects: readonly K8sObject[], trouble: Map<string, { lost: boolean; why: string } | null>, now: string, reason: PlacementState['reason'], reserved: ReadonlyMap<string, number> = new Map()): Candidate {
  const ns = p.metadata.namespace ?? 'default';
  const profText = configMapValue(objects, ns, spec.model.profile.configMapRef, 'profile.json');
  if (profText === null) throw new Blocked('ProfileNotFound', `ConfigMap ${spec.model.profile.configMapRef.name} (key ${spec.model.profile.configMapRef.key ?? 'profile.json'}) with the model's profile is not in namespace ${ns}`);
  let model: PlaceModel;
  try {
    const prof = checkProfile(JSON.parse(profText), `ConfigMap ${spec.model.profile.configMapRef.name}`);
    model = placeModelFromProfiles([prof]);
  } catch (e) {
    throw new Blocked('InvalidProfile', isKerfError(e) ? e.message : `ConfigMap ${spec.model.profile.configMapRef.name}: not JSON (${(e as Error).message})`);
  }
  if (model.blocks.slice(0, -1).some((b) => b.cutId === undefined)) {
    throw new Blocked('InvalidProfile', `ConfigMap ${spec.model.profile.configMapRef.name}: the profile's blocks carry no cut ids (make it with kerf profile on the ONNX model)`);
  }
  const stageCpu = spec.stageCpu ?? 1;
  const refCpus = spec.referenceCpus ?? 1;
  // memory other workloads of the namespace already asked for on each node, and what this
  // pipeline's running placements hold while the new one comes up beside them
  const used = otherPodsMemory(objects, p.metadata.name);
  for (const [n, b] of reserved) used.set(n, (used.get(n) ?? 0) + b);
  const eligible = nodes.filter((n) => trouble.get(n.metadata.name) === null && selectorMatches(spec.nodeSelector, n.metadata.labels ?? {}));
  const entryNode = spec.entry?.node ?? null;
  if (entryNode !== null) {
    const en = nodes.find((n) => n.metadata.name === entryNode);
    if (!en) throw new Blocked('EntryNodeNotFound', `spec.entry.node '${entryNode}' is not a node of the cluster`);
    if (trouble.get(entryNode)?.lost) throw new Blocked('EntryNodeLost', `the entry node '${entryNode}' is ${trouble.get(entryNode)!.why}`);
  }
  if (eligible.length === 0) throw new Blocked('NoNodes', `no Ready node matches spec.nodeSelector (${nodes.length} node(s) seen)`);
  const cpuOf = new Map<string, number>();
  const hostOf = new Map<string, string>();
  const clusterNodes = eligible.map((n) => {
    const name = n.metadata.name;
    const memBytes = parseQuantity(get(n, 'status', 'allocatable', 'memory') ?? '0', `node ${name} allocatable memory`) - (used.get(name) ?? 0);
    const cpu = Math.min(stageCpu, parseQuantity(get(n, 'status', 'allocatable', 'cpu') ?? '0', `node ${name} allocatable cpu`));
    cpuOf.set(name, Math.max(cpu, 0.01));
    hostOf.set(name, n.metadata.labels?.['kubernetes.io/hostname'] ?? name);
    return { name, memoryMB: Math.max(Math.floor(memBytes / MiB), 1), speed: Math.max(cpu, 0.01) / refCpus };
  });
  if (entryNode !== null && !clusterNodes.some((n) => n.name === entryNode)) clusterNodes.push({ name: entryNode, memoryMB: 1, speed: 1 });
  const { links, statusLinks } = nodeLinks(spec, objects, ns, clusterNodes.map((n) => n.name));
  const cluster: Cluster = validateCluster({
    schema: 'kerf.cluster/v1', nodes: clusterNodes, links,
    ...(entryNode !== null ? { entry: entryNode } : {}),
    memory: { margin: spec.memory?.margin ?? DEFAULT_MARGIN, overheadMB: spec.memory?.overheadMB ?? DEFAULT_OVERHEAD_MB },
  }, `KerfPipeline ${p.metadata.name}`);
  // the entry node runs the gateway; it takes stages only when it is eligible itself
  const entryTakesStages = entryNode === null || eligible.some((n) => n.metadata.name === entryNode);
  let placement: Placement;
  try {
    const opts = { ...(spec.maxStages ? { maxStages: spec.maxStages } : {}), solver: 'auto' as const, maxWork: 2e7 };
    if (spec.objective === 'latency') {
      let best: Placement | null = null;
      let lastErr: unknown = null;
      for (let k = 1; k <= Math.min(spec.maxStages ?? clusterNodes.length, clusterNodes.length); k++) {
        try {
          const pl = place(model, cluster, { ...opts, maxStages: k });
          if (!best || pl.latency < best.latency) best = pl;
        } catch (e) { lastErr = e; }
      }
      if (!best) throw lastErr;
      placement = best;
    } else placement = place(model, cluster, opts);
  } catch (e) {
    if (isKerfError(e)) throw new Blocked('Unplaceable', e.message);
    throw e;
  }
  if (!entryTakesStages && placement.stages.some((s) => s.node === entryNode)) {
    throw new Blocked('Unplaceable', `the entry node '${entryNode}' is not selected by spec.nodeSelector but the only placement uses it`);
  }
  const cuts = placement.stages.slice(0, -1).map((s) => s.cutOut!);
  const margin = placement.memoryModel.margin;
  const weights = model.blocks.reduce((a, b) => a + b.paramBytes, 0);
  // the gateway prepares the whole model to serve its metadata and cut it: weights + input, held twice
  const gatewayMiB = Math.ceil((margin * (weights + 2 * model.inputBytes) + placement.memoryModel.overheadBytes) / MiB);
  const stages = placement.stages.map((s) => {
    const cpu = cpuOf.get(s.node) ?? 1;
    return {
      index: s.index, node: s.node, hostname: hostOf.get(s.node) ?? s.node, blocks: `${s.blocks.first}..${s.blocks.last}`,
      memoryMiB: Math.ceil(s.memoryBytes / MiB), cpuMilli: Math.max(10, Math.round(cpu * 1000)),
      threads: spec.defaults?.threads ?? Math.max(1, Math.floor(cpu)), computeSeconds: s.computeSeconds,
    };
  });
  const gatewayNode = entryNode !== null ? hostOf.get(entryNode) ?? nodes.find((n) => n.metadata.name === entryNode)?.metadata.labels?.['kubernetes.io/hostname'] ?? entryNode : null;
  const m = { uri: spec.model.uri, sha256: spec.model.sha256, version: spec.model.version };
  const id = createHash('sha256').update(JSON.stringify({ m: m.sha256, u: m.uri, cuts, stages: stages.map((s) => [s.node, s.blocks, s.memoryMiB, s.cpuMilli, s.threads]), g: [gatewayNode, gatewayMiB] })).digest('hex').slice(0, 8);
  return {
    state: {
      id, model: m, cuts, stages, gateway: { memoryMiB: gatewayMiB, node: gatewayNode },
      predictedThroughput: placement.throughput, predictedLatencySeconds: placement.latency,
      bottleneck: `${placement.bottleneck.kind} ${placement.bottleneck.where}`,
      reason, startedAt: now, specGeneration: p.metadata.generation ?? 0,
    },
    links: statusLinks,
  };
}

/** Ready Deployments of a placement (and of its version's gateway when `withGateway`), and the
 * first failure of their pods (null: none). */
function progress(objects: readonly K8sObject[], st: PlacementState, withGateway: boolean): { ready: number; total: number; failure: string | null } {
  const vid = modelId(st.model);
  const mine = (o: K8sObject): boolean => o.metadata.labels?.[LABEL_PLACEMENT] === st.id ||
    (withGateway && o.metadata.labels?.[LABEL_COMPONENT] === 'gateway' && o.metadata.labels?.[LABEL_MODEL] === vid);
  const deps = objects.filter((o) => o.kind === 'Deployment' && mine(o));
  const total = st.stages.length + (withGateway ? 1 : 0);
  let ready = 0;
  for (const d of deps) {
    const gen = d.metadata.generation;
    const og = get(d, 'status', 'observedGeneration') as number | undefined;
    if (((get(d, 'status', 'readyReplicas') as number | undefined) ?? 0) >= 1 && (gen === undefined || og === undefined || og >= gen)) ready++;
  }
  const BAD = new Set(['CrashLoopBackOff', 'ImagePullBackOff', 'ErrImagePull', 'CreateContainerConfigError', 'CreateContainerError', 'InvalidImageName', 'RunContainerError']);
  let failure: string | null = null;
  for (const pod of objects) {
    if (failure || pod.kind !== 'Pod' || !mine(pod)) continue;
    const statuses = [
      ...((get(pod, 'status', 'initContainerStatuses') as Obj[] | undefined) ?? []).map((s) => ['init container', s] as const),
      ...((get(pod, 'status', 'containerStatuses') as Obj[] | undefined) ?? []).map((s) => ['container', s] as const),
    ];
    for (const [what, s] of statuses) {
      const term = (get(s, 'state', 'terminated') ?? get(s, 'lastState', 'terminated')) as Obj | undefined;
      const waiting = get(s, 'state', 'waiting') as Obj | undefined;
      const failedRun = term && term.exitCode !== 0 && term.exitCode !== undefined;
      if (failedRun || (waiting && BAD.has(String(waiting.reason)))) {
        const msg = String((term?.message as string | undefined) ?? (waiting?.message as string | undefined) ?? term?.reason ?? waiting?.reason ?? 'failed').trim().split('\n').slice(-3).join(' ');
        failure = `${what} ${String(s.name)} of pod ${pod.metadata.name}: ${msg}${waiting?.reason ? ` (${String(waiting.reason)})` : ''}`;
        break;
      }
    }
    if (!failure && get(pod, 'status', 'phase') === 'Failed') failure = `pod ${pod.metadata.name} failed: ${String(get(pod, 'status', 'message') ?? get(pod, 'status', 'reason') ?? '')}`;
  }
  return { ready, total, failure };
}

function condition(prev: readonly Condition[] | undefined, c: Omit<Condition, 'lastTransitionTime'>, now: string): Condition {
  const old = prev?.find((x) => x.type === c.type);
  return { ...c, lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now };
}

const sameModel = (a: PlacementState['model'], s: KerfPipelineSpec['model']): boolean => a.sha256 === s.sha256 && a.uri === s.uri && a.version === s.version;

/** Reconcile one KerfPipeline. */
export function reconcile(input: ReconcileInput): ReconcileResult {
  const { pipeline: p, now } = input;
  const ns = p.metadata.namespace ?? 'default';
  const name = p.metadata.name;
  const ownedAll = input.objects.filter((o) => o.kind !== 'Pod' && o.kind !== 'ConfigMap' && o.metadata.labels?.[LABEL_PIPELINE] === name &&
    (o.metadata.namespace ?? ns) === ns && o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'kerf-operator');
  const ref = (o: K8sObject): ObjectRef => ({ apiVersion: o.apiVersion, kind: o.kind, namespace: ns, name: o.metadata.name });
  const events: ReconcileResult['events'] = [];
  const actions: GatewayAction[] = [];
  if (p.metadata.deletionTimestamp) {
    return { apply: [], delete: ownedAll.map(ref), status: null, actions: [], events: [{ type: 'Normal', reason: 'Deleting', message: `deleting ${ownedAll.length} object(s)` }], requeueAfterSeconds: null, parts: [] };
  }
  const prev = p.status ?? {};
  const generation = p.metadata.generation ?? 0;
  const status: KerfPipelineStatus = {
    observedGeneration: generation,
    activeVersion: prev.active?.model.version ?? null,
    active: prev.active ?? null,
    pending: prev.pending ?? null,
    previous: prev.previous ?? null,
    links: prev.links ?? [],
    lastFailover: prev.lastFailover ?? null,
    rollout: prev.rollout ?? null,
    failed: prev.failed ?? null,
  };
  let requeue: number | null = null;
  const soon = (s: number): void => { requeue = requeue === null ? s : Math.min(requeue, s); };

  let spec: KerfPipelineSpec | null = null;
  let invalid: string | null = null;
  try { spec = checkSpec(p.spec, `KerfPipeline ${ns}/${name}`); } catch (e) { invalid = (e as Error).message; }

  const agents = input.objects.filter((o) => o.kind === 'Pod' && o.metadata.labels?.[LABEL_COMPONENT] === 'agent');
  const trouble = new Map(input.nodes.map((n) => [n.metadata.name, nodeTrouble(n, agents)] as const));
  const lostOf = (st: PlacementState | null | undefined): { node: string; why: string } | null => {
    for (const s of st?.stages ?? []) {
      const t = trouble.get(s.node);
      if (t === undefined) return { node: s.node, why: 'Deleted' };
      if (t?.lost) return { node: s.node, why: t.why };
    }
    return null;
  };

  let placed: Omit<Condition, 'lastTransitionTime'> | null = null;
  let degraded: Omit<Condition, 'lastTransitionTime'> = { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'every stage is on a healthy node' };
  const tryPlace = (reason: PlacementState['reason']): Candidate | Blocked => {
    // beside what runs: the running placements' stages keep their memory until the switch
    // (a lost node's give theirs back); when the two do not fit, a rollout or failover is
    // staged — each new stage replaces the old ones on its node — and a replan is not taken
    const lostNodes = new Set([...trouble].filter(([, t]) => t?.lost).map(([n]) => n));
    const reserved = heldBy([status.active, status.previous?.state], lostNodes);
    try {
      return placeNow(p, spec!, input.nodes, input.objects, trouble, now, reason, reserved);
    } catch (e) {
      if (!(e instanceof Blocked)) throw e;
      if (reserved.size === 0 || e.reason !== 'Unplaceable' || reason === 'replan' || reason === 'initial') return e;
      try {
        const c = placeNow(p, spec!, input.nodes, input.objects, trouble, now, reason);
        c.state.staged = true;
        return c;
      } catch (e2) {
        if (e2 instanceof Blocked) return e2;
        throw e2;
      }
    }
  };
  const wantParts: PartSpec[] = [];
  /** Give each stage of `c` its part, built by the operator; false while they are being built or when they failed. */
  const withParts = (c: Candidate): boolean => {
    if (!input.parts || !servable(c.state.model.uri) || c.state.cuts.length === 0) return true;
    const specs = c.state.stages.map((s) => ({
      uri: c.state.model.uri, sha256: c.state.model.sha256, cuts: c.state.cuts, index: s.index,
      ...(spec!.model.inputShapes ? { inputShapes: spec!.model.inputShapes } : {}),
    }));
    const failed = specs.map((x) => input.parts!.failed.get(partKey(x))).find((f) => f);
    if (failed) {
      const message = `the parts of placement ${c.state.id} could not be built: ${failed.message}`;
      events.push({ type: 'Warning', reason: 'PartsFailed', message });
      if (failed.permanent && c.state.reason !== 'failover') {
        status.failed = { sha256: c.state.model.sha256, specGeneration: generation, message };
        if (status.active) {
          status.rollout = { from: status.active.model.version, to: c.state.model.version, phase: 'Failed', message: `version ${status.active.model.version} keeps serving; ${message}`, at: now };
        }
      } else {
        placed = { type: 'Placed', status: 'False', reason: 'PartsFailed', message };
        soon(RETRY_S);
      }
      return false;
    }
    const missing = specs.filter((x) => !input.parts!.refs.has(partKey(x)));
    if (missing.length) {
      wantParts.push(...missing);
      placed = { type: 'Placed', status: status.active ? 'True' : 'False', reason: 'BuildingParts', message: `building the parts of placement ${c.state.id} (${missing.length} of ${specs.length} to go)` };
      soon(2);
      return false;
    }
    c.state.stages = c.state.stages.map((s, i) => ({ ...s, part: input.parts!.refs.get(partKey(specs[i]!))! }));
    return true;
  };
  const startPending = (c: Candidate): void => {
    if (!withParts(c)) return;
    status.pending = c.state;
    status.links = c.links;
    events.push({ type: 'Normal', reason: 'Placing', message: `${c.state.reason}: placement ${c.state.id}, ${c.state.stages.length} stage(s) on ${c.state.stages.map((s) => s.node).join(', ')}, predicted ${c.state.predictedThroughput.toFixed(2)} req/s` });
    if (c.state.reason === 'rollout' || c.state.reason === 'replan') {
      status.rollout = { from: status.active?.model.version ?? null, to: c.state.model.version, phase: 'Progressing', message: `bringing up placement ${c.state.id}`, at: now };
    }
  };

  if (spec) {
    const active = status.active;
    const lost = lostOf(active);
    if (lost) {
      degraded = { type: 'Degraded', status: 'True', reason: lost.why === 'AgentSilent' ? 'AgentSilent' : 'NodeLost', message: `node ${lost.node} is ${lost.why}; it ran stage(s) ${active!.stages.filter((s) => s.node === lost.node).map((s) => s.index).join(',')}` };
      const lf = status.lastFailover;
      if (!lf || lf.switchedAt !== undefined || lf.node !== lost.node) {
        const since = lostSince(input.nodes.find((n) => n.metadata.name === lost.node), lost.why);
        status.lastFailover = { node: lost.node, reason: lost.why, ...(since ? { lostAt: since } : {}), detectedAt: now };
        events.push({ type: 'Warning', reason: 'NodeLost', message: degraded.message });
      }
    }
    // a pending placement that lost a node, or whose model is no longer the spec's (except a failover's), is dropped
    const pl = status.pending;
    if (pl && (lostOf(pl) || (!sameModel(pl.model, spec.model) && pl.reason !== 'failover'))) {
      events.push({ type: 'Normal', reason: 'PendingDropped', message: `placement ${pl.id} dropped: ${lostOf(pl) ? `node ${lostOf(pl)!.node} is ${lostOf(pl)!.why}` : 'the spec changed'}` });
      status.pending = null;
    }
    if (lost && status.pending && status.pending.reason !== 'failover') status.pending = null;
    const modelChanged = !!active && !sameModel(active.model, spec.model);
    const failedHere = status.failed && status.failed.sha256 === spec.model.sha256 && status.failed.specGeneration === generation;

    if (!status.pending) {
      let reason: PlacementState['reason'] | null = null;
      if (!active) reason = failedHere ? null : 'initial';
      else if (lost) reason = 'failover';
      else if (modelChanged && !failedHere) reason = 'rollout';
      else if (!failedHere) reason = 'replan';
      if (reason) {
        const c = tryPlace(reason);
        if (c instanceof Blocked) {
          placed = { type: 'Placed', status: 'False', reason: c.reason, message: c.message };
          if (reason === 'rollout') {
            status.rollout = { from: active!.model.version, to: spec.model.version, phase: 'Failed', message: `no placement for version ${spec.model.version}: ${c.message}`, at: now };
            status.failed = { sha256: spec.model.sha256, specGeneration: generation, message: c.message };
            events.push({ type: 'Warning', reason: 'RolloutFailed', message: status.rollout.message });
          } else if (reason !== 'replan') {
            events.push({ type: 'Warning', reason: c.reason, message: c.message });
            soon(RETRY_S);
          } else if (active!.specGeneration === generation) {
            placed = null; // nothing better to move to: what runs stays, nothing to say
          } else {
            // the spec asked for a change that cannot be placed: what runs stays, and says why
            status.failed = { sha256: spec.model.sha256, specGeneration: generation, message: c.message };
            events.push({ type: 'Warning', reason: c.reason, message: c.message });
          }
        } else if (reason === 'replan') {
          const gain = spec.replan?.minGain ?? DEFAULT_MIN_GAIN;
          const specChanged = active!.specGeneration !== generation;
          if (c.state.id !== active!.id && (specChanged || c.state.predictedThroughput >= active!.predictedThroughput * (1 + gain))) startPending(c);
          else if (specChanged) status.active = { ...active!, specGeneration: generation };
        } else {
          if (reason === 'failover' && status.lastFailover) status.lastFailover = { ...status.lastFailover, placedAt: now };
          startPending(c);
        }
      }
    }

    // the pending placement: switch when ready, drop when it fails or times out
    const pend = status.pending;
    if (pend) {
      const newGateway = !status.active || modelId(status.active.model) !== modelId(pend.model);
      const pr = progress(input.objects, pend, newGateway);
      const timeout = spec.rollout?.timeoutSeconds ?? DEFAULT_TIMEOUT_S;
      const age = secondsBetween(pend.startedAt, now);
      const failure = pr.failure ?? (age > timeout ? `${pr.ready} of ${pr.total} Deployments ready after ${Math.round(age)} s (spec.rollout.timeoutSeconds ${timeout})` : null);
      if (failure) {
        events.push({ type: 'Warning', reason: 'RolloutFailed', message: `placement ${pend.id} (version ${pend.model.version}): ${failure}` });
        status.rollout = { from: status.active?.model.version ?? null, to: pend.model.version, phase: 'Failed', message: `${status.active ? `version ${status.active.model.version} keeps serving; ` : ''}${failure}`, at: now };
        status.failed = { sha256: pend.model.sha256, specGeneration: generation, message: failure };
        status.pending = null;
      } else if (pr.ready === pr.total) {
        const old = status.active;
        status.active = pend;
        status.pending = null;
        status.activeVersion = pend.model.version;
        if (old && old.id !== pend.id) status.previous = { id: old.id, state: old, retireAt: addSeconds(now, spec.rollout?.drainSeconds ?? DEFAULT_DRAIN_S) };
        if (!newGateway) {
          // same model: its gateway stays and moves onto the new chain, replaying what was in flight
          const lf = pend.reason === 'failover' ? status.lastFailover : null;
          actions.push({
            kind: 'retarget',
            service: { name: gatewayName({ pipeline: name } as RenderContext, modelId(pend.model)), namespace: ns, port: PORT_OIP },
            tokenSecret: `${name}-token`,
            body: {
              cuts: [], next: `${stageName({ pipeline: name } as RenderContext, pend.id, 0)}.${ns}.svc:${PORT_FRAMES}`, local: false,
              reason: lf ? `node ${lf.node} ${lf.reason}` : `${pend.reason}: placement ${pend.id}`, lost: lf ? [lf.node] : [],
              detectMs: lf?.lostAt ? Math.max(0, ms(lf.detectedAt) - ms(lf.lostAt)) : 0, replanMs: 0, deployMs: Math.max(0, ms(now) - ms(pend.startedAt)),
            },
          });
        }
        if (pend.reason === 'failover' && status.lastFailover) {
          const seconds = secondsBetween(status.lastFailover.detectedAt, now);
          status.lastFailover = { ...status.lastFailover, switchedAt: now, seconds };
          degraded = { type: 'Degraded', status: 'False', reason: 'Recovered', message: `re-placed off node ${status.lastFailover.node} in ${seconds.toFixed(1)} s` };
        }
        if (old && old.model.version !== pend.model.version || pend.reason === 'rollout' || pend.reason === 'replan') {
          status.rollout = { from: old?.model.version ?? null, to: pend.model.version, phase: 'Complete', message: `placement ${pend.id} serving${old ? `; ${old.id} drained then removed` : ''}`, at: now };
        }
        events.push({ type: 'Normal', reason: 'Switched', message: `entry now served by placement ${pend.id} (version ${pend.model.version})` });
      } else {
        soon(Math.max(1, Math.min(10, timeout - age)));
        if (status.rollout && status.rollout.phase === 'Progressing') status.rollout = { ...status.rollout, message: `placement ${pend.id}: ${pr.ready} of ${pr.total} Deployments ready` };
      }
    }
  }

  // the links as known now (measured ones change without a re-placement), between the nodes that may take stages
  if (spec) {
    const names = input.nodes.filter((n) => trouble.get(n.metadata.name) === null && selectorMatches(spec!.nodeSelector, n.metadata.labels ?? {})).map((n) => n.metadata.name);
    if (spec.entry?.node && !names.includes(spec.entry.node)) names.push(spec.entry.node);
    try { status.links = nodeLinks(spec, input.objects, ns, names).statusLinks; } catch (e) { if (!(e instanceof Blocked)) throw e; }
  }

  // the previous placement: kept until its drain ends
  if (status.previous && ms(now) >= ms(status.previous.retireAt)) status.previous = null;
  if (status.previous) soon(Math.max(1, secondsBetween(now, status.previous.retireAt)));

  // a staged placement: old stages stop where the new ones need their memory; new ones come up as it frees
  const oldStates = [status.active, status.previous?.state].filter((x): x is PlacementState => !!x);
  const room = status.pending?.staged ? stagedRoom(status.pending, oldStates, input.nodes, input.objects, name) : null;
  if (room && status.pending) {
    const stopping = oldStates.flatMap((st) => st.stages.filter((s) => room.evict.has(`${st.id}/${s.index}`)).map((s) => ({ st, s })))
      .filter(({ st, s }) => input.objects.some((o) => o.kind === 'Deployment' && o.metadata.name === stageName({ pipeline: name } as RenderContext, st.id, s.index)));
    if (stopping.length) {
      events.push({ type: 'Warning', reason: 'MakingRoom', message: `placement ${status.pending.id} does not fit beside what runs: stopping ${stopping.map(({ st, s }) => `version ${st.model.version} s${s.index} on ${s.node}`).join(', ')} to make room (stage by stage)` });
    }
    if (status.rollout?.phase === 'Progressing' || status.pending.reason === 'failover') {
      const msg = `staged (the two placements do not fit side by side): ${room.admit.size} of ${status.pending.stages.length} stage(s) created${room.waiting.length ? `; ${room.waiting.join('; ')}` : ''}`;
      if (status.rollout?.phase === 'Progressing') status.rollout = { ...status.rollout, message: msg };
    }
    if (room.waiting.length) soon(2);
  }

  // desired objects
  const desired: K8sObject[] = [];
  const serving = status.active ?? status.pending;
  if (spec || status.active) {
    const sp = spec ?? (p.spec as KerfPipelineSpec);
    const ctx: RenderContext = {
      pipeline: name, namespace: ns,
      owner: { apiVersion: API_VERSION, kind: KIND, name, uid: p.metadata.uid ?? '', controller: true, blockOwnerDeletion: true },
      image: sp.image ?? input.image, modelName: sp.model?.name ?? name,
      ...(sp.model?.inputShapes ? { inputShapes: sp.model.inputShapes } : {}),
      ...(sp.defaults?.queue ? { queue: sp.defaults.queue } : {}),
      ...(sp.defaults?.codec ? { codec: sp.defaults.codec } : {}), ...(sp.defaults?.switching ? { switching: sp.defaults.switching } : {}),
      entryService: { type: sp.entry?.service?.type ?? 'ClusterIP', port: sp.entry?.service?.port ?? 8000 },
      tokenSecret: `${name}-token`,
      ...(sp.failover?.holdSeconds ? { replayHoldMs: sp.failover.holdSeconds * 1000 } : {}),
      ...(input.parts ? { partsUrl: input.parts.url } : {}),
    };
    if (serving) {
      const existing = input.objects.find((o) => o.kind === 'Secret' && o.metadata.name === ctx.tokenSecret);
      if (!existing) desired.push(tokenSecret(ctx, input.newToken));
      const states = [status.active, status.pending, status.previous?.state].filter((x): x is PlacementState => !!x);
      for (const st of states) {
        for (const o of placementObjects(ctx, st)) {
          const stage = o.metadata.labels?.[LABEL_STAGE];
          if (room && o.kind === 'Deployment') {
            if (st === status.pending && !room.admit.has(Number(stage))) continue;
            if (st !== status.pending && room.evict.has(`${st.id}/${stage}`)) continue;
          }
          desired.push(o);
        }
      }
      // one gateway per model version, sending to the first stage of that version's serving placement
      for (const vid of new Set(states.map((st) => modelId(st.model)))) {
        const first = states.find((st) => modelId(st.model) === vid)!;
        desired.push(...gatewayObjects(ctx, first, first.id));
      }
      desired.push(entryService(ctx, modelId(serving.model)));
    }
  }
  const seen = new Map(ownedAll.map((o) => [keyOf(o), o]));
  const apply = desired.filter((d) => {
    const have = seen.get(keyOf(d));
    if (d.kind === 'Secret') return !have;
    return !have || !contains(have, d);
  });
  const want = new Set(desired.map(keyOf));
  for (const o of ownedAll) if (o.kind === 'Secret' && serving) want.add(keyOf(o));
  const del = ownedAll.filter((o) => !want.has(keyOf(o))).map(ref);

  // conditions
  const pc = prev.conditions;
  const act = status.active;
  const actProgress = act ? progress(input.objects, act, true) : null;
  if (!placed) {
    placed = invalid ? { type: 'Placed', status: 'False', reason: 'InvalidSpec', message: invalid }
      : status.failed && spec && status.failed.sha256 === spec.model.sha256 && status.failed.specGeneration === generation
        ? { type: 'Placed', status: 'False', reason: 'NotPlaced', message: `${status.active ? `placement ${status.active.id} keeps serving; ` : ''}the spec could not be brought up: ${status.failed.message}` }
      : act || status.pending ? { type: 'Placed', status: 'True', reason: 'Placed', message: describe(status.pending ?? act!) }
      : { type: 'Placed', status: 'False', reason: 'Pending', message: 'not placed yet' };
  }
  const ready: Omit<Condition, 'lastTransitionTime'> = act && actProgress && actProgress.ready === actProgress.total && !lostOf(act)
    ? { type: 'Ready', status: 'True', reason: 'Serving', message: `version ${act.model.version} on ${act.stages.length} stage(s), predicted ${act.predictedThroughput.toFixed(2)} req/s` }
    : act ? { type: 'Ready', status: 'False', reason: lostOf(act) ? 'NodeLost' : 'NotAllReady', message: lostOf(act) ? degraded.message : `${actProgress!.ready} of ${actProgress!.total} Deployments ready` }
    : { type: 'Ready', status: 'False', reason: placed.status === 'False' ? placed.reason : 'Starting', message: placed.status === 'False' ? placed.message : `bringing up placement ${status.pending?.id ?? ''}`.trim() };
  const rolling: Omit<Condition, 'lastTransitionTime'> = status.pending && status.pending.reason !== 'initial'
    ? { type: 'RolloutInProgress', status: 'True', reason: status.pending.reason === 'failover' ? 'Failover' : status.pending.reason === 'replan' ? 'Replan' : 'Rolling', message: status.rollout?.phase === 'Progressing' ? status.rollout.message : `bringing up placement ${status.pending.id}` }
    : status.rollout?.phase === 'Failed' ? { type: 'RolloutInProgress', status: 'False', reason: 'RolloutFailed', message: status.rollout.message }
    : status.rollout?.phase === 'Complete' ? { type: 'RolloutInProgress', status: 'False', reason: 'RolloutComplete', message: status.rollout.message }
    : { type: 'RolloutInProgress', status: 'False', reason: 'NoRollout', message: 'nothing to roll out' };
  status.conditions = [ready, placed, degraded, rolling].map((c) => condition(pc, { ...c, observedGeneration: generation }, now));
  status.activeVersion = status.active?.model.version ?? null;
  return { apply, delete: del, status, actions, events, requeueAfterSeconds: requeue, parts: wantParts };
}

function describe(st: PlacementState): string {
  return `placement ${st.id}: ${st.stages.map((s) => `s${s.index} blocks ${s.blocks} on ${s.node}`).join(', ')}; predicted ${st.predictedThroughput.toFixed(2)} req/s (bottleneck ${st.bottleneck})`;
}

/** Owned objects whose KerfPipeline no longer exists (the garbage collector removes them too;
 * the operator does it at once). */
export function orphans(objects: readonly K8sObject[], pipelines: readonly KerfPipeline[]): ObjectRef[] {
  const uids = new Set(pipelines.map((p) => p.metadata.uid));
  return objects.filter((o) => o.kind !== 'Pod' && o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'kerf-operator' &&
    (o.metadata.ownerReferences ?? []).some((r) => r.kind === KIND && r.apiVersion === API_VERSION) &&
    !(o.metadata.ownerReferences ?? []).some((r) => r.kind === KIND && uids.has(r.uid)))
    .map((o) => ({ apiVersion: o.apiVersion, kind: o.kind, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}), name: o.metadata.name }));
}

/** Reconcile everything in a Kubernetes List (`kubectl get kerfpipelines,nodes,deployments,… -o json`). */
export function reconcileList(list: unknown, opts: { now: string; image: string; newToken: string }): { pipelines: { namespace: string; name: string; result: ReconcileResult }[]; orphans: ObjectRef[] } {
  const items = get(list, 'items');
  if (get(list, 'kind') !== 'List' && !String(get(list, 'kind') ?? '').endsWith('List')) throw new Error('expected a Kubernetes List (kind: List, items: [...])');
  if (!Array.isArray(items)) throw new Error('the List has no items');
  const objs = items as K8sObject[];
  for (const [i, o] of objs.entries()) {
    if (typeof o?.kind !== 'string' || typeof o?.metadata?.name !== 'string') throw new Error(`items[${i}]: expected a Kubernetes object with kind and metadata.name`);
  }
  const pipelines = objs.filter((o): o is KerfPipeline => o.kind === KIND);
  const nodes = objs.filter((o) => o.kind === 'Node');
  const out = pipelines.map((p) => {
    const ns = p.metadata.namespace ?? 'default';
    const objects = objs.filter((o) => o.kind !== 'Node' && o.kind !== KIND && (o.metadata.namespace ?? 'default') === ns);
    return { namespace: ns, name: p.metadata.name, result: reconcile({ pipeline: p, nodes, objects, ...opts }) };
  });
  return { pipelines: out, orphans: orphans(objs.filter((o) => o.kind !== 'Node' && o.kind !== KIND), pipelines) };
}
