/**
 * Types of cluster placement: the Cluster (kerf.cluster/v1), the model as placement sees it
 * (PlaceModel, built from a Profile), and the Placement (kerf.placement/v1).
 * Times are seconds, sizes bytes, bandwidth Mbit/s (as in the cluster file).
 */

import type { CodedHop, SystemCodecs } from '../codec-cost.js';

/** One edge node of a cluster. */
export interface ClusterNode {
  name: string;
  /** memory the node can give to its segment, MB (1 MB = 2^20 bytes) */
  memoryMB: number;
  /** compute speed relative to the profile's system (2 = twice as fast); default 1 */
  speed?: number;
  /** name of a system profiled with `kerf profile`: that profile's per-block times are used
   * (still divided by `speed` when given) */
  system?: string;
  labels?: Record<string, string>;
  /** CPU milliseconds the node spends per MB (2^20 bytes) it receives or sends (kernel TCP,
   * framing, tensor copies), on the profile's system: divided by `speed` like compute.
   * Default: the cluster's `wireCpuMsPerMB`, else DEFAULT_WIRE_CPU_MS_PER_MB (measured). */
  wireCpuMsPerMB?: number;
  /** wall milliseconds of the node's own work per request that no placement changes (a
   * gateway's HTTP handling, a worker's framing), not divided by speed; default 0
   * (src/plan/cost.ts tierServiceS `fixedS`) */
  fixedMs?: number;
}

/** A direct link. Symmetric unless the opposite direction is listed as well. */
export interface ClusterLink {
  from: string;
  to: string;
  bandwidthMbps: number;
  /** round-trip time, ms; half of it is added to end-to-end latency per crossing (with an entry
   * the result crosses every hop back, so a request pays each hop's rtt once) */
  rttMs?: number;
  /** fixed cost per message on this link, ms (framing, syscalls); defaults to the cluster's */
  overheadMs?: number;
}

/** Memory model knobs: a segment needs margin × (weights + peak activations) + overheadMB. */
export interface MemoryModel {
  /** multiplicative safety margin on weights + activations; default 1.1 */
  margin?: number;
  /** runtime overhead per stage (process, session, allocator), MB; default
   * DEFAULT_OVERHEAD_MB (a measured Node.js + onnxruntime worker baseline), or measured from
   * the profile's whole-model memory when the profile has it */
  overheadMB?: number;
}

/** The cluster file, `"schema": "kerf.cluster/v1"` (YAML or JSON). */
export interface Cluster {
  schema: 'kerf.cluster/v1';
  nodes: ClusterNode[];
  links: ClusterLink[];
  /** node where requests arrive and results return; when absent the pipeline ends are free
   * and the input and output transfers are not counted (the anchor paper's model) */
  entry?: string;
  /** default per-message overhead, ms; default 0.1 (loopback framing cost measured here) */
  messageOverheadMs?: number;
  /** default of every node's `wireCpuMsPerMB` */
  wireCpuMsPerMB?: number;
  memory?: MemoryModel;
}

/** One block as placement sees it. */
export interface PlaceBlock {
  /** compute seconds on the reference system */
  seconds: number;
  /** bytes sent to the next block (the crossing tensors of its end cut) */
  outputBytes: number;
  paramBytes: number;
  /** peak activation bytes while the block runs; estimated as input + output when absent */
  activationBytes?: number;
  flops?: number;
  /** id of the cut at the end of this block, when known */
  cutId?: number;
}

/** A model reduced to what placement needs: consecutive blocks. */
export interface PlaceModel {
  name: string;
  /** bytes of the model input, sent by the entry to the first stage */
  inputBytes: number;
  blocks: PlaceBlock[];
  /** per-block seconds on other profiled systems, keyed by system name */
  systems?: Record<string, number[]>;
  /** measured resident memory of the whole model, bytes, when profiled */
  wholeMemoryBytes?: number;
  /** seconds one segment run costs beyond its blocks (the profile's `callOverheadS`), paid
   * once per stage; per profiled system in `systemCallOverheadS` */
  callOverheadS?: number;
  systemCallOverheadS?: Record<string, number>;
  /** codec measurements per profiled system (`kerf profile --codecs`), and the system of the
   * reference profile (used by nodes that name none) */
  codecs?: Record<string, SystemCodecs>;
  referenceSystem?: string;
}

export type Objective = 'throughput' | 'comm';
export type SolverName = 'exact' | 'scalable' | 'greedy' | 'random' | 'auto';

