/**
 * The arithmetic of an emulated link, with no I/O and no clock (callers pass `now` in ms):
 * a token bucket for the rate, then a one-way delay with jitter that never reorders bytes.
 */

/**
 * Token bucket over virtual time: bytes leave at `rateBps` on average, with at most
 * `burstBytes` sent at once after an idle spell. Shared by every connection in one direction,
 * like the capacity of a real link.
 */
export class TokenBucket {
  private finish = -Infinity;
  constructor(public rateBps: number, public burstBytes: number) {}

  private get bytesPerMs(): number { return this.rateBps / 8000; }

  /** Time (ms) at which the last of `bytes` handed over at `now` has left the link. */
  depart(now: number, bytes: number): number {
    if (!Number.isFinite(this.rateBps)) return now;
    const bpm = this.bytesPerMs;
    const start = Math.max(this.finish, now - this.burstBytes / bpm);
    this.finish = start + bytes / bpm;
    return Math.max(now, this.finish);
  }

  /** Bytes accepted but not yet sent at `now` (the queue of the emulated router). */
  backlog(now: number): number {
    if (!Number.isFinite(this.rateBps)) return 0;
    return Math.max(0, this.finish - now) * this.bytesPerMs;
  }

  /** When the backlog will have fallen to `bytes`. */
  timeWhenBacklog(bytes: number): number {
    if (!Number.isFinite(this.rateBps)) return -Infinity;
    return this.finish - bytes / this.bytesPerMs;
  }
}

/**
 * Arrival times for one connection in one direction: departure + delay + jitter, raised where
 * needed so a later byte never arrives before an earlier one. The jitter sample (uniform in
 * ±jitterMs) is drawn per burst — after an idle gap of 1 ms, or every 50 ms of continuous
 * sending — so a long message is not delayed by the maximum of many samples.
 */
export class DelayLine {
  private last = -Infinity;
  private lastDepart = -Infinity;
  private sampledAt = -Infinity;
  private sample = 0;
  constructor(private readonly random: () => number = Math.random) {}

  arrive(depart: number, delayMs: number, jitterMs: number): number {
    if (jitterMs > 0 && (depart - this.lastDepart > 1 || depart - this.sampledAt > 50)) {
      this.sample = (this.random() * 2 - 1) * jitterMs;
      this.sampledAt = depart;
    }
    this.lastDepart = depart;
    const t = Math.max(depart + Math.max(0, delayMs + (jitterMs > 0 ? this.sample : 0)), this.last);
    this.last = t;
    return t;
  }
}

/** Size of the pieces a chunk is cut into, so bytes trickle out as packets would (~1 ms of rate). */
export function quantumBytes(rateBps: number): number {
  if (!Number.isFinite(rateBps)) return 1 << 20;
  return Math.min(64 * 1024, Math.max(1024, Math.round(rateBps / 8000)));
}
