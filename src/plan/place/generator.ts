/**
 * The anchor paper's instance generator: nodes uniform in a 150 × 150 square, a link between
 * every two nodes with bandwidth log2(1 + 283230 / d²) Mbit/s at distance d, node memory
 * 64, 128, 256 or 512 MB. Seeded, pure.
 */
import { rng } from './baselines.js';
import type { Cluster, ClusterLink, ClusterNode } from './types.js';

export interface AnchorOptions {
  nodes: number;
  seed: number;
  /** every node's memory in MB, or 'mixed' for a uniform draw from 64/128/256/512 */
  memoryMB: number | 'mixed';
  /** node 0 is the entry unless false (then input and output transfers are not counted) */
  entry?: boolean;
  /** per-message overhead, ms (default 0: the anchor counts bytes ÷ bandwidth only) */
  messageOverheadMs?: number;
  /** compute speed factors drawn uniformly from this list (default all 1) */
  speeds?: number[];
  memory?: Cluster['memory'];
  /** wire CPU per MB sent or received, ms (default 0: the anchor counts no CPU for transfers) */
  wireCpuMsPerMB?: number;
}

export const ANCHOR_SIDE = 150;
/** runtime memory per stage in the anchor's instances, MB (kerf's default is a measured worker) */
export const ANCHOR_OVERHEAD_MB = 16;
export const ANCHOR_MEMORIES = [64, 128, 256, 512] as const;

/** Bandwidth of the anchor's model at distance d, Mbit/s. */
export function anchorBandwidth(d: number): number {
  return Math.log2(1 + 283230 / Math.max(d * d, 1e-9));
}

export function anchorCluster(o: AnchorOptions): Cluster {
  const rand = rng(o.seed);
  const pos: [number, number][] = [];
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < o.nodes; i++) {
    pos.push([rand() * ANCHOR_SIDE, rand() * ANCHOR_SIDE]);
    const memoryMB = o.memoryMB === 'mixed' ? ANCHOR_MEMORIES[Math.floor(rand() * ANCHOR_MEMORIES.length)]! : o.memoryMB;
    const node: ClusterNode = { name: `n${i}`, memoryMB };
    if (o.speeds && o.speeds.length > 0) node.speed = o.speeds[Math.floor(rand() * o.speeds.length)]!;
    nodes.push(node);
  }
  const links: ClusterLink[] = [];
  for (let i = 0; i < o.nodes; i++) {
    for (let j = i + 1; j < o.nodes; j++) {
      const d = Math.hypot(pos[i]![0] - pos[j]![0], pos[i]![1] - pos[j]![1]);
      links.push({ from: `n${i}`, to: `n${j}`, bandwidthMbps: anchorBandwidth(d) });
    }
  }
  const c: Cluster = { schema: 'kerf.cluster/v1', nodes, links, messageOverheadMs: o.messageOverheadMs ?? 0, wireCpuMsPerMB: o.wireCpuMsPerMB ?? 0 };
  if (o.entry !== false) c.entry = 'n0';
  // the anchor's nodes are small devices, not Node.js processes: 16 MB of runtime per stage
  c.memory = o.memory ?? { overheadMB: ANCHOR_OVERHEAD_MB };
  return c;
}
