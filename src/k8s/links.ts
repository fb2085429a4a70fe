/**
 * The links between nodes, measured by the agents of the DaemonSet (`kerf agent` on every
 * node) exactly as `kerf measure --hosts` has them measured (src/cluster/measure.ts
 * `measureLinks`: every pair both ways, pairs sharing no node at once). The operator (its
 * leader) drives them at start, when the set of nodes with a ready agent changes, and every
 * `everyS`; it writes the result into the ConfigMap MEASURED_LINKS, which the reconcile core
 * places with (a pipeline's `spec.network.linksConfigMapRef` overrides it pair by pair).
 * The decisions here are pure; the shell does the requests.
 */
import { agentRequest } from '../cluster/client.js';
import type { LinkProber, MeasuredLink } from '../cluster/measure.js';
import { LABEL_COMPONENT } from './objects.js';
import { MEASURED_LINKS } from './reconcile.js';
import type { K8sObject } from './types.js';

export const LINKS_SCHEMA = 'kerf.links/v1' as const;

export interface LinksDoc {
  schema: typeof LINKS_SCHEMA;
  /** when the measurement ended (RFC 3339) */
  measuredAt: string;
  /** the nodes measured between */
  nodes: string[];
  seconds: number;
  links: MeasuredLink[];
}

export interface AgentTarget { node: string; address: string }

type Obj = Record<string, unknown>;
const get = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((x, k) => (x && typeof x === 'object' ? (x as Obj)[k] : undefined), o);

/** The agents that can measure now: ready agent pods with a node and an IP, one per node. */
export function agentTargets(pods: readonly K8sObject[], port: number): AgentTarget[] {
  const out = new Map<string, AgentTarget>();
  for (const p of pods) {
    if (p.kind !== 'Pod' || p.metadata.labels?.[LABEL_COMPONENT] !== 'agent' || p.metadata.deletionTimestamp) continue;
    const node = get(p, 'spec', 'nodeName'), ip = get(p, 'status', 'podIP');
    const ready = ((get(p, 'status', 'conditions') as { type: string; status: string }[] | undefined) ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    if (typeof node !== 'string' || typeof ip !== 'string' || !ready) continue;
    out.set(node, { node, address: `${ip.includes(':') ? `[${ip}]` : ip}:${port}` });
  }
  return [...out.values()].sort((a, b) => (a.node < b.node ? -1 : 1));
}

/** The last measurement, from its ConfigMap (null: none, or not readable). */
export function lastMeasurement(objects: readonly K8sObject[], ns: string): LinksDoc | null {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === MEASURED_LINKS && (o.metadata.namespace ?? ns) === ns);
  const text = get(cm, 'data', 'links.json');
  if (typeof text !== 'string') return null;
  try {
    const d = JSON.parse(text) as LinksDoc;
    return d.schema === LINKS_SCHEMA && Array.isArray(d.nodes) && !Number.isNaN(Date.parse(d.measuredAt)) ? d : null;
  } catch { return null; }
}

/** Why to measure now (null: not due). */
export function measureDue(last: LinksDoc | null, targets: readonly AgentTarget[], now: string, everyS: number): string | null {
  if (targets.length < 2) return null;
  if (!last) return 'no measurement yet';
  const have = new Set(last.nodes);
  const added = targets.filter((t) => !have.has(t.node)).map((t) => t.node);
  if (added.length) return `agents on ${added.join(', ')} not measured yet`;
  if ((Date.parse(now) - Date.parse(last.measuredAt)) / 1000 >= everyS) return `the last measurement is older than ${everyS} s`;
  return null;
}

/** The ConfigMap of a measurement. */
export function linksConfigMap(ns: string, doc: LinksDoc): K8sObject {
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: MEASURED_LINKS, namespace: ns,
      labels: { 'app.kubernetes.io/name': 'kerf', 'app.kubernetes.io/managed-by': 'kerf-operator', [LABEL_COMPONENT]: 'links' },
    },
    data: { 'links.json': JSON.stringify(doc, null, 1) },
  };
}

/** The agents as measureLinks sees them: requests signed with the agents' token. */
export function agentProber(targets: readonly AgentTarget[], token: string): LinkProber {
  const byNode = new Map(targets.map((t) => [t.node, t]));
  const of = (node: string): AgentTarget => {
    const t = byNode.get(node);
    if (!t) throw new Error(`no agent on node ${node}`);
    return t;
  };
  return {
    hosts: () => targets.map((t) => t.node),
    agentOf: (node) => of(node).address,
    request: async <T>(node: string, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<T> =>
      (await agentRequest<T>(`http://${of(node).address}`, token, method, path, { label: `agent on node ${node}`, timeoutMs, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })).json,
  };
}
