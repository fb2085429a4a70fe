/**
 * Leader election on a coordination.k8s.io/v1 Lease, the decision part: pure (the lease as
 * read and the time in, what to write out). The operator writes with the lease's
 * resourceVersion, so of two replicas racing for an expired lease only one wins (409 for the other).
 */

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export type LeaseStep =
  | { action: 'create' | 'update'; spec: LeaseSpec; leader: true }
  | { action: 'none'; leader: false; holder: string };

/** What replica `identity` does with the lease at `now` (RFC 3339). */
export function leaseStep(lease: LeaseSpec | null, identity: string, now: string, durationS: number): LeaseStep {
  if (!lease) return { action: 'create', leader: true, spec: { holderIdentity: identity, leaseDurationSeconds: durationS, acquireTime: now, renewTime: now, leaseTransitions: 0 } };
  const holder = lease.holderIdentity ?? '';
  if (holder === identity) return { action: 'update', leader: true, spec: { ...lease, leaseDurationSeconds: durationS, renewTime: now } };
  const renewed = Date.parse(lease.renewTime ?? lease.acquireTime ?? '1970-01-01T00:00:00Z');
  const expired = holder === '' || !(renewed + (lease.leaseDurationSeconds ?? durationS) * 1000 > Date.parse(now));
  if (expired) {
    return { action: 'update', leader: true, spec: { holderIdentity: identity, leaseDurationSeconds: durationS, acquireTime: now, renewTime: now, leaseTransitions: (lease.leaseTransitions ?? 0) + 1 } };
  }
  return { action: 'none', leader: false, holder };
}
