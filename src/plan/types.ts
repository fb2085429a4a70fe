/**
 * Types of the planner: the numeric problem it searches, the criteria that filter
 * placements, and the plan document (`kerf.plan/v1`) that split and serving consume.
 * Times are seconds, sizes bytes.
 */

import type { TierTerms } from './cost.js';
import type { CodedHop, SystemCodecs } from './codec-cost.js';

export type PlanTier = 'device' | 'edge' | 'cloud';
export const PLAN_TIERS: readonly PlanTier[] = ['device', 'edge', 'cloud'];

/** One system's cost of every block of one model. */
export interface SystemCost {
  /** per-request terms beyond the blocks (call overhead, fixed time, wire CPU): src/plan/cost.ts */
  terms?: TierTerms;
  name: string;
  tier: PlanTier;
  /** seconds per block, load factor already applied */
  time: Float64Array;
  /** bytes each block hands to the next (last block: the model's result) */
  out: Float64Array;
  /** bytes of memory each block needs on this system (session memory, else weights) */
  mem: Float64Array;
  /** codecs measured on each block's output on this system (kerf profile --codecs) */
  codecs?: SystemCodecs;
}

/** Everything the search needs, independent of files and formats. */
export interface PlanProblem {
  model: string;
  /** number of blocks, the same on every system */
  blocks: number;
  /** per block: first and last layer (Keras indices for Scission data, node positions for ONNX) */
  firstLayer: Int32Array;
  lastLayer: Int32Array;
  /** per block: id of the cut at its end (kerf profiles), or null when unknown */
  cutIds: (number | null)[];
  /** bytes the device sends when it runs no block */
  inputBytes: number;
  device: SystemCost[];
  edge: SystemCost[];
  cloud: SystemCost[];
}

/** A directed network link between two named systems. */
export interface NetworkLink {
  from: string;
  to: string;
  /** round-trip (Scission: ping) time, seconds, charged once per hop */
  rttS: number;
  /** bytes per second */
  bytesPerS: number;
  /** as written in the file, for reports */
  rttMs: number;
  bandwidthMbps: number;
}

/** Links keyed by `from → to`; lookups fall back to the reverse direction. */
export interface Network {
  schema: 'kerf.network/v1';
  /** 'yaml' | 'json' | 'scission-csv' */
  format: string;
  links: NetworkLink[];
}

/** PlanCriteria on one tier, Scission's language plus kerf's memory limit. */
export interface TierCriteria {
  /** only these systems, and the tier must be used */
  includeSystems: string[];
  /** not these systems, and the tier must be used (as Scission does) */
  excludeSystems: string[];
  /** each layer must run on this tier; -1 means the tier is unused */
  includeLayers: number[];
  /** no layer of these on this tier; -1 means the tier is used */
  excludeLayers: number[];
  /** bytes this tier may send onward (device and edge) */
  maxUploadBytes?: number;
  /** seconds of compute on this tier */
  maxTimeS?: number;
  /** compute on this tier as a percentage of the total compute */
  maxTimePct?: number;
  /** bytes of memory the tier's blocks may need together */
  maxMemoryBytes?: number;
}

export interface PlanCriteria {
  device: TierCriteria;
  edge: TierCriteria;
  cloud: TierCriteria;
  /** at least this many blocks on the device (privacy: raw input never leaves it) */
  minDeviceBlocks?: number;
}

export type PlanObjective = 'latency' | 'throughput';

export interface PlanSearchOptions {
  /** latency: sum of compute and transfers; throughput: the pipeline's slowest stage */
  objective?: PlanObjective;
  /** how many placements to return, best first (default 5) */
  topK?: number;
  /** also charge the result's trip from the last tier back to the device */
  returnResult?: boolean;
  /**
   * Reproduce scission_predict.py exactly: a tier whose blocks sum to zero seconds is
   * treated as sending nothing (its upstream's output size counts as 0).
   */
  scissionQuirks?: boolean;
  /** codecs (canonical names) a hop may use besides raw, where the profiles measured them
   * (default none); the result's return uses only the lossless ones */
  codecs?: readonly string[];
  /** which of `codecs` are lossy (kept off the return hop) */
  lossyCodecs?: readonly string[];
}

/** One ranked placement in index form: systems by position in their tier, -1 for unused. */
export interface RankedIndex {
  value: number;
  d: number;
  e: number;
  c: number;
  /** last device block (-1: none) */
  x: number;
  /** last edge block (x when the edge is unused) */
  y: number;
}

export interface TierPlacement {
  tier: PlanTier;
  /** null when the tier is unused */
  system: string | null;
  /** [first, last] block index, or null */
  blocks: [number, number] | null;
  /** [first, last] layer, or null */
  layers: [number, number] | null;
  computeS: number;
  /** seconds beyond computeS the tier spends on the request (call overhead, fixed time, wire
   * CPU: src/plan/cost.ts); absent when none */
  overheadS?: number;
  /** bytes this tier sends onward (0 when it sends nothing) */
  sendsBytes: number;
}

export interface PlanTransfer extends CodedHop {
  from: string;
  to: string;
  bytes: number;
  seconds: number;
  /** 'forward' hop between tiers, or 'return' of the result back along the chain */
  kind: 'forward' | 'return';
}

/** One placement, fully described. */
export interface RankedPlacement {
  rank: number;
  /** end-to-end latency: every tier's compute and overhead plus the transfers, seconds */
  totalS: number;
  /** the slowest pipeline stage (compute or link), seconds; 1/this is the throughput */
  bottleneckS: number;
  /** the value ranked on (totalS or bottleneckS) */
  objectiveS: number;
  /** bytes sent between tiers (device's plus edge's output), as Scission's MB column */
  bytesSent: number;
  /** kerf cut ids at the tier boundaries (null entries where the profile has no cut ids) */
  cuts: (number | null)[];
  /** block index each used tier ends on, except the last one: the boundaries as blocks */
  boundaries: number[];
  tiers: TierPlacement[];
  transfers: PlanTransfer[];
}

/** plan.json: the best placement at the top level, the others ranked after it. */
export interface PlanDocument extends Omit<RankedPlacement, 'rank'> {
  schema: 'kerf.plan/v1';
  model: string;
  /** the model file, relative to the plan file (POSIX separators), when kerf plan was given it */
  modelPath?: string;
  /** sha256 of the model file's bytes (hex): a plan refuses another file at that path */
  modelSha256?: string;
  objective: PlanObjective;
  returnResult: boolean;
  inputBytes: number;
  /** links the best placement uses, as given in the network file */
  network: { source?: string; links: { from: string; to: string; rttMs: number; bandwidthMbps: number }[] };
  /** the criteria as given on the command line */
  criteria: Record<string, unknown>;
  /** the ranked placements, the best (rank 1) first */
  ranked: RankedPlacement[];
  /** `kerf plan --pareto`: the non-dominated placements over latency, bottleneck and bytes
   * leaving the device (src/plan/pareto.ts), ranked by latency */
  pareto?: RankedPlacement[];
}

export const PLAN_SCHEMA = 'kerf.plan/v1' as const;
