/** Latency statistics and facts about the machine a profile is measured on. */
import { availableParallelism, cpus, hostname, totalmem } from 'node:os';
import type { LatencyStats, SystemInfo } from './types.js';

/** Relative spread above which a block is flagged `highSpread` (p90 − min over the median). */
export const HIGH_SPREAD = 0.3;

/** Quantile by linear interpolation between order statistics (q in 0..1). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Median, p90, min and relative spread of timed runs (seconds). */
export function latencyStats(samples: readonly number[]): LatencyStats {
  const s = [...samples].sort((a, b) => a - b);
  const median = quantile(s, 0.5), p90 = quantile(s, 0.9), min = s[0] ?? NaN;
  return { median, p90, min, spread: median > 0 ? (p90 - min) / median : 0, runs: s.length };
}

/** This machine as a profile reports it; `name` and `tier` are the user's. */
export function systemInfo(name: string, tier: SystemInfo['tier'] | undefined, threads: number): SystemInfo {
  const c = cpus();
  return {
    name,
    ...(tier ? { tier } : {}),
    cpu: (c[0]?.model ?? 'unknown').trim().replace(/\s+/g, ' '),
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    threads,
    hostname: hostname(),
  };
}

/** Resident set size now, bytes. */
export function rss(): number { return process.memoryUsage.rss(); }
