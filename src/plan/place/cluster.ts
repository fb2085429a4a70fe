import { kerfError } from '../../errors.js';
import type { Cluster, ClusterLink, ClusterNode } from './types.js';

export const CLUSTER_SCHEMA = 'kerf.cluster/v1' as const;

function fail(where: string, msg: string): never {
  throw kerfError('KERF_ERR_PLACE', `${where}: ${msg}`);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function posNum(v: unknown, where: string, field: string, optional: boolean, allowZero = false): number | undefined {
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    fail(where, `field '${field}' must be a ${allowZero ? 'non-negative' : 'positive'} number (got ${JSON.stringify(v)})`);
  }
  return v;
}

/**
 * Validate a parsed cluster document (from YAML or JSON) and return a frozen copy.
 * `source` names the file in messages. Throws KERF_ERR_PLACE on the first bad field.
 */
export function validateCluster(doc: unknown, source = 'cluster'): Cluster {
  if (!isObj(doc)) fail(source, 'expected a mapping with schema, nodes and links');
  if (doc.schema !== CLUSTER_SCHEMA) fail(source, `field 'schema' must be '${CLUSTER_SCHEMA}' (got ${JSON.stringify(doc.schema)})`);
  if (!Array.isArray(doc.nodes) || doc.nodes.length === 0) fail(source, "field 'nodes' must be a non-empty list");
  const names = new Set<string>();
  const nodes: ClusterNode[] = doc.nodes.map((n: unknown, i: number) => {
    const where = `${source}: nodes[${i}]`;
    if (!isObj(n)) fail(where, 'expected a mapping with name and memoryMB');
    if (typeof n.name !== 'string' || n.name.length === 0) fail(where, "field 'name' must be a non-empty string");
    if (names.has(n.name)) fail(where, `duplicate node name '${n.name}'`);
    names.add(n.name);
    const w = `${source}: node '${n.name}'`;
    const node: ClusterNode = { name: n.name, memoryMB: posNum(n.memoryMB, w, 'memoryMB', false)! };
    const speed = posNum(n.speed, w, 'speed', true);
    if (speed !== undefined) node.speed = speed;
    const wire = posNum(n.wireCpuMsPerMB, w, 'wireCpuMsPerMB', true, true);
    if (wire !== undefined) node.wireCpuMsPerMB = wire;
    const fixed = posNum(n.fixedMs, w, 'fixedMs', true, true);
    if (fixed !== undefined) node.fixedMs = fixed;
    if (n.system !== undefined) {
      if (typeof n.system !== 'string' || n.system.length === 0) fail(w, "field 'system' must be a system name");
      node.system = n.system;
    }
    if (n.labels !== undefined) {
      if (!isObj(n.labels)) fail(w, "field 'labels' must be a mapping of strings");
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(n.labels)) labels[k] = String(v);
      node.labels = labels;
    }
    for (const k of Object.keys(n)) {
      if (!['name', 'memoryMB', 'speed', 'system', 'labels', 'wireCpuMsPerMB', 'fixedMs'].includes(k)) fail(w, `unknown field '${k}'`);
    }
    return Object.freeze(node);
  });
  const linksRaw = doc.links ?? [];
  if (!Array.isArray(linksRaw)) fail(source, "field 'links' must be a list");
  const seen = new Set<string>();
  const links: ClusterLink[] = linksRaw.map((l: unknown, i: number) => {
    const where = `${source}: links[${i}]`;
    if (!isObj(l)) fail(where, 'expected a mapping with from, to and bandwidthMbps');
    for (const f of ['from', 'to'] as const) {
      if (typeof l[f] !== 'string' || !names.has(l[f] as string)) fail(where, `field '${f}' names no node (got ${JSON.stringify(l[f])})`);
    }
    const from = l.from as string;
    const to = l.to as string;
    if (from === to) fail(where, `link from '${from}' to itself`);
    const key = `${from}\u0000${to}`;
    if (seen.has(key)) fail(where, `duplicate link ${from} -> ${to}`);
    seen.add(key);
    const link: ClusterLink = { from, to, bandwidthMbps: posNum(l.bandwidthMbps, where, 'bandwidthMbps', false)! };
    const rtt = posNum(l.rttMs, where, 'rttMs', true, true);
    if (rtt !== undefined) link.rttMs = rtt;
    const ovh = posNum(l.overheadMs, where, 'overheadMs', true, true);
    if (ovh !== undefined) link.overheadMs = ovh;
    for (const k of Object.keys(l)) {
      if (!['from', 'to', 'bandwidthMbps', 'rttMs', 'overheadMs'].includes(k)) fail(where, `unknown field '${k}'`);
    }
    return Object.freeze(link);
  });
  const out: Cluster = { schema: CLUSTER_SCHEMA, nodes: Object.freeze(nodes) as ClusterNode[], links: Object.freeze(links) as ClusterLink[] };
  if (doc.entry !== undefined) {
    if (typeof doc.entry !== 'string' || !names.has(doc.entry)) fail(source, `field 'entry' names no node (got ${JSON.stringify(doc.entry)})`);
    out.entry = doc.entry;
  }
  const mo = posNum(doc.messageOverheadMs, source, 'messageOverheadMs', true, true);
  if (mo !== undefined) out.messageOverheadMs = mo;
  const wc = posNum(doc.wireCpuMsPerMB, source, 'wireCpuMsPerMB', true, true);
  if (wc !== undefined) out.wireCpuMsPerMB = wc;
  if (doc.memory !== undefined) {
    if (!isObj(doc.memory)) fail(source, "field 'memory' must be a mapping (margin, overheadMB)");
    const margin = posNum(doc.memory.margin, `${source}: memory`, 'margin', true);
    if (margin !== undefined && margin < 1) fail(`${source}: memory`, `field 'margin' must be at least 1 (got ${margin})`);
    const overheadMB = posNum(doc.memory.overheadMB, `${source}: memory`, 'overheadMB', true, true);
    out.memory = Object.freeze({ ...(margin !== undefined ? { margin } : {}), ...(overheadMB !== undefined ? { overheadMB } : {}) });
  }
  for (const k of Object.keys(doc)) {
    if (!['schema', 'nodes', 'links', 'entry', 'messageOverheadMs', 'wireCpuMsPerMB', 'memory'].includes(k)) fail(source, `unknown field '${k}'`);
  }
  return Object.freeze(out);
}
