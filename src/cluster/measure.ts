/**
 * `kerf measure --hosts`: the network between the hosts and each host's speed, measured by the
 * agents themselves. Every pair of agents measures its link — bandwidth both ways and RTT —
 * between themselves, not through this controller; pairs that share no host run at the same
 * time (rounds of a round-robin tournament), so a host's link is never shared by two
 * measurements. Each host also times the reference block (reference.ts) on its CPU share; its
 * speed is this machine's time (or a given profile system's) divided by its own.
 *
 * The result becomes a kerf.cluster/v1 file for `kerf place` and a network file for `kerf plan`.
 */
import type { Cluster } from '../plan/place/types.js';
import type { AgentSubstrate } from './agents.js';

/** Rounds of disjoint pairs covering every pair of `n` hosts once (the circle method). */
export function pairRounds(n: number): [number, number][][] {
  if (n < 2) return [];
  const ids = Array.from({ length: n % 2 ? n + 1 : n }, (_, i) => i);
  const m = ids.length;
  const rounds: [number, number][][] = [];
  for (let r = 0; r < m - 1; r++) {
    const round: [number, number][] = [];
    for (let i = 0; i < m / 2; i++) {
      const a = ids[i]!, b = ids[m - 1 - i]!;
      if (a < n && b < n) round.push(a < b ? [a, b] : [b, a]);
    }
    rounds.push(round);
    // keep ids[0] fixed, rotate the rest
    ids.splice(1, 0, ids.pop()!);
  }
  return rounds;
}

export interface MeasuredHost {
  name: string;
  memoryMB: number;
  cpus: number;
  /** reference block seconds per run on the host */
  secondsPerRun: number;
  /** relative to the reference (this machine, or the given profile system) */
  speed: number;
  /** whether the host's CPU share was held by a cgroup quota while timed */
  held: boolean;
}

export interface MeasuredLink { from: string; to: string; bandwidthMbps: number; rttMs: number }

export interface Measurement {
  /** reference block seconds per run that speed 1 stands for */
  referenceSecondsPerRun: number;
  reference: string;
  hosts: MeasuredHost[];
  /** one per direction */
  links: MeasuredLink[];
  seconds: number;
}

export interface MeasureOptions {
  /** seconds per direction per pair (default 1) */
  seconds?: number;
  /** seconds of reference block timing per host (default 1) */
  benchSeconds?: number;
  /** seconds per run of the reference block that speed 1 means (default: timed here now) */
  referenceSecondsPerRun?: number;
  /** what the reference is, for the record */
  reference?: string;
  log?: (line: string) => void;
}

/** What measuring links needs of a substrate: its hosts, a request through one, another's agent address. */
export type LinkProber = Pick<AgentSubstrate, 'hosts' | 'request' | 'agentOf'> & Partial<Pick<AgentSubstrate, 'peerTls'>>;

/**
 * Every pair's link, both ways, measured by the agents themselves (rounds of disjoint pairs).
 * `kerf measure --hosts` and the Kubernetes operator (its agents' DaemonSet) both use it.
 */
export async function measureLinks(sub: LinkProber, o: Pick<MeasureOptions, 'seconds' | 'log'> = {}): Promise<MeasuredLink[]> {
  const seconds = o.seconds ?? 1;
  const names = [...sub.hosts()];
  const log = o.log ?? (() => {});
  const links: MeasuredLink[] = [];
  for (const [r, round] of pairRounds(names.length).entries()) {
    log(`round ${r + 1}: ${round.map(([a, b]) => `${names[a]}↔${names[b]}`).join(', ')}`);
    await Promise.all(round.map(async ([a, b]) => {
      const from = names[a]!, to = names[b]!;
      const m = await sub.request<{ upMbps: number; downMbps: number; rttMs: number }>(from, 'POST', '/v1/host/measure', { peer: sub.agentOf(to), seconds, ...sub.peerTls?.() }, seconds * 4000 + 30_000);
      links.push({ from, to, bandwidthMbps: round3(m.upMbps), rttMs: round3(m.rttMs) }, { from: to, to: from, bandwidthMbps: round3(m.downMbps), rttMs: round3(m.rttMs) });
      log(`${from} → ${to} ${m.upMbps.toFixed(1)} Mbit/s, ${to} → ${from} ${m.downMbps.toFixed(1)} Mbit/s, RTT ${m.rttMs.toFixed(2)} ms`);
    }));
  }
  links.sort((x, y) => names.indexOf(x.from) - names.indexOf(y.from) || names.indexOf(x.to) - names.indexOf(y.to));
  return links;
}

export async function measureHosts(sub: AgentSubstrate, o: MeasureOptions = {}): Promise<Measurement> {
  const t0 = performance.now();
  const names = [...sub.hosts()];
  const log = o.log ?? (() => {});
  const links = await measureLinks(sub, o);
  // Speed: hosts one at a time (they may share this machine's CPU, as namespaces do).
  let ref = o.referenceSecondsPerRun;
  if (ref === undefined) {
    // timed in a child process, exactly as the agents time it
    const { referenceInChild } = await import('./reference.js');
    ref = (await referenceInChild(o.benchSeconds ?? 1)).secondsPerRun;
  }
  const hosts: MeasuredHost[] = [];
  for (const name of names) {
    const st = await sub.status(name);
    const b = await sub.request<{ secondsPerRun: number; held: boolean }>(name, 'POST', '/v1/host/bench', { seconds: o.benchSeconds ?? 1 }, 120_000);
    hosts.push({ name, memoryMB: Math.floor(st.memoryBytes / 2 ** 20), cpus: st.cpus, secondsPerRun: b.secondsPerRun, speed: round3(ref / b.secondsPerRun), held: b.held });
    log(`${name}: reference block ${(b.secondsPerRun * 1000).toFixed(1)} ms (speed ${(ref / b.secondsPerRun).toFixed(2)}), ${Math.floor(st.memoryBytes / 2 ** 20)} MB, ${st.cpus} CPU`);
  }
  return { referenceSecondsPerRun: ref, reference: o.reference ?? 'this machine', hosts, links, seconds: (performance.now() - t0) / 1000 };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** The kerf.cluster/v1 document of a measurement (links listed per direction). */
export function clusterOf(m: Measurement, entry: string): Cluster {
  return {
    schema: 'kerf.cluster/v1', entry,
    nodes: m.hosts.map((h) => ({ name: h.name, memoryMB: h.memoryMB, speed: h.speed })),
    links: m.links.map((l) => ({ from: l.from, to: l.to, bandwidthMbps: l.bandwidthMbps, rttMs: l.rttMs })),
  };
}

/** The network file (`kerf plan --network`) of a measurement: the hosts are the systems. */
export function networkOf(m: Measurement): { links: MeasuredLink[] } {
  return { links: m.links.map((l) => ({ ...l })) };
}
