/**
 * The dashboard's latency window: what the gateway answered, folded into one point per period
 * (p50, p99, throughput, per-tier time) and kept for the last minutes. Pure: time comes in.
 */

/** Mean queue and compute seconds of one tier over a period (null: it ran nothing). */
export interface TierTime { queueS: number; computeS: number }

/** One period of the gateway's traffic. */
export interface WindowPoint {
  /** end of the period, epoch milliseconds */
  t: number;
  /** requests answered per second (any status) */
  rps: number;
  /** answers with a status other than 200, per second */
  errorsPerS: number;
  /** latency percentiles of the answered requests, seconds (null: none answered) */
  p50S: number | null;
  p99S: number | null;
  /** per tier, in chain order of the names seen: mean queue wait and compute */
  tiers: Record<string, TierTime>;
  /** gateway's own mean remote round trip (every tier beyond), seconds */
  remoteS: number | null;
}

/** Nearest-rank percentile of an ascending array (q in 0..1). */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

interface Acc { q: number; c: number; n: number }

export class LatencyWindow {
  private latencies: number[] = [];
  private errors = 0;
  private tiers = new Map<string, Acc>();
  private remote = { s: 0, n: 0 };
  private readonly points: WindowPoint[] = [];

  /** @param capacity points kept (default 300: five minutes at one per second) */
  constructor(readonly capacity = 300) {}

  /** One answered request. */
  answered(seconds: number, status: number): void {
    this.latencies.push(seconds);
    if (status !== 200) this.errors++;
  }

  /** One request's per-tier times (the gateway's own part under `local`, the others from the tiers' meta). */
  stages(local: string | null, own: { queueS: number; computeS: number; remoteS: number }, remote: Record<string, readonly [number, number]>): void {
    if (local !== null) this.tier(local, own.queueS, own.computeS);
    for (const [name, [q, c]] of Object.entries(remote)) this.tier(name, q, c);
    if (Number.isFinite(own.remoteS) && own.remoteS > 0) { this.remote.s += own.remoteS; this.remote.n++; }
  }

  private tier(name: string, q: number, c: number): void {
    if (!Number.isFinite(c)) return;
    let a = this.tiers.get(name);
    if (!a) { a = { q: 0, c: 0, n: 0 }; this.tiers.set(name, a); }
    a.q += Number.isFinite(q) ? q : 0;
    a.c += c;
    a.n++;
  }

  /** Close the period that ends at `tMs` and lasted `periodS`; returns its point. */
  roll(tMs: number, periodS: number): WindowPoint {
    const sorted = this.latencies.sort((a, b) => a - b);
    const tiers: Record<string, TierTime> = {};
    for (const [k, a] of this.tiers) tiers[k] = { queueS: a.q / a.n, computeS: a.c / a.n };
    const p: WindowPoint = {
      t: tMs, rps: sorted.length / periodS, errorsPerS: this.errors / periodS,
      p50S: percentile(sorted, 0.5), p99S: percentile(sorted, 0.99), tiers,
      remoteS: this.remote.n ? this.remote.s / this.remote.n : null,
    };
    this.latencies = [];
    this.errors = 0;
    this.tiers = new Map();
    this.remote = { s: 0, n: 0 };
    this.points.push(p);
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity);
    return p;
  }

  /** The kept points, oldest first. */
  history(): WindowPoint[] { return [...this.points]; }
}
