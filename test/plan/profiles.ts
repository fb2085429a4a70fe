/** Small synthetic profiles for the cost-model and Pareto tests. */
import type { Profile } from '../../src/profile/types.js';

/** Codec measurements of one block: zstd (lossless) and int8 (lossy), slower on slower tiers. */
export function codecs(i: number, slow: number): Record<string, { ratio: number; encodeS: number; decodeS: number; lossy?: boolean }> {
  return {
    'zstd-1': { ratio: 2 + i * 0.3, encodeS: 0.00004 * slow, decodeS: 0.00002 * slow },
    'int8+zstd-1': { ratio: 6 + i, encodeS: 0.00009 * slow, decodeS: 0.00003 * slow, lossy: true },
  };
}

export function profile(tier: 'device' | 'edge' | 'cloud', blockS: number[], callOverheadS: number, withCodecs = false): Profile {
  return {
    schema: 'kerf.profile/v1',
    model: { name: 'm', inputBytes: 4000 },
    system: { name: tier, tier, cpu: 'x', cores: 1, memoryBytes: 1, threads: 1, hostname: 'h' },
    granularity: 'single', source: 'kerf', callOverheadS,
    blocks: blockS.map((s, i) => ({
      index: i, firstLayer: i, lastLayer: i, cutId: i, outputTensors: ['t'],
      latency: { median: s, p90: s, min: s, spread: 0, runs: 1 }, outputBytes: [3000, 1000, 2500, 400][i]!, paramBytes: 0, flops: 0,
      ...(withCodecs ? { codecs: codecs(i, tier === 'device' ? 10 : tier === 'edge' ? 3 : 1) } : {}),
    })),
    whole: { latency: { median: 1, p90: 1, min: 1, spread: 0, runs: 1 } },
    settings: { repeats: 1, warmup: 1, threads: 1, optimization: 'disabled', method: 'trace', seed: 0, runtime: 'x' },
    createdAt: '2026-01-01T00:00:00Z',
  } as Profile;
}

