/**
 * Offline validation of what kerf writes for Kubernetes: the official schemas (the pinned
 * `kubernetes-models` validators, generated from the Kubernetes OpenAPI; the ServiceMonitor's from
 * the Prometheus Operator's CRD), plus what they do not
 * check: unknown fields, probes, memory requests and limits, non-root, RBAC without wildcards.
 */
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Service } from 'kubernetes-models/v1/Service';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { Event } from 'kubernetes-models/events.k8s.io/v1/Event';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { K8sObject } from '../../src/k8s/types.js';

type Model = { validate(): void };
const MODELS: Record<string, new (o: never) => Model> = {
  'apps/v1/Deployment': Deployment, 'apps/v1/DaemonSet': DaemonSet, 'v1/Service': Service, 'v1/Secret': Secret,
  'v1/Namespace': Namespace, 'v1/ServiceAccount': ServiceAccount,
  'rbac.authorization.k8s.io/v1/Role': Role, 'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole, 'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition, 'events.k8s.io/v1/Event': Event,
  // generated from the Prometheus Operator's CRD schema (@kubernetes-models/prometheus-operator, pinned)
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

function schemaError(o: unknown): string | null {
  const k = o as K8sObject;
  const M = MODELS[`${k.apiVersion}/${k.kind}`];
  if (!M) return `no schema for ${k.apiVersion} ${k.kind}`;
  try {
    new M(JSON.parse(JSON.stringify(o)) as never).validate();
    return null;
  } catch (e) { return (e as Error).message; }
}

/** A value of a type the field does not have: a schema that knows the field refuses it. */
function wrongValue(v: unknown): unknown {
  if (typeof v === 'boolean') return 12345;
  if (v !== null && typeof v === 'object') return 12345;
  return true;
}

/**
 * Fields the official schema does not know. The generated validators ignore unknown fields, so
 * each field is replaced in turn by a value of the wrong type: a known field makes validation
 * fail, an unknown one does not.
 */
function unknownFields(o: K8sObject): string[] {
  const out: string[] = [];
  const root = JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
  const walk = (parent: Record<string, unknown> | unknown[], path: string): void => {
    for (const key of Object.keys(parent)) {
      const p = `${path}${Array.isArray(parent) ? `[${key}]` : `.${key}`}`;
      if (p === '.apiVersion' || p === '.kind') continue;
      const rec = parent as Record<string, unknown>;
      const v = rec[key];
      if (!Array.isArray(parent)) {
        rec[key] = wrongValue(v);
        const known = schemaError(root) !== null;
        rec[key] = v;
        if (!known) { out.push(p); continue; }
      }
      // free-form JSON schema of the CRD: its own structural check is the API server's
      if (p.endsWith('.openAPIV3Schema')) continue;
      if (v !== null && typeof v === 'object') walk(v as Record<string, unknown>, p);
    }
  };
  walk(root, '');
  return out;
}

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

type Container = { name: string; readinessProbe?: unknown; livenessProbe?: unknown; resources?: { requests?: Record<string, string>; limits?: Record<string, string> }; securityContext?: { allowPrivilegeEscalation?: boolean; runAsNonRoot?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } } };

/** Every problem of one object; empty when it is fine. */
export function problems(o: K8sObject): string[] {
  const name = `${o.kind} ${o.metadata?.name}`;
  const out: string[] = [];
  const e = schemaError(o);
  if (e) out.push(`${name}: official schema: ${e}`);
  for (const f of unknownFields(o)) out.push(`${name}: unknown field ${f}`);
  const n = o.metadata.name;
  if (!(o.kind === 'Service' ? DNS1035 : DNS1123).test(n.replace(/\./g, o.kind === 'CustomResourceDefinition' || o.kind === 'Event' ? '-' : '.')) || n.length > 63) out.push(`${name}: name is not a valid ${o.kind === 'Service' ? 'DNS-1035' : 'DNS-1123'} label of ≤ 63 characters`);
  for (const [k, v] of Object.entries(o.metadata.labels ?? {})) if (v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) out.push(`${name}: label ${k}=${v} is not a valid label value`);
  if (o.kind === 'Deployment' || o.kind === 'DaemonSet') {
    const pod = (o as unknown as { spec: { template: { spec: { securityContext?: { runAsNonRoot?: boolean }; containers: Container[]; initContainers?: Container[] } } } }).spec.template.spec;
    if (pod.securityContext?.runAsNonRoot !== true) out.push(`${name}: pod is not runAsNonRoot`);
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      const init = pod.initContainers?.includes(c) ?? false;
      const w = `${name}: ${init ? 'init ' : ''}container ${c.name}`;
      if (!init && !c.readinessProbe) out.push(`${w} has no readiness probe`);
      if (!init && !c.livenessProbe) out.push(`${w} has no liveness probe`);
      if (!c.resources?.requests?.memory) out.push(`${w} has no memory request`);
      if (!c.resources?.limits?.memory) out.push(`${w} has no memory limit`);
      if (!c.resources?.requests?.cpu) out.push(`${w} has no CPU request`);
      const sc = c.securityContext;
      if (sc?.allowPrivilegeEscalation !== false) out.push(`${w} allows privilege escalation`);
      if (sc?.readOnlyRootFilesystem !== true) out.push(`${w} has a writable root filesystem`);
      if (!sc?.capabilities?.drop?.includes('ALL')) out.push(`${w} keeps capabilities`);
    }
  }
  if (o.kind === 'Role' || o.kind === 'ClusterRole') {
    for (const [i, r] of ((o as unknown as { rules: { apiGroups?: string[]; resources?: string[]; verbs: string[] }[] }).rules).entries()) {
      for (const f of ['apiGroups', 'resources', 'verbs'] as const) if ((r[f] ?? []).some((x) => x.includes('*'))) out.push(`${name}: rules[${i}].${f} has a wildcard`);
      if (o.kind === 'ClusterRole' && r.verbs.some((v) => !['get', 'list', 'watch'].includes(v))) out.push(`${name}: rules[${i}] writes cluster-wide (${r.verbs.join(',')})`);
    }
  }
  return out;
}
