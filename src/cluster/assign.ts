/**
 * Which host runs each tier of a plan or a placement (`kerf up … --hosts`): the gateway on the
 * hosts file's entry; a placement's stage on the host of its node's name; a plan's tier on the
 * host named as its system, else as the tier (device, edge, cloud). Errors name the tier and
 * list the hosts.
 */
import { kerfError } from '../errors.js';
import type { PlanDocument } from '../plan/types.js';
import type { Placement } from '../plan/place/types.js';
import type { HostsFile } from './hosts.js';

/** Host per tier, gateway first, for a placement (tiers as `placementToUp` makes them). */
export function placementHosts(p: Placement, hosts: HostsFile, source = 'placement'): string[] {
  const names = new Set(hosts.hosts.map((h) => h.name));
  if (p.entry !== null && p.entry !== hosts.entry) {
    throw kerfError('KERF_ERR_CONFIG', `${source}: placed with entry '${p.entry}' but the hosts file's entry is '${hosts.entry}'; place on the cluster kerf measure wrote for these hosts`);
  }
  const local = p.entry !== null && p.stages[0]!.node === p.entry;
  const out = local ? [] : [hosts.entry];
  for (const s of p.stages) {
    if (!names.has(s.node)) throw kerfError('KERF_ERR_CONFIG', `${source}: stage ${s.index} is on node '${s.node}', which is not in the hosts file (hosts: ${[...names].join(', ')})`);
    out.push(s.node);
  }
  return out;
}

/** Host per tier, gateway first, for a plan (tiers as `planToUp` makes them). */
export function planHosts(plan: PlanDocument, hosts: HostsFile, source = 'plan'): string[] {
  const names = new Set(hosts.hosts.map((h) => h.name));
  const local = plan.tiers[0]?.blocks !== null;
  const used = plan.tiers.filter((t) => t.blocks !== null);
  const out: string[] = local ? [] : [hosts.entry];
  used.forEach((t, i) => {
    if (i === 0 && local) { out.push(hosts.entry); return; }
    const h = t.system && names.has(t.system) ? t.system : names.has(t.tier) ? t.tier : null;
    if (h === null) {
      throw kerfError('KERF_ERR_CONFIG', `${source}: tier '${t.tier}'${t.system ? ` (system '${t.system}')` : ''} names no host of the hosts file (hosts: ${[...names].join(', ')}); name a host as the tier or its system`);
    }
    out.push(h);
  });
  return out;
}

/** Host per tier for `--cuts` (tiers device, edge, cloud, tier3…): the gateway on the entry, each further tier on the host of its name. */
export function namedHosts(tiers: readonly string[], hosts: HostsFile): string[] {
  const names = new Set(hosts.hosts.map((h) => h.name));
  return tiers.map((t, i) => {
    if (i === 0) return hosts.entry;
    if (!names.has(t)) throw kerfError('KERF_ERR_CONFIG', `tier '${t}' names no host of the hosts file (hosts: ${[...names].join(', ')}); name hosts device, edge, cloud… or deploy a plan or placement`);
    return t;
  });
}
