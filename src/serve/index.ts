/** serve room: wire protocol between tiers (workers and gateway build on it). */
export * from './protocol.js';
export { Segment, checkTensors, type SegmentRunner, segmentBounds, segmentPart, toHost, toWire, type SegmentSpec, type SegmentBounds } from './segment.js';
export { ThreadSegment, restorablePriority, type ThreadSegmentOptions, type ThreadLoadStats } from './thread-segment.js';
export { WorkQueue, type JobTiming } from './queue.js';
export { Registry, Counter, Gauge, Histogram, LATENCY_BUCKETS, PROMETHEUS_CONTENT_TYPE, serveMetrics } from './metrics.js';
export { NextHop, parseAddress, fmtAddress, type NextHopOptions } from './nexthop.js';
export { Worker, SEGMENT_META, STAGE_META_PREFIX, DEFAULT_SEGMENT, tensorBytes as wireTensorsBytes, type WorkerOptions, type LoadedSegment, type LoadRequest, type LoadResult } from './worker.js';
export { Pipeline, type PipelineOptions, type InferResult } from './pipeline.js';
export { Gateway, httpStatus, type GatewayOptions, type SwitchRecord, type RouteHandler } from './gateway.js';
export { OIP_DATATYPE, HEADER_LENGTH, parseInferRequest, encodeInferRequest, encodeInferResponse, type RequestTensor, type EncodedRequest, type TensorMeta, type InferRequest, type EncodedResponse } from './oip.js';
export { up, planToUp, placementToUp, checkPlacementModel, type UpOptions, type UpHandle, type UpProcess, type ProcessMemory, type LinkSpec, type TierSpec, type CpuLimitOptions, type PlacementUpOptions } from './up.js';
export { CpuGroup, cpuQuotaUnavailable, sweepStaleCpuGroups, processCpuSeconds, processMemory, CGROUP_CPU_ROOT, DEFAULT_CPU_PERIOD_US } from './cpu.js';
export { OipClient, type InferOutcome } from './client.js';
export { Switcher, SWITCH_STRATEGIES, DEFAULT_STRATEGY, type SwitchStrategy, type SwitchReport, type PartitionStatus, type PartitionTarget, type TierPrepare, type WarmReport } from './switch.js';
export { ChunkStore, ComposedSegment, type ComposeReport, type ChunkStoreOptions } from './switch-chunks.js';
export { repartition, partitionStatus, setSwitchStrategy, rollout } from './switch-client.js';
export { startLoad, type LoadCase, type LoadRecord, type LoadOptions, type LoadHandle } from './switch-load.js';