/** Options of `place()`. */
export interface PlaceOptions {
  /** at most this many stages (default: number of nodes) */
  maxStages?: number;
  /** 'throughput' (compute and links, default) or 'comm' (links only, the anchor's objective) */
  objective?: Objective;
  /** 'auto' (exact up to 12 nodes, else scalable; default) */
  solver?: SolverName;
  /** called now and then by the exact solver; returning true stops it with its best so far */
  shouldStop?: () => boolean;
  /** work budget of the exact solver (state expansions); default 2e8 */
  maxWork?: number;
  /** seed of the random baseline */
  seed?: number;
  /** memory model; overrides the cluster file's */
  memory?: MemoryModel;
  /** codecs (canonical names) a hop may use besides raw, where the profiles measured them
   * (default none); the result's return uses only the lossless ones (src/plan/codec-cost.ts) */
  codecs?: readonly string[];
  /** which of `codecs` are lossy (kept off the return) */
  lossyCodecs?: readonly string[];
}

/** A stage: one node running a consecutive range of blocks. */
export interface PlacementStage {
  index: number;
  node: string;
  /** first and last block (0-based, inclusive) */
  blocks: { first: number; last: number };
  /** cut id at the stage's start (null for the model input) and end (null for the output) */
  cutIn: number | null;
  cutOut: number | null;
  /** bytes the stage receives and sends */
  inputBytes: number;
  outputBytes: number;
  /** memory the segment needs under the memory model, and the node's limit */
  memoryBytes: number;
  memoryLimitBytes: number;
  weightBytes: number;
  activationBytes: number;
  /** compute seconds of the segment's blocks on this node */
  computeSeconds: number;
  /** seconds the stage pays once per request beyond its blocks (call overhead ÷ speed + the
   * node's fixedMs), absent when 0; the stage's time is computeSeconds + overheadSeconds +
   * wireSeconds (src/plan/cost.ts tierServiceS) */
  overheadSeconds?: number;
  /** CPU seconds the node spends receiving its input and sending its output (wireCpuMsPerMB);
   * see overheadSeconds */
  wireSeconds: number;
  /** the node's speed factor (for a runtime that emulates the node's share of CPU) and its
   * profiled system, when it names one */
  speed: number;
  system?: string;
  /** link carrying this stage's output: to the next stage; for the last stage, the result back
   * to its caller (the previous stage, or the entry) */
  sendTo: string | null;
  sendSeconds: number;
}

/** A transfer in the pipeline (the entry's input, between stages, the result's return), with its
 * codec when not raw (kerf place --codecs). */
export interface PlacementLink extends CodedHop {
  from: string;
  to: string;
  bytes: number;
  seconds: number;
  /** the link as the cluster file gives it (for a runtime that emulates it) */
  bandwidthMbps: number;
  rttMs: number;
  /** 'forward' in pipeline order, or 'return': the result back along the chain */
  kind?: 'forward' | 'return';
}

/** `kerf.placement/v1`: what `kerf place` writes and a runtime needs. */
export interface Placement {
  schema: 'kerf.placement/v1';
  model: { name: string; blocks: number; inputBytes: number };
  entry: string | null;
  objective: Objective;
  /** the solver that chose the stages, or 'given' when they were priced as given (pricePlacement) */
  solver: Exclude<SolverName, 'auto'> | 'given';
  /** true when the solver proved the bottleneck optimal */
  optimal: boolean;
  /** slowest stage or link (seconds per request) and what it is */
  bottleneck: { seconds: number; kind: 'compute' | 'link'; where: string };
  /** requests per second the pipeline sustains: 1 / bottleneck */
  throughput: number;
  /** end-to-end seconds for one request: every stage's time, the gateway's, and each hop's
   * transfers both ways with its rtt once (src/plan/cost.ts: the planner prices it the same) */
  latency: number;
  /** a proven lower bound on the bottleneck, and bottleneck / bound - 1 */
  lowerBound: number;
  gap: number;
  stages: PlacementStage[];
  links: PlacementLink[];
  /** the entry's gateway when it runs no stage: its fixed time and wire CPU per request */
  gateway?: { node: string; seconds: number };
  /** `kerf place --pareto`: the placements no other beats on latency, bottleneck and bytes
   * leaving the entry (src/plan/place/pareto.ts), ranked by latency; each solver 'given' */
  pareto?: Placement[];
  memoryModel: { margin: number; overheadBytes: number; activations: 'profiled' | 'estimated' };
  /** wall-clock seconds the solver took (set by the CLI and benchmarks, never by the core) */
  solveSeconds?: number;
}
